"""Writes crafted (hostile) .h5ad files into argv[1] for the reader-hardening tests.

Each file is small on disk but declares something the reader must refuse before
allocating or reading: sizes the file cannot hold, raw data stored outside the
file, links into other files, malformed sparse structure, empty dataspaces.
The expected error for each file is asserted in tests/io/hostile_test.cc.
Also writes `flips/flip_NN.h5ad`: 20 copies of a small valid file with one byte
changed each (fixed seed), for the "no crash, no silent success" test.
"""
import os
import sys

import h5py
import numpy as np

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
str_dt = h5py.string_dtype("utf-8")


def enc(obj, t, v="0.2.0"):
    obj.attrs["encoding-type"] = t
    obj.attrs["encoding-version"] = v


def frame(f, name, n, chunked_empty=False):
    """A dataframe group with an `_index` of n strings (unwritten when chunked_empty)."""
    g = f.create_group(name)
    enc(g, "dataframe")
    g.attrs["_index"] = "_index"
    g.attrs["column-order"] = np.array([])
    if chunked_empty:
        g.create_dataset("_index", shape=(n,), dtype=str_dt, chunks=(min(n, 1024),))
    else:
        g.create_dataset("_index", data=np.array([f"n{i}" for i in range(n)], dtype=object),
                         dtype=str_dt)
    enc(g["_index"], "string-array")
    return g


def small(f, n_obs=6, n_vars=4):
    enc(f, "anndata", "0.1.0")
    frame(f, "obs", n_obs)
    frame(f, "var", n_vars)


def write(name, fn):
    with h5py.File(os.path.join(out, name), "w") as f:
        fn(f)


# 1. The 1.2 GB case: X declared 20000 x 15000 float32, chunked, no chunk ever
#    written. The file is ~10 KB; HDF5 would fabricate 1.2 GB of fill values
#    (the shape check against obs x var came only after the read).
def unallocated_x(f):
    small(f)
    f.create_dataset("X", shape=(20000, 15000), dtype="f4", chunks=(500, 500))
    enc(f["X"], "array")


# 2. An obs index of 2^60 strings (unallocated): vector::assign threw length_error.
def huge_index(f):
    enc(f, "anndata", "0.1.0")
    frame(f, "obs", 2 ** 60, chunked_empty=True)
    frame(f, "var", 4)


# 3. An uns scalar with a null dataspace: x.at(0) threw out_of_range.
def null_scalar(f):
    small(f)
    u = f.create_group("uns")
    enc(u, "dict", "0.1.0")
    u.create_dataset("n_pcs", data=h5py.Empty("f8"))


# 4. X stored in an external raw file (here the generator's own text file):
#    HDF5 would read any file the process can read as matrix values.
def external_storage(f):
    small(f, 2, 2)
    secret = os.path.join(out, "outside_secret.txt")
    with open(secret, "wb") as s:
        s.write(b"0123456789abcdef")
    f.create_dataset("X", shape=(2, 2), dtype="f4", external=[(secret, 0, 16)])
    enc(f["X"], "array")


# 5. obs is an external link into another file.
def external_link(f):
    with h5py.File(os.path.join(out, "linked_target.h5"), "w") as t:
        frame(t, "obs", 6)
    enc(f, "anndata", "0.1.0")
    f["obs"] = h5py.ExternalLink(os.path.join(out, "linked_target.h5"), "/obs")
    frame(f, "var", 4)


# 6. X is a virtual dataset mapping another file's data.
def virtual(f):
    src = os.path.join(out, "virtual_source.h5")
    with h5py.File(src, "w") as s:
        s["d"] = np.ones((6, 4), dtype="f4")
    small(f)
    layout = h5py.VirtualLayout(shape=(6, 4), dtype="f4")
    layout[:] = h5py.VirtualSource(src, "d", shape=(6, 4))
    f.create_virtual_dataset("X", layout)
    enc(f["X"], "array")


def csr(f, indptr, indices, data, shape):
    g = f.create_group("X")
    enc(g, "csr_matrix", "0.1.0")
    g.attrs["shape"] = np.array(shape, dtype=np.int64)
    g["indptr"] = np.array(indptr, dtype=np.int64)
    g["indices"] = np.array(indices, dtype=np.int32)
    g["data"] = np.array(data, dtype=np.float32)


# 7. CSR with a duplicate column in row 1.
def csr_duplicate(f):
    small(f, 2, 3)
    csr(f, [0, 1, 3], [0, 2, 2], [1, 2, 3], (2, 3))


# 8. CSR with unsorted columns in row 0 (valid for scipy; the reader sorts them).
def csr_unsorted(f):
    small(f, 2, 3)
    csr(f, [0, 2, 3], [2, 0, 1], [5, 7, 9], (2, 3))


# 9. CSR indptr that does not start at 0.
def csr_indptr_start(f):
    small(f, 2, 3)
    csr(f, [1, 2, 3], [0, 1, 2], [1, 2, 3], (2, 3))


# 10. Sparse shape whose minor dimension exceeds what int32 indices can address.
def csr_huge_minor(f):
    enc(f, "anndata", "0.1.0")
    frame(f, "obs", 1)
    frame(f, "var", 1)
    o = f.create_group("obsm")
    enc(o, "dict", "0.1.0")
    g = o.create_group("wide")
    enc(g, "csr_matrix", "0.1.0")
    g.attrs["shape"] = np.array([1, 2 ** 40], dtype=np.int64)
    g["indptr"] = np.array([0, 0], dtype=np.int64)
    g["indices"] = np.array([], dtype=np.int32)
    g["data"] = np.array([], dtype=np.float32)


# 11. A fixed-width string index whose width times length overflows 64 bits.
def string_overflow(f):
    enc(f, "anndata", "0.1.0")
    g = f.create_group("obs")
    enc(g, "dataframe")
    g.attrs["_index"] = "_index"
    g.attrs["column-order"] = np.array([])
    g.create_dataset("_index", shape=(2 ** 40,), dtype="S16777216", chunks=(1,))
    frame(f, "var", 4)


write("unallocated_x.h5ad", unallocated_x)
write("huge_index.h5ad", huge_index)
write("null_scalar.h5ad", null_scalar)
write("external_storage.h5ad", external_storage)
write("external_link.h5ad", external_link)
write("virtual.h5ad", virtual)
write("csr_duplicate.h5ad", csr_duplicate)
write("csr_unsorted.h5ad", csr_unsorted)
write("csr_indptr_start.h5ad", csr_indptr_start)
write("csr_huge_minor.h5ad", csr_huge_minor)
write("string_overflow.h5ad", string_overflow)


# A small valid file and 20 copies with one byte changed each.
def good(f):
    small(f, 6, 4)
    f["X"] = np.arange(24, dtype=np.float32).reshape(6, 4)
    enc(f["X"], "array")


write("good_small.h5ad", good)
data = bytearray(open(os.path.join(out, "good_small.h5ad"), "rb").read())
rng = np.random.default_rng(14)
os.makedirs(os.path.join(out, "flips"), exist_ok=True)
for i in range(20):
    b = bytearray(data)
    pos = int(rng.integers(0, len(b)))
    b[pos] ^= 1 << int(rng.integers(0, 8))
    open(os.path.join(out, "flips", f"flip_{i:02d}.h5ad"), "wb").write(bytes(b))
