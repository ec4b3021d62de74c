#!/usr/bin/env bash
# executor = slurm end to end on a real single-node Slurm (issue 15): starts a
# private cluster on localhost (slurm_cluster.sh: munged, slurmctld, slurmd),
# runs candiesd with executor = slurm and jobs through it:
#   - a job that succeeds, with the same result as a local `candies run`, and
#     whose Slurm job asked for the configured GPU gres;
#   - a job cancelled while Slurm runs it: CANCELLED, and scancel'd in Slurm;
#     its deadline (150 s) gave it a 3-minute Slurm time limit, the other jobs
#     the configured 10 minutes;
#   - a job whose worker is killed with SIGKILL on the node: FAILED, with the reason;
#   - a job whose node goes DOWN under it (NODE_FAIL): submitted again, SUCCEEDED;
#   - a job running in Slurm across a daemon restart: followed, not resubmitted.
# Then stops the cluster. Needs root and Debian's slurm-wlm and munge
# (scripts/setup.sh): without them this test FAILS, it is never skipped.
set -euo pipefail
candiesd=$1
cli=$2
py=$3
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
chmod 0755 "$dir"  # munged (user munge) must reach its socket under here
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  "$here/slurm_cluster.sh" stop "$dir/cluster" || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "slurm e2e: FAILED: $*" >&2
  [ -f "$dir/err.log" ] && tail -n 30 "$dir/err.log" >&2
  exit 1
}

SECONDS=0
if ! env=$("$here/slurm_cluster.sh" start "$dir/cluster"); then
  fail "cannot start a local Slurm cluster (see above). This test needs root and Debian's" \
    "slurm-wlm and munge, which scripts/setup.sh installs."
fi
eval "$env"  # SLURM_CONF: candiesd's sbatch/scontrol/scancel and the checks below
echo "slurm e2e: cluster up in ${SECONDS} s"

# Workers 3: three jobs in Slurm at once.
start_daemon() {
  rm -f "$dir/data/candiesd.port"
  "$candiesd" --insecure-dev-mode --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 \
    --data-dir "$dir/data" --workers 3 --executor slurm --slurm-poll-milliseconds 200 \
    --slurm-cpus-per-task 1 --slurm-memory 2G --slurm-gres gpu:1 --slurm-time-limit 10 \
    >"$dir/out.log" 2>>"$dir/err.log" &
  pid=$!
  for _ in $(seq 1 400); do
    [ -s "$dir/data/candiesd.port" ] && break
    sleep 0.05
  done
  addr=$(cat "$dir/data/candiesd.port" 2>/dev/null || true)
  case "$addr" in 127.0.0.1:[1-9]*) ;; *) fail "candiesd did not start" ;; esac
}
stop_daemon() {
  kill -TERM "$pid"
  wait "$pid" || fail "candiesd exited non-zero on SIGTERM"
  pid=
}
start_daemon

"$cli" simulate --out "$dir/sim" --grid 10 --n-genes 100 --rna-markers 10 --n-proteins 20 \
  --protein-markers 4 --seed 2 >/dev/null
common=(--mod1 "$dir/sim/rna.h5ad" --mod1-kind rna --mod2 "$dir/sim/protein.h5ad"
  --mod2-kind protein --n-clusters 4 --seed 11 --no-denoise)

# 1. Success: the same result as a local run (run at the same time, one core
# each: the Slurm job has --cpus-per-task 1, so its worker one thread).
timeout 120 "$cli" run "${common[@]}" --threads 1 --device cpu --out "$dir/local.h5ad" >/dev/null 2>"$dir/local.err" &
local_pid=$!
timeout 120 "$cli" run "${common[@]}" --server "$addr" --out "$dir/remote.h5ad" >"$dir/remote.txt" 2>&1 ||
  fail "remote run: $(cat "$dir/remote.txt")"
wait "$local_pid" || fail "local run: $(cat "$dir/local.err")"
"$py" - "$dir/remote.h5ad" "$dir/local.h5ad" <<'PY'
import sys, anndata, numpy as np
remote, local = anndata.read_h5ad(sys.argv[1]), anndata.read_h5ad(sys.argv[2])
assert list(remote.obs_names) == list(local.obs_names)
assert (remote.obs["candies_cluster"].astype(str).values == local.obs["candies_cluster"].astype(str).values).all()
np.testing.assert_allclose(remote.obsm["X_candies"], local.obsm["X_candies"], atol=1e-5)
assert remote.obs["candies_cluster"].nunique() >= 2
PY
# That job ran as a Slurm batch job named candies-<job id>, with the gres asked for.
first=$(squeue -h -t all -o '%i %j %T' | awk '$2 ~ /^candies-/ {print; exit}')
[ -n "$first" ] || fail "no candies-* job in squeue -t all"
set -- $first
[ "$3" = COMPLETED ] || fail "Slurm job $1 is $3, not COMPLETED"
scontrol show job -o "$1" | grep -q "TresPerNode=gres:gpu:1" || fail "Slurm job $1 asked for no gres gpu:1"
echo "slurm e2e: success ok (${SECONDS} s)"

# 2 and 3: two jobs at once (kind full: the denoiser keeps them running for
# a while); one cancelled, one whose worker is killed on the node.
rna=$(timeout 60 "$cli" upload "$dir/sim/rna.h5ad" --kind rna --server "$addr" 2>/dev/null)
prot=$(timeout 60 "$cli" upload "$dir/sim/protein.h5ad" --kind protein --server "$addr" 2>/dev/null)
submit() {
  timeout 60 "$cli" submit --mod1 "$rna" --mod2 "$prot" --kind full --n-clusters 4 \
    --seed "$@" --server "$addr" 2>/dev/null
}
cancelled=$(submit 21 --deadline-seconds 150)
killed=$(submit 22)
# The Slurm job of a candies job, once Slurm runs it (bounded wait).
running_slurm_job() {
  for _ in $(seq 1 300); do
    local line
    line=$(squeue -h -t all -n "candies-$1" -o '%i %T' | head -n 1)
    case "$line" in
      *" RUNNING") echo "${line% *}"; return 0 ;;
      *" PENDING" | "") ;;
      *) echo "slurm e2e: Slurm job of $1 is '$line', never seen RUNNING" >&2; return 1 ;;
    esac
    sleep 0.1
  done
  echo "slurm e2e: Slurm job of $1 not RUNNING after 30 s" >&2
  return 1
}
sid_cancelled=$(running_slurm_job "$cancelled") || fail "cancel: job not running"
sid_killed=$(running_slurm_job "$killed") || fail "kill: job not running"
echo "slurm e2e: both running in Slurm (${SECONDS} s)"
# --time: the deadline's 150 s rounded up to 3 minutes, else slurm-time-limit = 10.
limit() { scontrol show job -o "$1" | grep -o 'TimeLimit=[^ ]*'; }
[ "$(limit "$sid_cancelled")" = TimeLimit=00:03:00 ] || fail "job with a deadline: $(limit "$sid_cancelled")"
[ "$(limit "$sid_killed")" = TimeLimit=00:10:00 ] || fail "job without a deadline: $(limit "$sid_killed")"
timeout 30 "$cli" cancel "$cancelled" --server "$addr" >/dev/null
worker=
for _ in $(seq 1 100); do
  for p in $(scontrol listpids "$sid_killed" 2>/dev/null | awk 'NR > 1 {print $1}'); do
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = candies-worker ]; then worker=$p; fi
  done
  [ -n "$worker" ] && break
  sleep 0.1
done
[ -n "$worker" ] || fail "no candies-worker process in Slurm job $sid_killed"
kill -9 "$worker"

state=$(timeout 60 "$cli" watch "$cancelled" --server "$addr" --timeout 50 2>/dev/null || true)
[ "$state" = CANCELLED ] || fail "cancelled job ended '$state'"
slurm_state=$(squeue -h -t all -j "$sid_cancelled" -o %T)
[ "$slurm_state" = CANCELLED ] || fail "Slurm job $sid_cancelled is '$slurm_state' after cancel"
echo "slurm e2e: cancel ok (${SECONDS} s)"

state=$(timeout 60 "$cli" watch "$killed" --server "$addr" --timeout 50 2>/dev/null || true)
[ "$state" = FAILED ] || fail "killed job ended '$state'"
timeout 30 "$cli" status "$killed" --server "$addr" >"$dir/status"
grep -q "^error: .*Slurm job $sid_killed FAILED: the worker was killed by signal 9" "$dir/status" ||
  fail "killed job's error: $(grep '^error' "$dir/status")"
echo "slurm e2e: kill ok (${SECONDS} s): $(grep '^error' "$dir/status")"

# 4. Node failure: the node is set DOWN under a running job (Slurm: NODE_FAIL);
# the daemon submits it again (max-attempts 2) and it succeeds on the node's return.
retried=$(timeout 60 "$cli" submit --mod1 "$rna" --mod2 "$prot" --kind integrate --n-clusters 4 \
  --seed 23 --server "$addr" 2>/dev/null)
sid_first=$(running_slurm_job "$retried") || fail "node failure: job not running"
node=$(hostname -s)
scontrol update nodename="$node" state=down reason=candies-e2e
for _ in $(seq 1 100); do
  [ "$(squeue -h -t all -j "$sid_first" -o %T)" = NODE_FAIL ] && break
  sleep 0.1
done
[ "$(squeue -h -t all -j "$sid_first" -o %T)" = NODE_FAIL ] || fail "Slurm job $sid_first is not NODE_FAIL"
# ReturnToService=2 brings the node back when slurmd registers; resume it if not yet.
case "$(sinfo -h -N -o %T)" in idle | mixed | allocated) ;; *) scontrol update nodename="$node" state=resume ;; esac
state=$(timeout 120 "$cli" watch "$retried" --server "$addr" --timeout 110 2>/dev/null || true)
[ "$state" = SUCCEEDED ] || fail "job after a node failure ended '$state'"
states=$(squeue -h -t all -n "candies-$retried" -o '%i %T' | sort -n | awk '{print $2}' | tr '\n' ' ')
[ "$states" = "NODE_FAIL COMPLETED " ] || fail "Slurm jobs of the retried job: '$states'"
echo "slurm e2e: node failure retried ok (${SECONDS} s)"

# 5. Daemon restart: a job that Slurm runs when candiesd stops goes on running;
# the next start (which requeues the job) follows it instead of submitting again.
survivor=$(timeout 60 "$cli" submit --mod1 "$rna" --mod2 "$prot" --kind integrate --n-clusters 4 \
  --seed 24 --server "$addr" 2>/dev/null)
sid_survivor=$(running_slurm_job "$survivor") || fail "restart: job not running"
stop_daemon
case "$(squeue -h -t all -j "$sid_survivor" -o %T)" in
  RUNNING | COMPLETING | COMPLETED) ;;
  *) fail "Slurm job $sid_survivor is '$(squeue -h -t all -j "$sid_survivor" -o %T)' after candiesd stopped" ;;
esac
start_daemon
state=$(timeout 120 "$cli" watch "$survivor" --server "$addr" --timeout 110 2>/dev/null || true)
[ "$state" = SUCCEEDED ] || fail "job across a daemon restart ended '$state'"
n=$(squeue -h -t all -n "candies-$survivor" -o %i | wc -l)
[ "$n" -eq 1 ] || fail "job across a daemon restart was submitted $n times"
grep -q "following the Slurm job of an earlier daemon.*slurm_job=$sid_survivor" "$dir/err.log" ||
  fail "the restarted daemon did not say it follows Slurm job $sid_survivor"
echo "slurm e2e: restart followed ok (${SECONDS} s)"

# The daemon stops cleanly; then the cluster (trap).
stop_daemon
echo "slurm e2e ok in ${SECONDS} s"
