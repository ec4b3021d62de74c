"""Client side of bench/chaos/run.sh: the load while the daemon and its
workers are killed, then the checks afterwards.

  chaos.py load DIR SEED     uploads, jobs and result downloads as alice and bob
                             until DIR/stop exists; what the daemon accepted goes
                             to DIR/journal.jsonl
  chaos.py verify DIR        waits for the daemon to settle, checks the
                             invariants (docs in bench/chaos/README.md), prints
                             the counts; exit 1 when one fails

The daemon's address is read from DIR/data/candiesd.port at every reconnect
(each restart binds a new port). Tokens: DIR/alice.token, bob.token, root.token.
"""
import glob
import hashlib
import json
import os
import random
import sys
import threading
import time
import zlib

import grpc
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "client", "python"))
from candies_client import CandiesError, Client  # noqa: E402
from candies_client._proto import candies_pb2 as pb  # noqa: E402

FINAL = {pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED,
         pb.JOB_STATE_DEADLINE_EXCEEDED}
# Errors that mean "the daemon is not there (now)": reconnect and go on.
GONE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
MAX_OUTSTANDING = 2   # jobs per user not yet final (keeps the 2-core box's queue short)
RPC_TIMEOUT = 20.0


def x_checksum(X):
    """CRC-32 of X as little-endian float32, row-major (what the client sends)."""
    return zlib.crc32(np.ascontiguousarray(X, dtype="<f4").tobytes())


def names_checksum(names):
    return hashlib.sha256("\n".join(map(str, names)).encode()).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def token(d, who):
    with open(os.path.join(d, f"{who}.token")) as f:
        return f.read().strip()


def address(d):
    try:
        with open(os.path.join(d, "data", "candiesd.port")) as f:
            return f.read().strip()
    except OSError:
        return ""


class Journal:
    """Append-only JSON lines, shared by the user threads."""

    def __init__(self, path):
        self._f = open(path, "a", buffering=1)
        self._mu = threading.Lock()

    def write(self, **event):
        event["t"] = round(time.time(), 3)
        with self._mu:
            self._f.write(json.dumps(event) + "\n")


class Flag:
    """DIR/flags/<name> exists while an operation is in flight, so that
    run.sh can aim a kill at it."""

    def __init__(self, d, name):
        self.path = os.path.join(d, "flags", name)

    def __enter__(self):
        open(self.path, "w").close()

    def __exit__(self, *exc):
        try:
            os.remove(self.path)
        except OSError:
            pass


class User(threading.Thread):
    """One identity's random mix of uploads, submissions and downloads."""

    def __init__(self, d, who, seed, sections, journal, stop):
        super().__init__(daemon=True)
        self.d, self.who, self.rng = d, who, random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.sections, self.journal, self.stop = sections, journal, stop
        self.client, self.addr = None, ""
        self.pairs = []        # (mod1 id, mod2 id, n_obs) accepted for this user
        self.models = []       # model ids of this user's SUCCEEDED save_model jobs
        self.outstanding = {}  # job id -> spec dict
        self.seq = 0
        self.errors = 0

    # -- connection ----------------------------------------------------------
    def connect(self):
        addr = address(self.d)
        if self.client is None or addr != self.addr:
            if self.client is not None:
                self.client.close()
            self.client = Client(addr, token=token(self.d, self.who), timeout=RPC_TIMEOUT,
                                 progress=False) if addr else None
            self.addr = addr
        return self.client

    def reset(self):
        if self.client is not None:
            self.client.close()
        self.client, self.addr = None, ""

    def call(self, what, fn):
        """fn(client) or None when the daemon is gone (then reconnect)."""
        c = self.connect()
        if c is None:
            time.sleep(0.2)
            return None
        try:
            return fn(c)
        except CandiesError as e:
            gone = e.code() in GONE
            self.journal.write(ev="error", who=self.who, what=what, code=e.code().name,
                               gone=gone, details=e.details())
            if gone:
                self.reset()
                time.sleep(0.2)
            else:
                self.errors += 1
            return None

    # -- operations ----------------------------------------------------------
    def upload(self, X, obs, var, spatial, kind, obs_columns=None):
        """Uploads; returns the dataset id when the daemon accepted it."""
        self.seq += 1
        name = f"{self.who}-{self.seq}"
        self.journal.write(ev="upload_try", who=self.who, name=name, n_obs=X.shape[0],
                           n_vars=X.shape[1], crc=x_checksum(X), obs=names_checksum(obs),
                           var=names_checksum(var),
                           spatial=x_checksum(np.asarray(spatial, np.float32)[:, :2]))
        with Flag(self.d, f"upload.{self.who}"):
            ds = self.call("upload", lambda c: c.upload_dense(X, obs, var, spatial, name=name,
                                                               kind=kind))
        if ds is not None:
            self.journal.write(ev="upload_ok", who=self.who, name=name, id=ds)
        return ds

    def upload_random(self):
        n, m = self.rng.randint(200, 3000), self.rng.randint(20, 300)
        X = self.np_rng.poisson(2.0, size=(n, m)).astype(np.float32)
        spatial = self.np_rng.uniform(0, 100, size=(n, 2))
        self.upload(X, [f"s{i}" for i in range(n)], [f"g{j}" for j in range(m)], spatial, "rna")

    def upload_section(self):
        rna, prot = self.rng.choice(self.sections)
        ids = []
        for a, kind in ((rna, "rna"), (prot, "protein")):
            ids.append(self.upload(np.asarray(a.X, np.float32), list(a.obs_names),
                                   list(a.var_names), a.obsm["spatial"], kind))
            if ids[-1] is None:
                return
        self.pairs.append((ids[0], ids[1], rna.n_obs))

    def submit(self):
        if not self.pairs:
            self.upload_section()
            return
        # The first few pairs only, so that the same job (pair, kind, seed) recurs
        # and verify can compare reruns with their twins.
        mod1, mod2, _ = self.rng.choice(self.pairs[:3])
        r = self.rng.random()
        spec = dict(kind="integrate", n_clusters=3, seed=self.rng.randint(0, 3))
        if r < 0.35:
            spec.update(kind="full", save_model=True)
        elif r < 0.6 and self.models:
            spec.update(kind="full", model_id=self.rng.choice(self.models))
        job = self.call("submit", lambda c: c.submit(mod1, mod2, **spec))
        if job is not None:
            spec.update(mod1=mod1, mod2=mod2)
            self.outstanding[job] = spec
            self.journal.write(ev="submit_ok", who=self.who, job=job, spec=spec)

    def follow(self):
        for job in list(self.outstanding):
            j = self.call("get", lambda c: c.get(job))
            if j is None or j.state not in FINAL:
                continue
            spec = self.outstanding.pop(job)
            self.journal.write(ev="final", who=self.who, job=job, state=pb.JobState.Name(j.state),
                               error=j.error, attempt=j.attempt)
            if j.state == pb.JOB_STATE_SUCCEEDED:
                if j.model_id:
                    self.models.append(j.model_id)
                self.download(job, spec)

    def download(self, job, spec):
        path = os.path.join(self.d, "downloads", f"{job}.h5ad")
        with Flag(self.d, f"fetch.{self.who}"):
            size = self.call("fetch", lambda c: c.fetch(job, path))
        if size is not None:
            self.journal.write(ev="fetched", who=self.who, job=job, sha=sha256_file(path))
            os.remove(path)

    def run(self):
        while not self.stop.is_set():
            r = self.rng.random()
            if r < 0.15:
                self.upload_random()
            elif r < 0.25:
                self.upload_section()
            elif len(self.outstanding) < MAX_OUTSTANDING:
                self.submit()
            self.follow()
            self.stop.wait(self.rng.uniform(0.1, 0.8))
        if self.client is not None:
            self.client.close()


def sections(d):
    import anndata
    out = []
    for sim in sorted(glob.glob(os.path.join(d, "sim*"))):
        out.append((anndata.read_h5ad(os.path.join(sim, "rna.h5ad")),
                    anndata.read_h5ad(os.path.join(sim, "protein.h5ad"))))
    return out


def load(d, seed):
    os.makedirs(os.path.join(d, "flags"), exist_ok=True)
    os.makedirs(os.path.join(d, "downloads"), exist_ok=True)
    journal = Journal(os.path.join(d, "journal.jsonl"))
    stop = threading.Event()
    secs = sections(d)
    users = [User(d, who, seed * 10 + i, secs, journal, stop)
             for i, who in enumerate(("alice", "bob"))]
    for u in users:
        u.start()
    while not os.path.exists(os.path.join(d, "stop")):
        time.sleep(0.2)
    stop.set()
    for u in users:
        u.join()
    print(f"load: stopped ({sum(u.errors for u in users)} refused calls)")


# --- verify -------------------------------------------------------------------

class Checks:
    def __init__(self):
        self.failures = []
        self.counts = {}

    def fail(self, msg):
        self.failures.append(msg)
        print(f"FAIL: {msg}")

    def add(self, key, n=1):
        self.counts[key] = self.counts.get(key, 0) + n


def read_journal(d):
    events = []
    with open(os.path.join(d, "journal.jsonl")) as f:
        for line in f:
            events.append(json.loads(line))
    return events


def settle(root, seconds, checks):
    """Waits until no job is QUEUED or RUNNING (at most `seconds`); returns all jobs."""
    end = time.time() + seconds
    while True:
        jobs = list(root.list_jobs())
        busy = [j for j in jobs if j.state not in FINAL]
        if not busy or time.time() > end:
            break
        time.sleep(1.0)
    for j in busy:
        checks.fail(f"job {j.id} still {pb.JobState.Name(j.state)} after {seconds} s of settling "
                    f"(attempt {j.attempt}, stage '{j.stage}')")
    checks.add("jobs stuck QUEUED/RUNNING", len(busy))
    return jobs


def verify_uploads(d, root, events, checks):
    import anndata
    tried = {e["name"]: e for e in events if e["ev"] == "upload_try"}
    accepted = {e["name"]: e["id"] for e in events if e["ev"] == "upload_ok"}
    stored = {ds.name: ds for ds in root._stub.ListDatasets(
        pb.ListDatasetsRequest(), metadata=root._md, timeout=RPC_TIMEOUT).datasets}
    checks.add("uploads tried", len(tried))
    checks.add("uploads accepted", len(accepted))
    for name, ds in stored.items():
        sent = tried.get(name)
        if sent is None:
            checks.fail(f"dataset {ds.id} '{name}' was never sent")
            continue
        if name in accepted and accepted[name] != ds.id:
            checks.fail(f"upload {name}: accepted as {accepted[name]}, stored as {ds.id}")
        if name not in accepted:
            checks.add("uploads stored without a reply (killed after commit)")
        path = os.path.join(d, "data", "datasets", f"{ds.id}.h5ad")
        try:
            a = anndata.read_h5ad(path)
            X = np.asarray(a.X.todense() if hasattr(a.X, "todense") else a.X)
            ok = (a.shape == (sent["n_obs"], sent["n_vars"]) and ds.n_obs == sent["n_obs"]
                  and ds.n_vars == sent["n_vars"] and x_checksum(X) == sent["crc"]
                  and names_checksum(a.obs_names) == sent["obs"]
                  and names_checksum(a.var_names) == sent["var"]
                  and x_checksum(np.asarray(a.obsm["spatial"], np.float32)[:, :2]) == sent["spatial"])
        except Exception as e:  # noqa: BLE001 - any unreadable file is the finding
            checks.fail(f"dataset {ds.id} ({name}): {path} unreadable: {e}")
            continue
        if not ok:
            checks.fail(f"dataset {ds.id} ({name}): stored content differs from what was sent")
        elif name in accepted:
            checks.add("uploads accepted and intact")
    for name, ds_id in accepted.items():
        if name not in stored:
            checks.fail(f"accepted upload {name} ({ds_id}) is gone")


def check_result(path, job, checks):
    """The result parses and holds the job's embedding and domains."""
    import anndata
    try:
        a = anndata.read_h5ad(path)
        Z = np.asarray(a.obsm["X_candies"])
        labels = np.asarray(a.obs["candies_cluster"]).astype(int)
    except Exception as e:  # noqa: BLE001
        checks.fail(f"job {job.id}: result does not parse: {e}")
        return None
    if not (np.isfinite(Z).all() and Z.shape[0] == a.n_obs and a.n_obs > 0
            and labels.min() >= 0 and labels.max() < job.spec.n_clusters):
        checks.fail(f"job {job.id}: result has non-finite embedding or labels out of range")
        return None
    return a


def verify_jobs(d, root, jobs, events, checks):
    submitted = {e["job"]: e for e in events if e["ev"] == "submit_ok"}
    fetched = {}
    for e in events:
        if e["ev"] == "fetched":
            fetched.setdefault(e["job"], set()).add(e["sha"])
    seen_final = {e["job"]: e for e in events if e["ev"] == "final"}
    by_id = {j.id: j for j in jobs}
    checks.add("jobs accepted", len(submitted))
    checks.add("jobs in the store", len(jobs))
    for job_id in submitted:
        if job_id not in by_id:
            checks.fail(f"accepted job {job_id} is gone")
    for job_id, e in seen_final.items():
        j = by_id.get(job_id)
        if j is not None and pb.JobState.Name(j.state) != e["state"]:
            checks.fail(f"job {job_id} was seen {e['state']}, is now {pb.JobState.Name(j.state)}")
    groups = {}
    for j in jobs:
        interrupted = j.attempt > 1 or "killed" in j.error or "interrupted" in j.error
        checks.add("jobs interrupted (attempt > 1 or killed)", int(interrupted))
        if j.state == pb.JOB_STATE_SUCCEEDED:
            checks.add("jobs succeeded")
            checks.add("jobs succeeded after an interruption", int(interrupted))
        elif j.state in FINAL:
            if j.error.strip():
                checks.add("jobs failed with a reason")
            else:
                checks.fail(f"job {j.id} {pb.JobState.Name(j.state)} without a reason")
            continue
        else:
            continue
        path = os.path.join(d, "downloads", f"verify-{j.id}.h5ad")
        try:
            root.fetch(j.id, path)
        except CandiesError as e:
            checks.fail(f"job {j.id} SUCCEEDED but its result does not download: {e}")
            continue
        sha = sha256_file(path)
        on_disk = os.path.join(d, "data", "results", f"{j.id}.h5ad")
        if sha != sha256_file(on_disk):
            checks.fail(f"job {j.id}: downloaded result differs from {on_disk}")
        if j.id in fetched and fetched[j.id] != {sha}:
            checks.fail(f"job {j.id}: result changed since it was first downloaded")
        a = check_result(path, j, checks)
        os.remove(path)
        if a is None:
            continue
        checks.add("results intact")
        s = j.spec
        key = (s.mod1_dataset, s.mod2_dataset, s.kind, s.seed, s.n_clusters, s.model_id)
        if not s.save_model:  # a saving job's twin may apply another model's state
            groups.setdefault(key, []).append((j.id, np.asarray(a.obsm["X_candies"])))
        if s.model_id and not bool(a.uns["candies"]["denoise"]["pretrained"]):
            checks.fail(f"job {j.id} applied model {s.model_id} but trained its own")
        if s.save_model:
            verify_model(root, j, checks)
    # The same job (datasets, kind, seed, model) twice gives the same result:
    # a rerun after a kill is the same computation.
    for key, runs in groups.items():
        for job_id, Z in runs[1:]:
            checks.add("repeated jobs compared")
            if not np.array_equal(Z, runs[0][1]):
                checks.fail(f"jobs {runs[0][0]} and {job_id} (same inputs and seed) differ: "
                            f"max |diff| {np.abs(Z - runs[0][1]).max():.3g}")


def verify_model(root, job, checks):
    try:
        root._stub.LoadModel(pb.LoadModelRequest(id=job.model_id), metadata=root._md, timeout=120)
        checks.add("models of SUCCEEDED jobs loadable")
    except grpc.RpcError as e:
        checks.fail(f"job {job.id} SUCCEEDED with model {job.model_id}, which does not load: "
                    f"{e.code().name} {e.details()}")


def verify_models(root, jobs, checks):
    """Every listed model loads, whichever job made it."""
    by_model = {j.model_id: j for j in jobs if j.model_id}
    models = root._stub.ListModels(pb.ListModelsRequest(), metadata=root._md,
                                   timeout=RPC_TIMEOUT).models
    checks.add("models listed", len(models))
    for m in models:
        j = by_model.get(m.id)
        if j is not None and j.state != pb.JOB_STATE_SUCCEEDED:
            checks.add("models listed whose job did not succeed (killed after the save)")
        try:
            root._stub.LoadModel(pb.LoadModelRequest(id=m.id), metadata=root._md, timeout=120)
        except grpc.RpcError as e:
            checks.fail(f"listed model {m.id} (job {j.id if j else '?'}) does not load: "
                        f"{e.code().name} {e.details()}")


def verify_health(root, events, checks):
    # grpc.health.v1.Health/Check without grpc_health (not in Debian's python3-grpcio):
    # an empty request; the answer's field 1 is the status, SERVING = 1.
    check = root._channel.unary_unary("/grpc.health.v1.Health/Check",
                                      request_serializer=None, response_deserializer=None)
    answer = check(b"", timeout=RPC_TIMEOUT)
    if answer != b"\x08\x01":
        checks.fail(f"health check answered {answer!r}, not SERVING")
    # A fresh job on an accepted pair still runs to the end.
    pairs = [e["spec"] for e in events if e["ev"] == "submit_ok"]
    if not pairs:
        checks.fail("no job was ever accepted")
        return
    job = root.submit(pairs[0]["mod1"], pairs[0]["mod2"], n_clusters=3, kind="integrate")
    end = time.time() + 300
    while time.time() < end:
        j = root.get(job)
        if j.state in FINAL:
            break
        time.sleep(0.5)
    if j.state != pb.JOB_STATE_SUCCEEDED:
        checks.fail(f"a fresh job after the chaos ended {pb.JobState.Name(j.state)}: {j.error}")
    else:
        checks.add("fresh job after the chaos succeeded")


def verify(d, settle_seconds):
    checks = Checks()
    events = read_journal(d)
    root = Client(address(d), token=token(d, "root"), timeout=RPC_TIMEOUT, progress=False)
    t0 = time.time()
    jobs = settle(root, settle_seconds, checks)
    checks.add("settle seconds", round(time.time() - t0))
    verify_uploads(d, root, events, checks)
    verify_jobs(d, root, jobs, events, checks)
    verify_models(root, jobs, checks)
    verify_health(root, events, checks)
    for e in events:
        if e["ev"] == "error":
            checks.add(f"calls failed during the chaos: {e['what']} {e['code']}")
    left = sum(len(glob.glob(os.path.join(d, "data", p))) for p in (
        "datasets/*.tmp", "results/*.tmp*", "results/*.pictures/*.tmp", "models/*.tmp.*"))
    checks.add("temporary files left behind", left)
    for key, n in checks.counts.items():
        print(f"{key:<48} {n}")
    print(f"{'invariants failed':<48} {len(checks.failures)}")
    return 1 if checks.failures else 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "load":
        load(argv[2], int(argv[3]) if len(argv) > 3 else 1)
        return 0
    if len(argv) >= 3 and argv[1] == "verify":
        return verify(argv[2], float(argv[3]) if len(argv) > 3 else 600)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
