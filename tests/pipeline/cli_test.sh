#!/usr/bin/env bash
# End-to-end CLI check: simulate a small grid, run CANDIES on it, read the result
# back with anndata, and check that bad input fails with one line and exit 1.
set -euo pipefail
bin=$1
py=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" simulate --out "$dir/sim" --grid 20 --seed 3 >/dev/null
# A tissue family (core/sim/families.h): RNA + ATAC, written as <kind>.h5ad that anndata reads.
"$bin" simulate --family grid_atac_rna --seed 2 --out "$dir/fam" >/dev/null
"$py" - "$dir/fam" <<'PY'
import sys, anndata
d = sys.argv[1]
rna, atac = anndata.read_h5ad(f"{d}/rna.h5ad"), anndata.read_h5ad(f"{d}/atac.h5ad")
assert rna.n_obs == atac.n_obs == 1600 and list(rna.obs_names) == list(atac.obs_names)
assert rna.obs["domain"].dtype.name == "category" and rna.obs["domain"].nunique() == 6
assert atac.obsm["spatial"].shape == (1600, 2) and atac.n_vars == 2000
PY
if "$bin" simulate --family no_such --out "$dir/x" 2>"$dir/err"; then exit 1; fi
grep -q "grid_shapes" "$dir/err"
"$bin" run --mod1 "$dir/sim/rna.h5ad" --mod1-kind rna --mod2 "$dir/sim/protein.h5ad" \
  --mod2-kind protein --n-clusters 5 --labels-key domain --device cpu --seed 1 \
  --out "$dir/out.h5ad" --out-denoised "$dir/denoised.h5ad" --save-model "$dir/model" \
  --report "$dir/report.html" >"$dir/stdout" 2>"$dir/stderr"
grep -q '^ARI' "$dir/stdout"
test -f "$dir/model/model.txt"
# The saved model applied to another section of the same panel: no training.
"$bin" simulate --out "$dir/sim2" --grid 20 --seed 4 >/dev/null
"$bin" run --mod1 "$dir/sim2/rna.h5ad" --mod2 "$dir/sim2/protein.h5ad" --n-clusters 5 \
  --device cpu --load-model "$dir/model" --out "$dir/out2.h5ad" \
  --out-denoised "$dir/denoised2.h5ad" >"$dir/stdout2" 2>"$dir/stderr2"
grep -q 'seconds denoise' "$dir/stderr2"
if grep -q 'gae_mod1' "$dir/stderr2"; then echo "applying a model retrained the RNA GAE"; exit 1; fi
grep -q 'integrate' "$dir/stderr"
"$py" - "$dir/out.h5ad" "$dir/sim/rna.h5ad" <<'PY'
import sys, anndata
out, rna = anndata.read_h5ad(sys.argv[1]), anndata.read_h5ad(sys.argv[2])
assert list(out.obs_names) == list(rna.obs_names)
assert out.obs["candies_cluster"].dtype.name == "category"
assert out.obsm["X_candies"].shape == (400, 64) and out.obsm["X_candies"].dtype == "float32"
assert "spatial" in out.obsm and "X_candies_mod1" in out.obsm
assert out.uns["candies"]["low_quality"] in ("mod1", "mod2")
rgg = out.uns["rank_genes_groups"]
assert rgg["params"]["groupby"] == "candies_cluster" and rgg["params"]["method"] == "wilcoxon"
assert set(rgg["names"].dtype.names) == set(out.obs["candies_cluster"].cat.categories)
PY
# The report (pictures inline) and `candies plot` from the written files.
for id in domains modalities denoising losses confusion low-quality parameters seconds metrics warnings markers; do
  grep -q "<h2 id=\"$id\">" "$dir/report.html" || { echo "report: no section $id"; exit 1; }
done
grep -q 'src="data:image/png;base64,' "$dir/report.html"
"$bin" plot "$dir/out.h5ad" --denoised "$dir/denoised.h5ad" --out "$dir/pictures" >"$dir/plot.out"
for f in domains domains_by_modality denoising losses confusion; do
  test -s "$dir/pictures/$f.png" || { echo "candies plot: no $f.png"; cat "$dir/plot.out"; exit 1; }
done
# Exports for downstream tools, read back with anndata / pandas.
"$bin" export "$dir/out.h5ad" --denoised "$dir/denoised.h5ad" --out "$dir/export" >/dev/null
"$py" - "$dir" <<'PY'
import sys, anndata, pandas as pd
d = sys.argv[1]
out = anndata.read_h5ad(f"{d}/out.h5ad")
dom = pd.read_csv(f"{d}/export/domains.csv", dtype={"domain": str})
assert list(dom["spot"]) == list(out.obs_names)
assert list(dom["domain"]) == list(out.obs["candies_cluster"].astype(str))
mk = pd.read_csv(f"{d}/export/markers.csv", dtype={"group": str})
assert set(mk["group"]) == set(out.obs["candies_cluster"].cat.categories)
den = anndata.read_h5ad(f"{d}/export/denoised_domains.h5ad")
assert "spatial" in den.obsm and "raw" in den.layers
assert (den.obs["candies_cluster"].astype(str).values ==
        out.obs["candies_cluster"].loc[den.obs_names].astype(str).values).all()
PY
"$py" - "$dir" <<'PY'
import sys, anndata, numpy as np
d = sys.argv[1]
for out_name, den_name, sim, pretrained in (("out", "denoised", "sim", False),
                                            ("out2", "denoised2", "sim2", True)):
    out = anndata.read_h5ad(f"{d}/{out_name}.h5ad")
    den = anndata.read_h5ad(f"{d}/{den_name}.h5ad")
    low = out.uns["candies"]["low_quality"]
    src = anndata.read_h5ad(f"{d}/{sim}/" + ("rna" if low == "mod1" else "protein") + ".h5ad")
    assert list(den.obs_names) == list(src.obs_names)
    assert set(den.var_names) <= set(src.var_names), "denoised features are input features"
    assert den.X.dtype == np.float32 and np.isfinite(den.X).all()
    raw = den.layers["raw"]
    raw = raw.toarray() if hasattr(raw, "toarray") else raw
    want = src[:, list(den.var_names)].X
    want = want.toarray() if hasattr(want, "toarray") else want
    assert np.allclose(raw, want), "layers['raw'] holds the input values"
    assert out.obsm["X_candies_denoised"].dtype == np.float32
    dn = out.uns["candies"]["denoise"]
    assert bool(dn["pretrained"]) == pretrained
    assert dn["schedule"] == "cosine" and dn["sampler"] in ("ddim", "ddpm")
    if not pretrained:
        assert len(dn["losses"]["fold1"]) >= 1
PY
# Errors: one line on stderr, exit 1.
set +e
"$bin" run --mod1 "$dir/sim/rna.h5ad" --mod2 "$dir/missing.h5ad" --n-clusters 5 \
  --out "$dir/x.h5ad" 2>"$dir/err"
rc=$?
set -e
test "$rc" -eq 1
test "$(wc -l <"$dir/err")" -eq 1
set +e
"$bin" run --mod1 "$dir/sim/rna.h5ad" --mod2 "$dir/sim/protein.h5ad" --n-clusters 0 \
  --out "$dir/x.h5ad" 2>"$dir/err"
rc=$?
set -e
test "$rc" -eq 1
grep -q n_clusters "$dir/err"
echo "cli ok"
