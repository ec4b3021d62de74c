#!/usr/bin/env python3
"""Reference marker features for tests/analysis, computed by scanpy 1.9.6.

Usage: make_reference.py OUTPUT  (the committed copy is tests/analysis/reference.txt)

scanpy is not a Debian package: run this with a throwaway virtual environment,
  /usr/bin/python3 -m venv --system-site-packages /tmp/scanpy-venv
  /tmp/scanpy-venv/bin/pip install --no-deps scanpy==1.9.6 session-info stdlib-list \
      umap-learn==0.5.5 pynndescent==0.5.11
(the rest of scanpy's dependencies are Debian's python3-* packages).

The input is integer counts with a few marker genes per group, many zeros
(ties) and one all-zero gene. They are normalised as candies does
(LogNormalizeCounts: per cell x * 1e4 / total, log1p, in float64, then
float32) and ranked with
  sc.tl.rank_genes_groups(adata, "domain", method="wilcoxon", tie_correct=True)

Format, one record a line, whitespace separated:
  shape N G
  genes NAME...
  groups LABEL...            one per observation
  counts v...                N x G row-major integers
  result GROUP RANK NAME SCORE PVAL PVAL_ADJ LOGFOLDCHANGE   every gene, best first
"""
import sys
import warnings

import anndata
import numpy as np
import pandas as pd
import scanpy as sc

warnings.simplefilter("ignore")
rng = np.random.RandomState(20261203)
groups = np.array(["B", "A", "D", "C"])[rng.randint(0, 4, size=150)]
n, g = len(groups), 60
rate = np.full((n, g), 0.6)
for k, label in enumerate(["A", "B", "C", "D"]):
    rate[groups == label, 4 * k: 4 * k + 4] *= 6.0       # four markers per group
    rate[groups == label, 40 + k] *= 0.1                  # one depleted gene per group
counts = rng.poisson(rate * rng.uniform(0.5, 2.0, size=(n, 1)))
counts[:, 59] = 0                                          # a constant gene: z = 0, p = 1
genes = ["gene%02d" % j for j in range(g)]

totals = counts.sum(axis=1, dtype=np.float64)
scale = np.where(totals > 0, 1e4 / np.where(totals > 0, totals, 1), 0.0)
x = np.log1p(counts.astype(np.float64) * scale[:, None]).astype(np.float32)

adata = anndata.AnnData(X=x, obs=pd.DataFrame({"domain": pd.Categorical(groups)},
                                              index=["c%d" % i for i in range(n)]),
                        var=pd.DataFrame(index=genes))
sc.tl.rank_genes_groups(adata, "domain", method="wilcoxon", tie_correct=True)
rg = adata.uns["rank_genes_groups"]

out = ["shape %d %d" % (n, g), "genes " + " ".join(genes), "groups " + " ".join(groups),
       "counts " + " ".join(str(int(v)) for v in counts.ravel())]
for label in rg["names"].dtype.names:
    for rank in range(g):
        out.append("result %s %d %s %r %r %r %r" % (
            label, rank, rg["names"][label][rank], float(rg["scores"][label][rank]),
            float(rg["pvals"][label][rank]), float(rg["pvals_adj"][label][rank]),
            float(rg["logfoldchanges"][label][rank])))
with open(sys.argv[1], "w") as f:
    f.write("\n".join(out) + "\n")
