"""Exceptions of the candies client: every failed RPC becomes a CandiesError
carrying the gRPC status code and, when the server named one, the field."""
import re

import grpc

# candiesd's errors read "<field>: <problem>" (docs/SERVICE.md, "Errors").
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\[\]\"]*): ")


class CandiesError(grpc.RpcError):
    """A failed call: `code()` / `status_code` is the grpc.StatusCode,
    `details()` the server's message, `field` the request field the server
    named (or None). A grpc.RpcError, so code written for raw stubs still works."""

    def __init__(self, code, details, field=None):
        self.status_code = code
        self._details = details
        self.field = field
        name = code.name if isinstance(code, grpc.StatusCode) else str(code)
        super().__init__(f"{name}: {details}")

    def code(self):
        return self.status_code

    def details(self):
        return self._details

    @classmethod
    def from_rpc_error(cls, e):
        details = e.details() or ""
        m = _FIELD.match(details)
        return cls(e.code(), details, m.group(1) if m else None)


class JobFailed(CandiesError):
    """A job ended in a state other than SUCCEEDED; `state` names it."""

    def __init__(self, job, state, error):
        self.job = job
        self.state = state
        super().__init__(grpc.StatusCode.ABORTED, f"job {job} ended {state}: {error}")
