#!/usr/bin/env bash
# End-to-end CLI check: simulate a small grid, run CANDIES on it, read the result
# back with anndata, and check that bad input fails with one line and exit 1.
set -euo pipefail
bin=$1
py=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" simulate --out "$dir/sim" --grid 20 --seed 3 >/dev/null
"$bin" run --mod1 "$dir/sim/rna.h5ad" --mod1-kind rna --mod2 "$dir/sim/protein.h5ad" \
  --mod2-kind protein --n-clusters 5 --labels-key domain --device cpu --seed 1 \
  --out "$dir/out.h5ad" >"$dir/stdout" 2>"$dir/stderr"
grep -q '^ARI' "$dir/stdout"
grep -q 'integrate' "$dir/stderr"
"$py" - "$dir/out.h5ad" "$dir/sim/rna.h5ad" <<'PY'
import sys, anndata
out, rna = anndata.read_h5ad(sys.argv[1]), anndata.read_h5ad(sys.argv[2])
assert list(out.obs_names) == list(rna.obs_names)
assert out.obs["candies_cluster"].dtype.name == "category"
assert out.obsm["X_candies"].shape == (400, 64) and out.obsm["X_candies"].dtype == "float32"
assert "spatial" in out.obsm and "X_candies_mod1" in out.obsm
assert out.uns["candies"]["low_quality"] in ("mod1", "mod2")
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
