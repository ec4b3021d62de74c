"""The Python client against a running daemon (address in argv[1]; the
daemon's backend writes per-gene means of mod1)."""
import os
import sys
import tempfile

import anndata
import grpc
import numpy as np

sys.path[:0] = [sys.argv[2], sys.argv[3]]  # generated stubs, client/python
from candies.v1 import candies_pb2 as pb  # noqa: E402
from candies_client import Client, fnv1a64  # noqa: E402

c = Client(sys.argv[1], owner="py", timeout=30)
rng = np.random.default_rng(1)
X = rng.poisson(2.0, size=(40, 6)).astype(np.float32)
spatial = rng.uniform(0, 5, size=(40, 2))
ds = c.upload(X, [f"s{i}" for i in range(40)], [f"g{j}" for j in range(6)], spatial, name="x")
job = c.submit(ds, ds, n_clusters=3, preset="fast")
events = list(c.watch(job, timeout=60))
assert events[-1].state == pb.JOB_STATE_SUCCEEDED, events[-1]
assert c.get(job).owner == "py"
assert any(j.id == job for j in c.list_jobs(pb.JOB_STATE_SUCCEEDED))
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "r.h5ad")
    assert c.fetch(job, path) > 0
    r = anndata.read_h5ad(path)
    np.testing.assert_allclose(np.asarray(r.X)[0], X.mean(axis=0), rtol=1e-5)
# Errors carry the gRPC code and the field.
try:
    c.submit(ds, ds, n_clusters=0)
    raise AssertionError("n_clusters=0 accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "n_clusters" in e.details()
# The upload above carried the client's FNV-1a and was accepted; a wrong
# checksum is DATA_LOSS and stores nothing.
import candies_client  # noqa: E402
n_datasets = len(c._stub.ListDatasets(pb.ListDatasetsRequest(), timeout=30).datasets)
candies_client.fnv1a64 = lambda data: fnv1a64(data) ^ 1
try:
    c.upload(X, [f"s{i}" for i in range(40)], [f"g{j}" for j in range(6)], spatial)
    raise AssertionError("bad checksum accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.DATA_LOSS, e
assert len(c._stub.ListDatasets(pb.ListDatasetsRequest(), timeout=30).datasets) == n_datasets
# AnnData objects: a sparse X goes up as CSR blocks (with its checksum), obs
# columns travel along, run() returns the result as an AnnData.
import scipy.sparse as sps  # noqa: E402
import pandas as pd  # noqa: E402
candies_client.fnv1a64 = fnv1a64
Xs = sps.random(30, 8, density=0.3, format="csr", random_state=2, dtype=np.float32)
ad = anndata.AnnData(X=Xs, obs=pd.DataFrame(
    {"domain": pd.Categorical(["a", "b", "c"] * 10)}, index=[f"t{i}" for i in range(30)]))
ad.obsm["spatial"] = rng.uniform(0, 5, size=(30, 2))
result = c.run(ad, ad, n_clusters=2, labels_key="domain", timeout=60)
np.testing.assert_allclose(np.asarray(result.X)[0], np.asarray(Xs.mean(axis=0))[0], rtol=1e-5)
emb, names = c.fetch_array(result.uns["candies_job"], "X_candies")
assert names == ["mean"] and emb.shape == (1, 8), (names, emb.shape)
np.testing.assert_allclose(emb[0], np.asarray(Xs.mean(axis=0))[0], rtol=1e-5)
labels, _ = c.fetch_array(result.uns["candies_job"], "candies_cluster")
assert labels.tolist() == [0], labels
try:
    c.fetch_array(result.uns["candies_job"], "X_candies_denoised")
    raise AssertionError("missing part served")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.NOT_FOUND and "part" in e.details(), e
# The stored dataset kept the domain column (the server reads it for labels_key).
assert list(c.list_models()) == []
print("python client ok")
