#!/usr/bin/env bash
# One command from a fresh Debian machine to the main job on the built-in demo
# data: installs dependencies, builds Release, simulates the paper's benchmark
# (RNA sd 3, dropout 0.3), runs CANDIES on it and prints the ARI and the output.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build"
bin=$root/build/bin
out=${CANDIES_DEMO_DIR:-$root/build/demo}
mkdir -p "$out"
"$bin/candies" simulate --out "$out/sim" --seed 0
"$bin/candies" run --mod1 "$out/sim/rna.h5ad" --mod1-kind rna \
  --mod2 "$out/sim/protein.h5ad" --mod2-kind protein \
  --n-clusters 5 --labels-key domain --preset fast --seed 0 \
  --out "$out/candies_demo.h5ad" | tee "$out/run.txt"
ari=$(awk '$1 == "ARI" {print $2}' "$out/run.txt")
echo "demo: ARI ${ari} against the simulated domains"
echo "demo: result in $out/candies_demo.h5ad (obs[\"candies_cluster\"], obsm[\"X_candies\"])"
