#!/usr/bin/env python3
"""The published SpatialGlue 1.1.5 on one paired section, by its own tutorial
steps, on CPU with one thread, for bench_families' peer column.

  bench/peers/.venv/bin/python bench/peers/run_spatialglue.py MOD1.h5ad MOD2.h5ad OUT.csv \
      --n-clusters K [--datatype SPOTS|Spatial-epigenome-transcriptome] [--seed S]

MOD1 is the RNA; MOD2 the protein (datatype SPOTS, the tutorial for
RNA + protein arrays) or the ATAC peaks (Spatial-epigenome-transcriptome).
Negative values (simulated additive noise) are clipped to 0 before log1p/CLR:
without it the tutorial's CLR gives NaNs. Spots are never filtered (every spot
needs a label). Writes OUT.csv: spot,label in MOD1's obs order; prints the
seconds of the whole run (reading included) on its last line.
"""
import argparse
import os
import time

T0 = time.time()
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scanpy as sc  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # two threads on a busy 2-core machine were 15x slower

from SpatialGlue.preprocess import (clr_normalize_each_cell, construct_neighbor_graph,  # noqa: E402
                                    fix_seed, lsi, pca)
from SpatialGlue.SpatialGlue_pyG import Train_SpatialGlue  # noqa: E402
from SpatialGlue.utils import clustering  # noqa: E402


def clip(adata):
    x = adata.X
    if sp.issparse(x):
        x = x.tocsr(copy=True)
        x.data = np.maximum(x.data, 0)
        x.eliminate_zeros()
    else:
        x = np.maximum(np.asarray(x, dtype=np.float32), 0)
    adata.X = x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mod1")
    ap.add_argument("mod2")
    ap.add_argument("out")
    ap.add_argument("--n-clusters", type=int, required=True)
    ap.add_argument("--datatype", default="SPOTS",
                    choices=["SPOTS", "Spatial-epigenome-transcriptome"])
    ap.add_argument("--seed", type=int, default=2022)  # the tutorial's seed
    a = ap.parse_args()
    fix_seed(a.seed)
    rna = sc.read_h5ad(a.mod1)
    other = sc.read_h5ad(a.mod2)
    other = other[rna.obs_names].copy()
    rna.var_names_make_unique()
    other.var_names_make_unique()
    clip(rna)
    clip(other)
    # RNA, as both tutorials do it (without filter_cells: every spot is scored).
    sc.pp.filter_genes(rna, min_cells=10)
    sc.pp.highly_variable_genes(rna, flavor="seurat_v3", n_top_genes=3000)
    sc.pp.normalize_total(rna, target_sum=1e4)
    sc.pp.log1p(rna)
    sc.pp.scale(rna)
    rna_high = rna[:, rna.var["highly_variable"]]
    if a.datatype == "SPOTS":
        other = clr_normalize_each_cell(other)
        sc.pp.scale(other)
        other.obsm["feat"] = pca(other, n_comps=other.n_vars - 1)
        rna.obsm["feat"] = pca(rna_high, n_comps=other.n_vars - 1)
    else:
        sc.pp.highly_variable_genes(other, flavor="seurat_v3",
                                    n_top_genes=min(3000, other.n_vars))
        lsi(other, use_highly_variable=False, n_components=51)
        other.obsm["feat"] = other.obsm["X_lsi"].copy()
        rna.obsm["feat"] = pca(rna_high, n_comps=50)
    data = construct_neighbor_graph(rna, other, datatype=a.datatype)
    model = Train_SpatialGlue(data, datatype=a.datatype, device=torch.device("cpu"))
    output = model.train()
    adata = rna.copy()
    adata.obsm["SpatialGlue"] = output["SpatialGlue"].copy()
    clustering(adata, key="SpatialGlue", add_key="SpatialGlue", n_clusters=a.n_clusters,
               method="mclust", use_pca=True)
    with open(a.out, "w") as f:
        f.write("spot,label\n")
        for spot, label in zip(adata.obs_names, adata.obs["SpatialGlue"].astype(str)):
            f.write(f"{spot},{label}\n")
    print(f"spatialglue seconds {time.time() - T0:.2f}")


if __name__ == "__main__":
    main()
