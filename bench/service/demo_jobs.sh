#!/usr/bin/env bash
# Jobs per hour of the demo job (simulated benchmark, 1296 spots, --preset fast,
# the whole method) through a real candiesd, with 1 client running jobs one
# after another and with 8 clients submitting at once. Each client runs
# `candies run --server` (upload both modalities, submit, watch, fetch).
# Usage: bench/service/demo_jobs.sh [BUILD_DIR] [JOBS_1_CLIENT=2] [WORKERS=1]
set -euo pipefail
build=${1:-build}
n1=${2:-2}
workers=${3:-1}
bin=$build/bin
dir=$(mktemp -d)
trap 'kill -TERM $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
"$bin/candies" simulate --out "$dir/sim" --seed 0 >/dev/null
"$bin/candiesd" --insecure-dev-mode --listen 127.0.0.1:0 --metrics-listen "" --data-dir "$dir/data" \
  --workers "$workers" >/dev/null 2>"$dir/log" &
pid=$!
for _ in $(seq 1 200); do [ -s "$dir/data/candiesd.port" ] && break; sleep 0.05; done
addr=$(cat "$dir/data/candiesd.port")
job() {
  "$bin/candies" run --server "$addr" --owner "client$1" --mod1 "$dir/sim/rna.h5ad" \
    --mod2 "$dir/sim/protein.h5ad" --n-clusters 5 --seed "$1" --out "$dir/out$1.h5ad" \
    >"$dir/run$1.txt" 2>/dev/null
}
t0=$(date +%s.%N)
for i in $(seq 1 "$n1"); do job "$i"; done
t1=$(date +%s.%N)
for i in $(seq 11 18); do job "$i" & done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
for i in $(seq 11 18); do grep -q "^wrote $dir/out$i.h5ad" "$dir/run$i.txt" || { echo "client $i failed"; exit 1; }; done
t2=$(date +%s.%N)
python3 - "$t0" "$t1" "$t2" "$n1" "$workers" "$(nproc)" <<'PY'
import sys
t0, t1, t2 = map(float, sys.argv[1:4])
n1, workers, cores = map(int, sys.argv[4:7])
print(f"demo job through candiesd ({workers} worker(s), {cores} cores)")
print(f"1 client, {n1} jobs in a row: {t1 - t0:.1f} s, {n1 / (t1 - t0) * 3600:.1f} jobs/hour")
print(f"8 clients at once, 8 jobs:  {t2 - t1:.1f} s, {8 / (t2 - t1) * 3600:.1f} jobs/hour")
PY
