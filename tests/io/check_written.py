"""Opens a file candies wrote with the real anndata, warnings as errors, and
checks values, names, categories and sparse structure. Exit 0 on success."""
import sys
import warnings

warnings.simplefilter("error")
import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

a = ad.read_h5ad(sys.argv[1])
assert a.shape == (3, 4), a.shape
assert list(a.obs_names) == ["c0", "c1", "c2"], list(a.obs_names)
assert list(a.var_names) == ["g0", "g1", "g2", "g3"]
assert sp.isspmatrix_csr(a.X), type(a.X)
assert a.X.dtype == np.int32, a.X.dtype
expected = np.array([[1, 0, 0, 2], [0, 0, 3, 0], [4, 5, 0, 6]])
assert (a.X.toarray() == expected).all(), a.X.toarray()
assert list(a.obs["cluster"].cat.categories) == ["a", "b"]
assert list(a.obs["cluster"]) == ["b", "a", "b"]
assert list(a.obs["name"]) == ["x", "y", "z"]
assert a.obs["score"].dtype == np.float64 and a.obs["score"][1] == 0.5
assert list(a.obs["count"]) == [1, 2, 3]
assert a.obs["flag"].dtype == bool and list(a.obs["flag"]) == [True, False, True]
assert a.obsm["spatial"].shape == (3, 2) and a.obsm["spatial"][2, 1] == 5
assert a.layers["dense"].dtype == np.float64
assert (a.layers["dense"] == expected).all()
assert a.uns["method"] == "candies", a.uns["method"]
assert a.uns["params"]["k"] == 10 and a.uns["params"]["alpha"] == 0.25
assert list(a.uns["params"]["names"]) == ["p", "q"]
print("ok")
