#!/usr/bin/env bash
# candiesd end to end over loopback: simulate, upload x2, submit, watch, fetch,
# check the result with anndata; then kill -9, restart, and check the finished
# job and the datasets are still listed. Every wait is bounded.
set -euo pipefail
candiesd=$1
cli=$2
py=$3
dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

start() {
  rm -f "$dir/data/candiesd.port"
  "$candiesd" --listen 127.0.0.1:0 --metrics-listen "" --data-dir "$dir/data" \
    >"$dir/out.log" 2>"$dir/err.log" &
  pid=$!
  for _ in $(seq 1 200); do
    [ -s "$dir/data/candiesd.port" ] && break
    sleep 0.05
  done
  addr=$(cat "$dir/data/candiesd.port")
  case "$addr" in 127.0.0.1:[1-9]*) ;; *) echo "bad address '$addr'"; cat "$dir/err.log"; exit 1;; esac
}

start
grep -q "candiesd listening on $addr" "$dir/out.log"
"$cli" simulate --out "$dir/sim" --grid 20 --seed 3 >/dev/null
rna=$(timeout 60 "$cli" upload "$dir/sim/rna.h5ad" --kind rna --server "$addr")
prot=$(timeout 60 "$cli" upload "$dir/sim/protein.h5ad" --kind protein --server "$addr")
job=$(timeout 60 "$cli" submit --mod1 "$rna" --mod2 "$prot" --n-clusters 5 --preset fast \
  --seed 1 --server "$addr")
state=$(timeout 280 "$cli" watch "$job" --server "$addr" --timeout 270)
test "$state" = SUCCEEDED
timeout 60 "$cli" fetch "$job" --out "$dir/result.h5ad" --server "$addr"
"$py" - "$dir/result.h5ad" "$dir/sim/rna.h5ad" <<'PY'
import sys, anndata
out, rna = anndata.read_h5ad(sys.argv[1]), anndata.read_h5ad(sys.argv[2])
assert list(out.obs_names) == list(rna.obs_names)
assert out.obs["candies_cluster"].dtype.name == "category"
assert out.obs["candies_cluster"].nunique() >= 2
assert out.obsm["X_candies"].shape[0] == 400
assert "spatial" in out.obsm
PY
# Bad request: one line naming the field, exit 1.
set +e
timeout 30 "$cli" submit --mod1 "$rna" --mod2 "$prot" --n-clusters 0 --server "$addr" 2>"$dir/bad"
rc=$?
set -e
test "$rc" -eq 1
grep -q n_clusters "$dir/bad"

# Crash and restart: nothing committed is lost.
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=
start
timeout 30 "$cli" list --server "$addr" >"$dir/jobs"
grep -q "^$job SUCCEEDED full " "$dir/jobs"
timeout 30 "$cli" list --datasets --server "$addr" >"$dir/datasets"
grep -q "^$rna " "$dir/datasets"
grep -q "^$prot " "$dir/datasets"
timeout 60 "$cli" fetch "$job" --out "$dir/again.h5ad" --server "$addr"
cmp "$dir/result.h5ad" "$dir/again.h5ad"
kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$pid" 2>/dev/null; then echo "candiesd ignored SIGTERM"; exit 1; fi
wait "$pid" || { echo "candiesd exited non-zero on SIGTERM"; exit 1; }
pid=
echo "service e2e ok"
