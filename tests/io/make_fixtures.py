"""Writes reference files for io_tests into argv[1] with the real anndata."""
import os
import sys
import warnings

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

out = sys.argv[1]
rng = np.random.default_rng(0)
n_obs, n_vars = 6, 4
X = rng.poisson(1.0, size=(n_obs, n_vars)).astype(np.float32)
obs = pd.DataFrame(
    {
        "cell_type": pd.Categorical(["b", "a", "b", "c", "a", "b"]),
        "n_counts": X.sum(1).astype(np.float64),
        "n_genes": (X > 0).sum(1).astype(np.int64),
        "is_ok": np.array([True, False, True, True, False, True]),
        "label": ["x0", "x1", "x2", "x3", "x4", "x5"],
    },
    index=[f"cell{i}" for i in range(n_obs)],
)
var = pd.DataFrame(index=[f"gene{j}" for j in range(n_vars)])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    a = ad.AnnData(X=X, obs=obs, var=var)
    a.obsm["spatial"] = np.arange(n_obs * 2, dtype=np.float64).reshape(n_obs, 2)
    a.layers["counts"] = sp.csr_matrix(X.astype(np.int32))
    # uns as scanpy leaves it: nested dicts, scalars, strings, arrays.
    a.uns["method"] = "candies"
    a.uns["n_pcs"] = 30
    a.uns["neighbors"] = {"params": {"n_neighbors": 15, "metric": "cosine", "scale": 0.5},
                          "connectivities_key": "connectivities"}
    a.uns["pca"] = {"variance_ratio": np.array([0.5, 0.25, 0.125])}
    a.uns["cell_type_colors"] = np.array(["#1f77b4", "#ff7f0e", "#279e68"], dtype=object)
    a.write_h5ad(os.path.join(out, "dense.h5ad"))
    b = a.copy()
    b.X = sp.csr_matrix(X)
    b.write_h5ad(os.path.join(out, "csr.h5ad"))
    c = a.copy()
    c.X = sp.csc_matrix(X.astype(np.float64))
    c.write_h5ad(os.path.join(out, "csc.h5ad"))
np.savetxt(os.path.join(out, "X.txt"), X)

# Corrupt corpus, derived from csr.h5ad.
def patched(name, fn):
    import shutil
    p = os.path.join(out, name)
    shutil.copy(os.path.join(out, "csr.h5ad"), p)
    with h5py.File(p, "r+") as f:
        fn(f)

def decreasing_indptr(f):
    ip = f["X/indptr"][...]
    ip[2] = ip[3] + 1
    f["X/indptr"][...] = ip

def index_out_of_range(f):
    ix = f["X/indices"][...]
    ix[0] = 99
    f["X/indices"][...] = ix

def nan_in_x(f):
    d = f["X/data"][...]
    d[0] = np.nan
    f["X/data"][...] = d

def unknown_encoding(f):
    f["X"].attrs["encoding-type"] = "weird_matrix"

def wrong_rows(f):
    # A dense X with one row more than obs, encoded as anndata writes arrays.
    del f["X"]
    f["X"] = np.ones((n_obs + 1, n_vars), dtype=np.float32)
    f["X"].attrs["encoding-type"] = "array"
    f["X"].attrs["encoding-version"] = "0.2.0"

patched("bad_indptr.h5ad", decreasing_indptr)
patched("bad_index.h5ad", index_out_of_range)
patched("nan.h5ad", nan_in_x)
patched("bad_encoding.h5ad", unknown_encoding)
patched("bad_rows.h5ad", wrong_rows)
data = open(os.path.join(out, "csr.h5ad"), "rb").read()
open(os.path.join(out, "truncated.h5ad"), "wb").write(data[: len(data) // 2])
open(os.path.join(out, "random.h5ad"), "wb").write(rng.bytes(4096))
open(os.path.join(out, "text.h5ad"), "w").write("obs,var\n1,2\n")

# A 10x CellRanger/Space Ranger filtered_feature_bc_matrix.h5: CSC features x barcodes.
feat_types = ["Gene Expression"] * 3 + ["Antibody Capture"] * 2
dense10x = np.array(  # barcodes x features
    [[1, 0, 2, 7, 0], [0, 3, 0, 0, 8], [4, 0, 0, 9, 1], [0, 0, 5, 0, 0]], dtype=np.int32)
csc = sp.csc_matrix(dense10x.T)  # features x barcodes
with h5py.File(os.path.join(out, "tenx.h5"), "w") as f:
    m = f.create_group("matrix")
    m["barcodes"] = np.array([b"AAA-1", b"CCC-1", b"GGG-1", b"TTT-1"], dtype="S5")
    m["data"] = csc.data
    m["indices"] = csc.indices.astype(np.int64)
    m["indptr"] = csc.indptr.astype(np.int64)
    m["shape"] = np.array(csc.shape, dtype=np.int32)
    g = m.create_group("features")
    g["id"] = np.array([b"ENSG1", b"ENSG2", b"ENSG3", b"CD3", b"CD4"])
    g["name"] = np.array([b"GeneA", b"GeneB", b"GeneC", b"CD3_TotalA", b"CD4_TotalA"])
    g["feature_type"] = np.array([t.encode() for t in feat_types])
    g["genome"] = np.array([b"GRCh38"] * 5)
# Space Ranger 1.x tissue_positions_list.csv has no header; CCC-1 is off tissue, TTT-1 absent.
with open(os.path.join(out, "tissue_positions_list.csv"), "w") as f:
    f.write("AAA-1,1,0,0,100,200\nCCC-1,0,0,1,110,210\nGGG-1,1,1,0,120,220\n")

# anndata 0.7 layout: no encoding attributes on columns, categoricals as int8
# codes with a `categories` object-reference attribute into __categories,
# sparse X with h5sparse_format / h5sparse_shape, fixed-length byte strings.
with h5py.File(os.path.join(out, "legacy07.h5ad"), "w") as f:
    Xs = sp.csr_matrix(X)
    g = f.create_group("X")
    g.attrs["h5sparse_format"] = "csr"
    g.attrs["h5sparse_shape"] = np.array(Xs.shape)
    g["data"] = Xs.data
    g["indices"] = Xs.indices
    g["indptr"] = Xs.indptr
    o = f.create_group("obs")
    o.attrs["_index"] = "index"
    o.attrs["column-order"] = np.array(["cell_type", "n_counts"], dtype=object)
    o["index"] = np.array([f"cell{i}".encode() for i in range(n_obs)], dtype="S5")
    cats = o.create_group("__categories")
    cats["cell_type"] = np.array([b"a", b"b", b"c"])
    o["cell_type"] = np.array([1, 0, 1, 2, 0, 1], dtype=np.int8)
    o["cell_type"].attrs["categories"] = cats["cell_type"].ref
    o["n_counts"] = X.sum(1).astype(np.float64)
    v = f.create_group("var")
    v.attrs["_index"] = "index"
    v.attrs["column-order"] = np.array([])  # as anndata writes an empty column list
    v["index"] = np.array([f"gene{j}".encode() for j in range(n_vars)], dtype="S5")

# anndata 0.10/0.11: nullable-integer / nullable-boolean groups and
# string-array datasets, written as those versions lay them out.
def enc(obj, t, v):
    obj.attrs["encoding-type"] = t
    obj.attrs["encoding-version"] = v

str_dt = h5py.string_dtype("utf-8")
with h5py.File(os.path.join(out, "nullable011.h5ad"), "w") as f:
    enc(f, "anndata", "0.1.0")
    f["X"] = X
    enc(f["X"], "array", "0.2.0")
    o = f.create_group("obs")
    enc(o, "dataframe", "0.2.0")
    o.attrs["_index"] = "_index"
    o.attrs["column-order"] = np.array(["ni", "nb", "s"], dtype=object)
    o.create_dataset("_index", data=np.array([f"cell{i}" for i in range(n_obs)], dtype=object), dtype=str_dt)
    enc(o["_index"], "string-array", "0.2.0")
    ni = o.create_group("ni")
    enc(ni, "nullable-integer", "0.1.0")
    ni["values"] = np.array([1, 2, 0, 4, 5, 6], dtype=np.int64)
    ni["mask"] = np.array([False, False, True, False, False, False])
    nb = o.create_group("nb")
    enc(nb, "nullable-boolean", "0.1.0")
    nb["values"] = np.array([True, False, True, False, True, False])
    nb["mask"] = np.zeros(n_obs, dtype=bool)
    o.create_dataset("s", data=np.array(["u", "v", "w", "x", "y", "z"], dtype=object), dtype=str_dt)
    enc(o["s"], "string-array", "0.2.0")
    v = f.create_group("var")
    enc(v, "dataframe", "0.2.0")
    v.attrs["_index"] = "_index"
    v.attrs["column-order"] = np.array([])  # as anndata writes an empty column list
    v.create_dataset("_index", data=np.array([f"gene{j}" for j in range(n_vars)], dtype=object), dtype=str_dt)
    enc(v["_index"], "string-array", "0.2.0")
    for k in ("obsm", "varm", "layers", "obsp", "uns"):
        enc(f.create_group(k), "dict", "0.1.0")
