#!/usr/bin/env python3
"""Reads an .h5ad written by candies and checks uns["rank_genes_groups"] as
scanpy would: rec-arrays with one field per group, params. Prints one line per
group: GROUP TOP_NAME TOP_PVAL. With scanpy installed, also runs
sc.get.rank_genes_groups_df and checks it agrees with the rec-arrays.

Usage: check_uns.py FILE.h5ad
"""
import sys

import anndata

adata = anndata.read_h5ad(sys.argv[1])
rg = adata.uns["rank_genes_groups"]
params = rg["params"]
assert params["groupby"] == "domain" and params["reference"] == "rest", params
assert params["method"] == "wilcoxon" and not params["use_raw"], params
groups = rg["names"].dtype.names
for key in ("scores", "pvals", "pvals_adj", "logfoldchanges"):
    assert rg[key].dtype.names == groups, (key, rg[key].dtype.names)
    assert len(rg[key]) == len(rg["names"]), key
try:
    import scanpy as sc
except ImportError:
    sc = None
for group in groups:
    if sc is not None:
        df = sc.get.rank_genes_groups_df(adata, group=group)
        assert list(df["names"]) == list(rg["names"][group]), group
        assert (df["pvals"].values == rg["pvals"][group]).all(), group
    print(group, rg["names"][group][0], repr(float(rg["pvals"][group][0])))
print("scanpy" if sc is not None else "anndata-only")
