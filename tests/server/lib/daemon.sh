# shellcheck shell=bash disable=SC2034,SC2154  # globals shared with the sourcing test
# Shared by the shell tests in tests/server/ that drive a daemon process
# (candiesd or candiesd_mean): a scratch folder cleaned up on exit, a daemon on
# ephemeral loopback ports, the test identities' tokens and small AnnData
# inputs. Sourced, not run: the test sets `daemon` (the daemon binary), `cli`
# (the candies CLI) and `py` (a Python with numpy and anndata) first, then
# calls make_test_dir. The functions set and read these globals: dir, pid,
# addr, metrics_addr.

# make_test_dir: `dir` becomes a fresh temporary folder; on exit (pass or
# fail) a daemon still running is killed and the folder removed.
make_test_dir() {
  dir=$(mktemp -d)
  pid=
  trap _daemon_cleanup EXIT
}
_daemon_cleanup() {
  if [ -n "$pid" ]; then
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

# fail MESSAGE...: prints FAIL: MESSAGE and the daemon's last log lines, exits 1.
fail() {
  echo "FAIL: $*"
  tail -20 "$dir/err.log" 2>/dev/null
  exit 1
}

# start_daemon FLAGS...: starts $daemon on a free loopback port with its data
# in $dir/data (stdout to $dir/out.log, stderr to $dir/err.log) plus FLAGS,
# and waits up to 10 s for its port file. Sets pid, addr (the gRPC host:port)
# and metrics_addr (the HTTP server's host:port; empty when it has none).
# Environment set before the call (VAR=value start_daemon ...) reaches the daemon.
start_daemon() {
  rm -f "$dir/data/candiesd.port" "$dir/data/candiesd.metrics"
  "$daemon" --listen 127.0.0.1:0 --data-dir "$dir/data" "$@" >"$dir/out.log" 2>"$dir/err.log" &
  pid=$!
  for _ in $(seq 1 200); do
    [ -s "$dir/data/candiesd.port" ] && break
    sleep 0.05
  done
  [ -s "$dir/data/candiesd.port" ] || fail "no candiesd.port after 10 s"
  addr=$(cat "$dir/data/candiesd.port")
  case "$addr" in 127.0.0.1:[1-9]*) ;; *) fail "bad address '$addr'";; esac
  # The daemon writes candiesd.metrics before candiesd.port (server/daemon.cc).
  metrics_addr=
  if [ -s "$dir/data/candiesd.metrics" ]; then metrics_addr=$(cat "$dir/data/candiesd.metrics"); fi
}

# stop_daemon: SIGTERM; the daemon must be gone within 5 s with exit status 0.
stop_daemon() {
  kill -TERM "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then fail "daemon ignored SIGTERM"; fi
  wait "$pid" || fail "daemon exited non-zero on SIGTERM"
  pid=
}

# kill_daemon: a crash (kill -9); what it had committed must survive a restart.
kill_daemon() {
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
}

# make_tokens: bearer tokens in $dir/tokens for alice and bob (role user) and
# root (role admin); sets alice, bob and root to them.
make_tokens() {
  alice=$("$cli" token add alice --role user --file "$dir/tokens" 2>/dev/null)
  bob=$("$cli" token add bob --role user --file "$dir/tokens" 2>/dev/null)
  root=$("$cli" token add root --role admin --file "$dir/tokens" 2>/dev/null)
}

# write_inputs N_SPOTS SEED [N_RNA_GENES]: $dir/inputs/rna.h5ad (N_RNA_GENES
# genes, default 7) and prot.h5ad (3 proteins) on the same N_SPOTS spots, Poisson
# counts and random coordinates from numpy's generator with SEED; beside each,
# NAME.mean holds the mean of its X (float64), for checks on computed metrics.
write_inputs() {
  mkdir -p "$dir/inputs"
  "$py" - "$dir/inputs" "$1" "$2" "${3:-7}" <<'PY'
import sys, numpy as np, anndata
out, n, seed, n_rna = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(seed)
for name, n_vars in (("rna", n_rna), ("prot", 3)):
    x = rng.poisson(3.0, size=(n, n_vars)).astype(np.float32)
    a = anndata.AnnData(X=x)
    a.obs_names = [f"spot{i}" for i in range(n)]
    a.var_names = [f"{name}{j}" for j in range(n_vars)]
    a.obsm["spatial"] = rng.uniform(0, 10, size=(n, 2))
    a.write_h5ad(f"{out}/{name}.h5ad")
    open(f"{out}/{name}.mean", "w").write(repr(float(x.astype(np.float64).mean())))
PY
}
