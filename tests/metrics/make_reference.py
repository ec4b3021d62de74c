#!/usr/bin/env python3
"""Reference values for tests/metrics, computed by scikit-learn (Debian 1.2).

Usage: make_reference.py OUTPUT  (writes a plain-text file the C++ test reads;
the committed copy is tests/metrics/reference.txt).

Format, one record a line, whitespace separated:
  labels NAME N v...           integer label vector
  embedding NAME N D v...      row-major float32 matrix (printed with repr)
  neighbors NAME N K v...      kNN list (row-major)
  value METRIC CASE... VALUE   expected value ("nan" when sklearn raises)

Moran's I: esda is not installed, so it is computed here with numpy from the
textbook formula I = n / S0 * z'Wz / z'z with W the row-standardised kNN
weights (esda.Moran's definition with transformation="r").
"""
import sys
import warnings

import numpy as np
from sklearn import metrics

warnings.simplefilter("ignore")
rng = np.random.RandomState(20240611)
out = []


def emit_labels(name, v):
    v = np.asarray(v, dtype=np.int64)
    out.append(" ".join(["labels", name, str(len(v))] + [str(int(t)) for t in v]))
    return v


def emit_embedding(name, x):
    x = np.asarray(x, dtype=np.float32)
    out.append("embedding %s %d %d %s" % (name, x.shape[0], x.shape[1],
                                          " ".join(repr(float(t)) for t in x.ravel())))
    return x


def emit_value(metric, case, value):
    out.append("value %s %s %s" % (metric, case, repr(float(value))))


# --- supervised: pairs of label vectors -----------------------------------
pairs = {}
truth = rng.randint(0, 5, size=300)
noisy = truth.copy()
flip = rng.rand(300) < 0.3
noisy[flip] = rng.randint(0, 7, size=flip.sum())
pairs["noisy"] = (truth, noisy)
perm = np.array([3, 0, 4, 1, 2])
pairs["permuted"] = (truth, perm[truth] + 10)             # same partition, new names
pairs["random"] = (rng.randint(0, 4, size=200), rng.randint(0, 6, size=200))
pairs["one_cluster"] = (rng.randint(0, 3, size=50), np.zeros(50, dtype=int))
pairs["both_one"] = (np.zeros(20, dtype=int), np.full(20, 7))
pairs["singletons"] = (rng.randint(0, 3, size=40), np.arange(40))
pairs["two_points"] = (np.array([0, 1]), np.array([5, 5]))
pairs["single_point"] = (np.array([4]), np.array([9]))
pairs["empty"] = (np.array([], dtype=int), np.array([], dtype=int))
pairs["negative_codes"] = (np.array([-1, -1, 2, 2, 3, 3, -1]), np.array([0, 0, 0, 1, 1, 1, 1]))

supervised = {
    "ARI": metrics.adjusted_rand_score,
    "MI": metrics.mutual_info_score,
    "NMI": lambda a, b: metrics.normalized_mutual_info_score(a, b, average_method="arithmetic"),
    "AMI": lambda a, b: metrics.adjusted_mutual_info_score(a, b, average_method="arithmetic"),
    "homogeneity": metrics.homogeneity_score,
    "completeness": metrics.completeness_score,
    "v_measure": metrics.v_measure_score,
    "FMI": metrics.fowlkes_mallows_score,
}
for name, (a, b) in pairs.items():
    emit_labels(name + ".truth", a)
    emit_labels(name + ".pred", b)
    for metric, fn in supervised.items():
        try:
            value = fn(a, b)
        except Exception:  # sklearn raises (MI of empty input): the C++ gives NaN
            value = float("nan")
        emit_value(metric, name, value)

# --- unsupervised: embeddings with labels ---------------------------------
centers = rng.randn(4, 6) * 3
blob_labels = rng.randint(0, 4, size=240)
blobs = centers[blob_labels] + rng.randn(240, 6)
cases = {
    "blobs": (blobs, blob_labels),
    "blobs_noisy": (blobs, np.where(rng.rand(240) < 0.2, rng.randint(0, 4, size=240), blob_labels)),
    "with_singleton": (rng.randn(30, 3), np.r_[np.zeros(15, dtype=int), np.ones(14, dtype=int), [2]]),
}
for name, (x, lab) in cases.items():
    x = emit_embedding(name, x)
    lab = emit_labels(name + ".labels", lab)
    x64 = x.astype(np.float64)  # exact arithmetic on the float32 values, as the C++ does
    emit_value("silhouette", name, metrics.silhouette_score(x64, lab, metric="euclidean"))
    emit_value("davies_bouldin", name, metrics.davies_bouldin_score(x64, lab))
    emit_value("calinski_harabasz", name, metrics.calinski_harabasz_score(x64, lab))

# --- Moran's I on a 2-D grid with a kNN list -------------------------------
side = 12
grid = np.array([(i, j) for i in range(side) for j in range(side)], dtype=float)
n = len(grid)
k = 6
d2 = ((grid[:, None, :] - grid[None, :, :]) ** 2).sum(-1)
np.fill_diagonal(d2, np.inf)
nbrs = np.argsort(d2, axis=1, kind="stable")[:, :k]
out.append("neighbors grid %d %d %s" % (n, k, " ".join(str(int(t)) for t in nbrs.ravel())))


def morans_i(y, nbrs):
    n, k = nbrs.shape
    w = np.zeros((n, n))
    for i in range(n):
        w[i, nbrs[i]] = 1.0 / k
    z = y - y.mean()
    return n / w.sum() * (z @ w @ z) / (z @ z)


smooth = grid[:, 0] + 0.5 * grid[:, 1] + rng.randn(n) * 0.5
noise = rng.randn(n)
out.append("values smooth %d %s" % (n, " ".join(repr(float(t)) for t in smooth)))
out.append("values noise %d %s" % (n, " ".join(repr(float(t)) for t in noise)))
emit_value("morans_i", "smooth", morans_i(smooth, nbrs))
emit_value("morans_i", "noise", morans_i(noise, nbrs))
domains = (grid[:, 0] >= side / 2).astype(int) + 2 * (grid[:, 1] >= side / 2).astype(int)
scattered = rng.randint(0, 3, size=n)
for name, lab in {"domains": domains, "scattered": scattered}.items():
    emit_labels(name, lab)
    emit_value("morans_i_labels", name,
               np.mean([morans_i((lab == c).astype(float), nbrs) for c in np.unique(lab)]))

with open(sys.argv[1], "w") as f:
    f.write("# generated by tests/metrics/make_reference.py; sklearn %s\n" % __import__("sklearn").__version__)
    f.write("\n".join(out) + "\n")
