#!/usr/bin/env bash
# Chaos bench for candiesd (issue 15): N kill -9's at random moments of uploads,
# running jobs, result writes and model saves, aimed at the daemon, its
# candies-worker children or its candies-validate child, while two users keep
# uploading, submitting and downloading (bench/chaos/chaos.py load). Then the
# daemon settles and chaos.py verify checks that every accepted upload and
# every SUCCEEDED result is intact, every job ended (FAILED ones with a reason),
# nothing stays QUEUED/RUNNING, saved models load and the daemon still serves.
# Prints the counts; exits 1 when an invariant fails. bench/chaos/README.md.
#
# usage: bench/chaos/run.sh [--kills N] [--build DIR] [--seed S] [--workers W]
#                           [--settle SECONDS] [--keep]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
kills=100 build=$root/build seed=1 workers=2 settle=600 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kills) kills=$2; shift 2;;
    --build) build=$2; shift 2;;
    --seed) seed=$2; shift 2;;
    --workers) workers=$2; shift 2;;
    --settle) settle=$2; shift 2;;
    --keep) keep=1; shift;;
    *) sed -n '2,13p' "$0" >&2; exit 2;;
  esac
done
daemon=$build/bin/candiesd
cli=$build/bin/candies
py=/usr/bin/python3  # Debian's, with python3-grpcio, numpy, anndata
for f in "$daemon" "$cli" "$build/bin/candies-worker" "$build/bin/candies-validate"; do
  [ -x "$f" ] || { echo "chaos: $f missing (build it first)" >&2; exit 2; }
done

# shellcheck source-path=SCRIPTDIR source=../../tests/server/lib/daemon.sh
. "$root/tests/server/lib/daemon.sh"
make_test_dir
load_pid=
chaos_cleanup() {
  if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null || true; fi
  if [ "$keep" = 1 ]; then
    if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
    echo "chaos: kept $dir"
  else
    _daemon_cleanup
  fi
}
trap chaos_cleanup EXIT
t_start=$(date +%s)

make_tokens
for who in alice bob root; do printf '%s\n' "${!who}" >"$dir/$who.token"; done
# Three small sections with the same features (a model saved on one applies to all).
for s in 1 2 3; do
  "$cli" simulate --out "$dir/sim$s" --grid $((6 + 2 * s)) --seed "$s" --n-genes 40 \
    --n-proteins 10 --rna-markers 5 --protein-markers 2 >/dev/null
done

flags=(--token-file "$dir/tokens" --metrics-listen "" --workers "$workers")
start_daemon "${flags[@]}"
: >"$dir/daemon.log"
mkfifo "$dir/nap"
exec {nap}<>"$dir/nap"
# nap MILLISECONDS: sleep without a fork (the kill loop polls every 10 ms).
nap() { read -r -t "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))" -u "$nap" _ || true; }
rand() { echo $((RANDOM % ($2 - $1 + 1) + $1)); }  # rand LO HI

"$py" "$here/chaos.py" load "$dir" "$seed" >"$dir/load.log" 2>&1 &
load_pid=$!

# What is happening now, as run.sh can see it from outside.
children() { pgrep -P "$pid" -f "$1" || true; }
uploading() { compgen -G "$dir/flags/upload.*" >/dev/null; }
fetching() { compgen -G "$dir/flags/fetch.*" >/dev/null; }
# A temporary file written since the round began: a write in progress (kills
# leave older ones behind; the daemon does not remove them).
round_ref=$dir/round.ref
fresh() {
  local f
  for f in "$@"; do [ -e "$f" ] && [ "$f" -nt "$round_ref" ] && return 0; done
  return 1
}
writing_result() { fresh "$dir"/data/results/*.tmp* "$dir"/data/results/*.pictures/*.tmp*; }
# A model folder being written, or just renamed into place (the job has not
# reported yet).
saving_model() { fresh "$dir"/data/models/*; }

# wait_for MOMENT TIMEOUT_MS: until the moment is seen (true) or the time is up.
wait_for() {
  local moment=$1 left=$2 step=10
  while [ "$left" -gt 0 ]; do
    case "$moment" in
      transfer) { uploading || fetching; } && return 0;;
      result) writing_result && return 0;;
      model) saving_model && return 0;;
      job) step=100; [ -n "$(children candies-worker)" ] && return 0;;
    esac
    nap "$step"
    left=$((left - step))
  done
  return 1
}

RANDOM=$seed
declare -A n
n_key() { n[$1]=$((${n[$1]:-0} + 1)); }
printf 'round\taimed_at\ttarget\tuploading\tworkers\tresult_write\tmodel_save\tfetching\n' >"$dir/kills.tsv"
for round in $(seq 1 "$kills"); do
  kill -0 "$pid" 2>/dev/null || fail "round $round: candiesd died without being killed"
  touch "$round_ref"
  r=$((RANDOM % 100))
  if [ $r -lt 20 ]; then moment=transfer timeout=15000
  elif [ $r -lt 50 ]; then moment=job timeout=15000
  elif [ $r -lt 70 ]; then moment=result timeout=25000
  elif [ $r -lt 80 ]; then moment=model timeout=60000  # a saving job trains ~17 s, more under load
  else moment=random timeout=0
  fi
  if [ "$moment" = random ] || ! wait_for "$moment" "$timeout"; then
    [ "$moment" = random ] || n_key "moment $moment not seen in time"
    moment=random
  fi
  # Land at different phases: right away for the short result/model writes,
  # up to 0.4 s into an upload, up to 3 s into a job.
  case "$moment" in
    transfer) nap "$(rand 0 400)";;
    job|random) nap "$(rand 0 3000)";;
  esac
  workers_now=$(children candies-worker)
  validators=$(children candies-validate)
  state="$(uploading && echo 1 || echo 0)	$(echo "$workers_now" | grep -c . || true)	$(writing_result && echo 1 || echo 0)	$(saving_model && echo 1 || echo 0)	$(fetching && echo 1 || echo 0)"
  r=$((RANDOM % 100))
  if [ -n "$validators" ] && [ $r -lt 30 ]; then
    target=validator
  elif [ -n "$workers_now" ] && [ $r -lt 60 ]; then
    target=worker
  else
    target=daemon
  fi
  case "$target" in
    validator) kill -9 "$(echo "$validators" | head -1)" 2>/dev/null || true;;
    worker)
      mapfile -t running <<<"$workers_now"
      kill -9 "${running[RANDOM % ${#running[@]}]}" 2>/dev/null || true;;
    daemon)
      kill_daemon
      # Its workers and validators die with it (PR_SET_PDEATHSIG): no orphans.
      for child in $workers_now $validators; do
        for _ in $(seq 1 40); do kill -0 "$child" 2>/dev/null || break; nap 50; done
        if kill -0 "$child" 2>/dev/null; then
          kill -9 "$child" 2>/dev/null || true
          fail "round $round: child $child outlived the killed daemon"
        fi
      done
      cat "$dir/err.log" >>"$dir/daemon.log"
      start_daemon "${flags[@]}"  # fails the bench when no port within 10 s
      ;;
  esac
  n_key "kills of the $target"
  printf '%s\t%s\t%s\t%s\n' "$round" "$moment" "$target" "$state" >>"$dir/kills.tsv"
  nap "$(rand 200 2000)"
done

touch "$dir/stop"
wait "$load_pid" || fail "the load generator failed: $(tail -5 "$dir/load.log")"
load_pid=
echo "chaos: $kills kills, seed $seed, workers $workers"
for k in "${!n[@]}"; do printf '%-48s %s\n' "$k" "${n[$k]}"; done | sort
awk -F'\t' 'NR > 1 { u += $4; w += ($5 > 0); r += $6; m += $7; f += $8 }
  END { printf "%-48s %d\n%-48s %d\n%-48s %d\n%-48s %d\n%-48s %d\n",
        "kills while an upload was in flight", u, "kills while a worker ran", w,
        "kills while a result was being written", r, "kills while a model was being saved", m,
        "kills while a result was being downloaded", f }' "$dir/kills.tsv"
rc=0
"$py" "$here/chaos.py" verify "$dir" "$settle" || rc=1
cat "$dir/err.log" >>"$dir/daemon.log"
stop_daemon
printf '%-48s %s\n' "daemon restarts" "${n[kills of the daemon]:-0}"
printf '%-48s %s\n' "wall seconds" "$(($(date +%s) - t_start))"
printf '%-48s %s\n' "load average (1, 5, 15 min)" "$(cut -d' ' -f1-3 /proc/loadavg)"
[ $rc = 0 ] && echo "chaos: all invariants hold" || echo "chaos: INVARIANTS FAILED"
exit $rc
