#!/usr/bin/env bash
# Installs the published SpatialGlue 1.1.5 (PyPI `spatialglue`) into a virtual
# environment of its own, bench/peers/.venv (git-ignored), for bench_families'
# peer column. Everything heavy comes from Debian: torch 1.13 (SpatialGlue's
# model is plain torch, no CUDA wheel needed), scanpy's scientific
# dependencies, R with mclust and rpy2 (SpatialGlue clusters with mclust).
# pip adds only the pure-Python packages Debian lacks, with --no-deps: without
# it pip replaces Debian's h5py (registered under another name) and torch.
# scikit-misc: scanpy's seurat_v3 highly-variable genes (SpatialGlue's tutorial) need it;
# Debian has no package for it (its 0.3.1 wheel works with Debian's numpy 1.24).
#
#   bench/peers/setup_spatialglue.sh         # idempotent; prints the check at the end
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
# Debian's packages. scanpy 1.9.6 imports: anndata, numpy, scipy, pandas,
# sklearn, statsmodels, numba, matplotlib, seaborn, h5py, tqdm, natsort, joblib,
# networkx, patsy, packaging; umap-learn needs pynndescent.
PACKAGES=(python3-venv python3-pip python3-torch python3-anndata python3-numpy python3-scipy
  python3-pandas python3-sklearn python3-statsmodels python3-numba python3-matplotlib
  python3-seaborn python3-h5py python3-tqdm python3-natsort python3-joblib python3-networkx
  python3-patsy python3-packaging python3-pynndescent python3-igraph python3-louvain
  r-base-core r-cran-mclust python3-rpy2)
if ! dpkg -s "${PACKAGES[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
fi
if [[ ! -x "$venv/bin/python" ]]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
"$venv/bin/python" -m pip install -q --no-deps spatialglue==1.1.5 scanpy==1.9.6 umap-learn \
  session-info stdlib-list scikit-misc==0.3.1
"$venv/bin/python" - <<'PY'
import torch, scanpy, SpatialGlue, rpy2.robjects as ro
ro.r("library(mclust)")
print("spatialglue venv ok: torch", torch.__version__, "scanpy", scanpy.__version__)
PY
