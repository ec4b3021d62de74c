#!/usr/bin/env bash
# Latency of the read-only HTTP/JSON API (docs/SERVICE.md, "HTTP/JSON API") over
# loopback: a real candiesd runs the demo job (simulated section, 1296 spots,
# --preset fast) once, JOBS more jobs are submitted and cancelled (rows for the
# list; the daemon is idle while it is measured), then every GET path is timed
# REQUESTS times, each on a new connection (the server serves one request per
# connection), with a bearer token. Prints p50 / p99 per path.
# Usage: bench/service/http_api_latency.sh [BUILD_DIR=build] [REQUESTS=300] [JOBS=20]
set -euo pipefail
build=${1:-build}
requests=${2:-300}
jobs=${3:-20}
bin=$(realpath "$build/bin")
py=${CANDIES_PYTHON:-python3}
dir=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; fi; rm -rf "$dir"' EXIT
token=$("$bin/candies" token add bench --role user --file "$dir/tokens" 2>/dev/null)
"$bin/candies" simulate --out "$dir/sim" --seed 0 >/dev/null
"$bin/candiesd" --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$dir/data" \
  --token-file "$dir/tokens" >/dev/null 2>"$dir/log" &
pid=$!
for _ in $(seq 1 200); do [ -s "$dir/data/candiesd.port" ] && break; sleep 0.05; done
addr=$(cat "$dir/data/candiesd.port")
export CANDIES_TOKEN=$token
rna=$("$bin/candies" upload "$dir/sim/rna.h5ad" --kind rna --server "$addr")
prot=$("$bin/candies" upload "$dir/sim/protein.h5ad" --kind protein --server "$addr")
job=$("$bin/candies" submit --mod1 "$rna" --mod2 "$prot" --n-clusters 5 --server "$addr")
"$bin/candies" watch "$job" --server "$addr" --timeout 900 >/dev/null
for _ in $(seq 1 "$jobs"); do
  more=$("$bin/candies" submit --mod1 "$rna" --mod2 "$prot" --n-clusters 5 --server "$addr")
  "$bin/candies" cancel "$more" --server "$addr" >/dev/null
done
echo "candiesd: 1 finished demo job + $jobs cancelled; $requests GETs per path, new connection each"
"$py" - "$(cat "$dir/data/candiesd.metrics")" "$token" "$job" "$requests" <<'PY'
import http.client, sys, time
host, token, job, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
h, p = host.rsplit(":", 1)
print(f"{'path':34s} {'p50 ms':>8s} {'p99 ms':>8s} {'bytes':>8s}")
for path in ["/healthz", "/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/metrics",
             "/v1/jobs/{id}/report", "/v1/queue", "/v1/models", "/metrics"]:
    t = []
    for _ in range(n):
        c = http.client.HTTPConnection(h, int(p))
        t0 = time.perf_counter()
        c.request("GET", path.replace("{id}", job), headers={"Authorization": "Bearer " + token})
        r = c.getresponse()
        body = r.read()
        t.append(time.perf_counter() - t0)
        c.close()
        assert r.status == 200, (path, r.status, body[:200])
    t.sort()
    print(f"{path:34s} {1e3 * t[len(t) // 2]:8.2f} {1e3 * t[min(len(t) - 1, int(len(t) * 0.99))]:8.2f} {len(body):8d}")
PY
