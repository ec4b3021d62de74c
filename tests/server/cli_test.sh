#!/usr/bin/env bash
# The CLI's client commands against a real daemon process whose backend
# computes per-gene means (mean_daemon_main.cc): upload, submit, watch, fetch,
# status, cancel, bad requests; 8 clients submitting at once; kill -9 with a job
# running and two queued (all run after the restart); then kill -9 + restart
# keeps jobs and datasets.
set -euo pipefail
daemon=$1
cli=$2
py=$3
# shellcheck source-path=SCRIPTDIR source=lib/daemon.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/daemon.sh"
make_test_dir
start() { start_daemon --insecure-dev-mode --metrics-listen "" --allowed-dir "$dir/inputs"; }
write_inputs 50 0
start
grep -q "candiesd listening on $addr" "$dir/out.log"
grep -q 'msg="started"' "$dir/err.log"
rna=$(timeout 30 "$cli" upload "$dir/inputs/rna.h5ad" --kind rna --server "$addr" --owner alice)
prot=$(timeout 30 "$cli" upload "$dir/inputs/prot.h5ad" --kind protein --server "$addr")
job=$(timeout 30 "$cli" submit --mod1 "$rna" --mod2 "$prot" --n-clusters 5 --preset fast \
  --server "$addr" --owner alice)
state=$(timeout 60 "$cli" watch "$job" --server "$addr" --timeout 50)
test "$state" = SUCCEEDED
timeout 30 "$cli" status "$job" --server "$addr" | grep -q "^owner: alice$"
timeout 30 "$cli" fetch "$job" --out "$dir/result.h5ad" --server "$addr"
"$py" - "$dir/result.h5ad" "$dir/inputs/rna.h5ad" <<'PY'
import sys, numpy as np, anndata
out, rna = anndata.read_h5ad(sys.argv[1]), anndata.read_h5ad(sys.argv[2])
assert list(out.var_names) == list(rna.var_names)
np.testing.assert_allclose(np.asarray(out.X)[0], np.asarray(rna.X).mean(axis=0), rtol=1e-5)
PY
# Bad requests: exit 1 with the field named.
set +e
timeout 30 "$cli" submit --mod1 "$rna" --mod2 ds-missing --n-clusters 5 --server "$addr" 2>"$dir/bad"
rc=$?
set -e
test "$rc" -eq 1
grep -q mod2_dataset "$dir/bad"
set +e
timeout 30 "$cli" cancel "$job" --server "$addr" 2>"$dir/bad"
rc=$?
set -e
test "$rc" -eq 1
grep -q "already ended" "$dir/bad"
# Unreachable server: an error, not a hang.
set +e
timeout 30 "$cli" list --server 127.0.0.1:1 --timeout 2 2>"$dir/bad"
rc=$?
set -e
test "$rc" -eq 1

# 8 clients at once, each its own owner: every job succeeds and is listed.
clients=()
for i in $(seq 1 8); do
  (
    j=$(timeout 30 "$cli" submit --mod1 "$rna" --mod2 "$prot" --n-clusters 2 --server "$addr" --owner "c$i")
    test "$(timeout 60 "$cli" watch "$j" --server "$addr" --timeout 50)" = SUCCEEDED
    echo "$j" >"$dir/client$i"
  ) &
  clients+=($!)
done
for c in "${clients[@]}"; do wait "$c"; done
timeout 30 "$cli" list --server "$addr" >"$dir/jobs8"
for i in $(seq 1 8); do
  grep -q "^$(cat "$dir/client$i") SUCCEEDED full c$i " "$dir/jobs8"
done

# kill -9 with one job running and two queued: after the restart all three run.
kill_daemon
# 50 rows at 400 ms: 20 s per job, so slow1 is still running when slow3 is
# queued even when each CLI start-up takes seconds on a loaded machine; the
# daemon is killed right after, so the delay costs no test time.
CANDIES_TEST_ROW_DELAY_MS=400 start
slow1=$(timeout 30 "$cli" submit --mod1 "$rna" --mod2 "$prot" --n-clusters 2 --server "$addr")
for _ in $(seq 1 100); do
  timeout 30 "$cli" status "$slow1" --server "$addr" | grep -q "^state: RUNNING$" && break
  sleep 0.05
done
timeout 30 "$cli" status "$slow1" --server "$addr" | grep -q "^state: RUNNING$"
slow2=$(timeout 30 "$cli" submit --mod1 "$rna" --mod2 "$prot" --n-clusters 2 --server "$addr")
slow3=$(timeout 30 "$cli" submit --mod1 "$rna" --mod2 "$prot" --n-clusters 2 --server "$addr")
timeout 30 "$cli" status "$slow3" --server "$addr" | grep -q "^queue_position: 1$"
kill_daemon
start
for j in "$slow1" "$slow2" "$slow3"; do
  test "$(timeout 60 "$cli" watch "$j" --server "$addr" --timeout 50)" = SUCCEEDED
done
timeout 30 "$cli" status "$slow1" --server "$addr" | grep -q "^attempt: 2$"
timeout 30 "$cli" status "$slow3" --server "$addr" | grep -q "^attempt: 1$"

# kill -9 and restart: the job and the datasets are still there.
kill_daemon
start
timeout 30 "$cli" list --server "$addr" >"$dir/jobs"
grep -q "^$job SUCCEEDED full alice " "$dir/jobs"
timeout 30 "$cli" list --datasets --server "$addr" >"$dir/datasets"
grep -q "^$rna rna.h5ad 50x7 alice " "$dir/datasets"
grep -q "^$prot " "$dir/datasets"
timeout 30 "$cli" fetch "$job" --out "$dir/again.h5ad" --server "$addr"
cmp "$dir/result.h5ad" "$dir/again.h5ad"
stop_daemon
echo "service cli ok"
