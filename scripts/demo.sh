#!/usr/bin/env bash
# One command from a fresh Debian machine to the main job on the built-in demo
# data: installs dependencies, builds Release, simulates the paper's benchmark
# (RNA sd 3, dropout 0.3), starts candiesd with its defaults, runs CANDIES on
# the data through the daemon (`candies run --server`), prints the ARI, the
# result path and the metrics URL, and stops the daemon.
# CANDIES_DEMO_LOCAL=1 runs the same job in-process instead (no daemon).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$root/build"
bin=$root/build/bin
out=${CANDIES_DEMO_DIR:-$root/build/demo}
mkdir -p "$out"
"$bin/candies" simulate --out "$out/sim" --seed 0
args=(--mod1 "$out/sim/rna.h5ad" --mod1-kind rna --mod2 "$out/sim/protein.h5ad"
  --mod2-kind protein --n-clusters 5 --labels-key domain --preset fast --seed 0
  --out "$out/candies_demo.h5ad" --out-denoised "$out/candies_demo_denoised.h5ad")

if [[ "${CANDIES_DEMO_LOCAL:-0}" == 1 ]]; then
  "$bin/candies" run "${args[@]}" | tee "$out/run.txt"
  metrics_url="(no daemon: CANDIES_DEMO_LOCAL=1)"
else
  # The daemon with its embedded defaults (gRPC 127.0.0.1:50051, metrics
  # 127.0.0.1:9464); a port already taken falls back to a free one.
  data=$out/candies-data
  rm -f "$data/candiesd.port" "$data/candiesd.metrics"
  listen=127.0.0.1:50051 metrics=127.0.0.1:9464
  if (exec 3<>/dev/tcp/127.0.0.1/50051) 2>/dev/null; then listen=127.0.0.1:0; fi
  if (exec 3<>/dev/tcp/127.0.0.1/9464) 2>/dev/null; then metrics=127.0.0.1:0; fi
  # Every call is authenticated (docs/SECURITY.md): one user token for the demo.
  tokens=$out/candies-tokens
  rm -f "$tokens"
  CANDIES_TOKEN=$("$bin/candies" token add demo --role user --file "$tokens" 2>/dev/null)
  export CANDIES_TOKEN
  "$bin/candiesd" --token-file "$tokens" --listen "$listen" --metrics-listen "$metrics" --data-dir "$data" \
    >"$out/candiesd.out" 2>"$out/candiesd.log" &
  pid=$!
  trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
  for _ in $(seq 1 200); do
    [[ -s "$data/candiesd.port" ]] && break
    kill -0 $pid 2>/dev/null || { cat "$out/candiesd.log"; exit 1; }
    sleep 0.05
  done
  addr=$(cat "$data/candiesd.port")
  metrics_url="http://$(cat "$data/candiesd.metrics")/metrics"
  echo "demo: candiesd on $addr (log $out/candiesd.log)"
  "$bin/candies" run "${args[@]}" --server "$addr" | tee "$out/run.txt"
  jobs=$(curl -sf "$metrics_url" | grep '^candies_jobs_total' || true)
  echo "demo: metrics at $metrics_url: ${jobs:-(none)}"
  kill -TERM $pid
  wait $pid
  trap - EXIT
  echo "demo: candiesd stopped"
fi
ari=$(awk '$1 == "ARI" {print $2}' "$out/run.txt")
echo "demo: ARI ${ari} against the simulated domains"
echo "demo: result in $out/candies_demo.h5ad (obs[\"candies_cluster\"], obsm[\"X_candies\"], obsm[\"X_candies_denoised\"])"
echo "demo: denoised matrix in $out/candies_demo_denoised.h5ad (input values in layers[\"raw\"])"
echo "demo: metrics URL was $metrics_url"
