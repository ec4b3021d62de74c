"""A small Python client for candiesd (proto/candies/v1/candies.proto).

The generated modules (candies/v1/candies_pb2*.py) must be importable: the
build writes them to build/python (add it to sys.path or PYTHONPATH).

    c = Client("127.0.0.1:50051", owner="alice")
    rna = c.upload(X, obs_names, var_names, spatial, name="rna", kind="rna")
    job = c.submit(rna, prot, n_clusters=5)
    for event in c.watch(job): print(event.state, event.stage)
    c.fetch(job, "result.h5ad")
"""
import os

import grpc
import numpy as np

from candies.v1 import candies_pb2 as pb
from candies.v1 import candies_pb2_grpc as pb_grpc

_KINDS = {"rna": pb.MODALITY_KIND_RNA, "protein": pb.MODALITY_KIND_PROTEIN,
          "atac": pb.MODALITY_KIND_ATAC}
_BLOCK_BYTES = 2 << 20  # upload row blocks stay under gRPC's 4 MiB default


def fnv1a64(data: bytes, state: int = 14695981039346656037) -> int:
    """FNV-1a 64 as the server computes it over the float32 bytes of X."""
    for b in data:
        state = ((state ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return state


class Client:
    def __init__(self, address="127.0.0.1:50051", owner=None, timeout=60.0):
        self._channel = grpc.insecure_channel(address)
        self._stub = pb_grpc.CandiesStub(self._channel)
        self._md = [("x-candies-owner", owner)] if owner else []
        self._timeout = timeout

    def close(self):
        self._channel.close()

    def upload(self, X, obs_names, var_names, spatial, name="", kind="rna", checksum=True):
        """Uploads dense X (n_obs x n_vars); returns the dataset id."""
        X = np.ascontiguousarray(X, dtype="<f4")
        spatial = np.asarray(spatial, dtype=np.float32)[:, :2]
        n_obs, n_vars = X.shape
        header = pb.DatasetHeader(name=name, kind=_KINDS[kind], n_obs=n_obs, n_vars=n_vars,
                                  obs_names=list(map(str, obs_names)),
                                  var_names=list(map(str, var_names)),
                                  spatial=spatial.reshape(-1).tolist())
        rows = max(1, _BLOCK_BYTES // (4 * n_vars))
        # The pure-Python FNV is slow: only for small uploads unless asked.
        digest = fnv1a64(X.tobytes()) if checksum else 0

        def chunks():
            yield pb.UploadChunk(header=header)
            for i in range(0, n_obs, rows):
                last = i + rows >= n_obs
                yield pb.UploadChunk(rows=pb.RowBlock(values=X[i:i + rows].reshape(-1).tolist()),
                                     checksum_fnv1a64=digest if last else 0)

        return self._stub.UploadDataset(chunks(), metadata=self._md, timeout=self._timeout).id

    def submit(self, mod1, mod2, n_clusters, **kw):
        """Submits a job; keyword arguments are SubmitJobRequest fields. Returns the job id."""
        req = pb.SubmitJobRequest(mod1_dataset=mod1, mod2_dataset=mod2, n_clusters=n_clusters, **kw)
        return self._stub.SubmitJob(req, metadata=self._md, timeout=self._timeout).id

    def get(self, job):
        return self._stub.GetJob(pb.GetJobRequest(id=job), metadata=self._md, timeout=self._timeout)

    def list_jobs(self, state=pb.JOB_STATE_UNSPECIFIED):
        req = pb.ListJobsRequest(state=state)
        while True:
            resp = self._stub.ListJobs(req, metadata=self._md, timeout=self._timeout)
            yield from resp.jobs
            if not resp.next_page_token:
                return
            req.page_token = resp.next_page_token

    def watch(self, job, timeout=None):
        """Yields JobEvents until the job ends (the last one has the final state)."""
        yield from self._stub.WatchJob(pb.WatchJobRequest(id=job), metadata=self._md,
                                       timeout=timeout)

    def cancel(self, job):
        return self._stub.CancelJob(pb.CancelJobRequest(id=job), metadata=self._md,
                                    timeout=self._timeout)

    def fetch(self, job, path):
        """Writes the result .h5ad to `path` (via a temp name); returns its size."""
        tmp = path + ".part"
        size = 0
        with open(tmp, "wb") as f:
            for chunk in self._stub.FetchResult(pb.FetchResultRequest(id=job), metadata=self._md,
                                                timeout=self._timeout):
                f.write(chunk.data)
                size += len(chunk.data)
        os.replace(tmp, path)
        return size
