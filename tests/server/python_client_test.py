"""The installed candies_client package against a running daemon (address in
argv[1]; the daemon's backend writes per-gene means of mod1)."""
import os
import sys
import tempfile

import anndata
import grpc
import numpy as np
import pandas as pd
import scipy.sparse as sps

import candies_client.client as client_module
from candies_client import CandiesError, Client
from candies_client._proto import candies_pb2 as pb

c = Client(sys.argv[1], owner="py", timeout=30, progress=False)
rng = np.random.default_rng(1)
X = rng.poisson(2.0, size=(40, 6)).astype(np.float32)
spatial = rng.uniform(0, 5, size=(40, 2))
obs = [f"s{i}" for i in range(40)]
genes = [f"g{j}" for j in range(6)]
ds = c.upload_dense(X, obs, genes, spatial, name="x")
job = c.submit(ds, ds, n_clusters=3, preset="fast")
last = c.wait(job, timeout=60)
assert last.state == pb.JOB_STATE_SUCCEEDED, last
assert c.get(job).owner == "py"
assert any(j.id == job for j in c.list_jobs(pb.JOB_STATE_SUCCEEDED))
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "r.h5ad")
    assert c.fetch(job, path) > 0
    r = anndata.read_h5ad(path)
    np.testing.assert_allclose(np.asarray(r.X)[0], X.mean(axis=0), rtol=1e-5)
# Errors are CandiesError with the gRPC code and the field the server named.
try:
    c.submit(ds, ds, n_clusters=0)
    raise AssertionError("n_clusters=0 accepted")
except CandiesError as e:
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and e.field == "n_clusters", (e.code(), e.field)
# The uploads carry a CRC-32 and were accepted; a wrong one is DATA_LOSS and
# stores nothing.
n_datasets = len(c._stub.ListDatasets(pb.ListDatasetsRequest(), timeout=30).datasets)


class BadZlib:
    @staticmethod
    def crc32(data, value=0):
        import zlib
        return zlib.crc32(data, value) ^ 1


client_module.zlib = BadZlib
try:
    c.upload_dense(X, obs, genes, spatial)
    raise AssertionError("bad checksum accepted")
except CandiesError as e:
    assert e.code() == grpc.StatusCode.DATA_LOSS and e.field == "checksum_crc32", (e.code(), e.details())
import zlib  # noqa: E402
client_module.zlib = zlib
assert len(c._stub.ListDatasets(pb.ListDatasetsRequest(), timeout=30).datasets) == n_datasets
# AnnData objects: a sparse X goes up as CSR blocks (with its checksum), obs
# columns travel along, run() returns the result as an AnnData.
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
except CandiesError as e:
    assert e.code() == grpc.StatusCode.NOT_FOUND and e.field == "part", (e.code(), e.details())
# Large sparse blocks: several CSR chunks, the checksum spans them all.
big = sps.random(3000, 400, density=0.5, format="csr", random_state=3, dtype=np.float32)
bad = anndata.AnnData(X=big)
bad.obsm["spatial"] = rng.uniform(0, 5, size=(3000, 2))
ds_big = c.upload_anndata(bad, name="big")
job = c.submit(ds_big, ds_big, n_clusters=2)
c.wait(job, timeout=60)
means, _ = c.fetch_array(job, "X_candies")
np.testing.assert_allclose(means[0], np.asarray(big.mean(axis=0))[0], rtol=1e-4)
assert list(c.list_models()) == []
print("python client ok")
