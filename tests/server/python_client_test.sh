#!/usr/bin/env bash
# Starts candiesd_mean on an ephemeral loopback port and runs python_client_test.py.
set -euo pipefail
daemon=$1
py=$2
stubs=$3
client=$4
dir=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
"$daemon" --insecure-dev-mode --listen 127.0.0.1:0 --metrics-listen "" --data-dir "$dir/data" 2>"$dir/err.log" >/dev/null &
pid=$!
for _ in $(seq 1 200); do
  [ -s "$dir/data/candiesd.port" ] && break
  sleep 0.05
done
timeout 100 "$py" "$(dirname "$0")/python_client_test.py" "$(cat "$dir/data/candiesd.port")" \
  "$stubs" "$client"
