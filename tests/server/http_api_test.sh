#!/usr/bin/env bash
# The read-only HTTP/JSON API (server/http_api.h) driven with plain curl
# against a daemon process (candiesd_mean: the real RunDaemon with a small
# computing backend that records a metric and writes a report): three
# identities with bearer tokens (alice, bob: users; root: admin). Checks 401
# without or with a wrong token, each user sees only their own jobs, another
# user's job is 404 exactly like a missing one, the admin sees both, bad query
# parameters are named, /healthz and the OpenAPI document are open and the
# document lists exactly the paths served; then a second start with
# --metrics-require-token true --http-api false.
set -euo pipefail
daemon=$(realpath "$1")
cli=$(realpath "$2")
py=$3
# shellcheck source-path=SCRIPTDIR source=lib/daemon.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/daemon.sh"
make_test_dir
make_tokens
# Values known here, so the job's metric can be checked: mean_x = mean of X
# (inputs/rna.mean).
write_inputs 20 1 5

start() {  # start EXTRA_FLAGS...: a fresh daemon on free ports; sets pid, addr, http
  start_daemon --metrics-listen 127.0.0.1:0 --token-file "$dir/tokens" "$@"
  [ -n "$metrics_addr" ] || fail "no candiesd.metrics"
  http=http://$metrics_addr
}
as() { local t=$1; shift; CANDIES_TOKEN=$t timeout 30 "$cli" "$@" --server "$addr"; }
# get TOKEN PATH: the body into $dir/body, the status code printed ("" = no token).
get() {
  local auth=()
  if [ -n "$1" ]; then auth=(-H "Authorization: Bearer $1"); fi
  curl -sS -o "$dir/body" -D "$dir/headers" -w '%{http_code}' "${auth[@]}" "$http$2"
}
expect() {  # expect CODE TOKEN PATH
  local code
  code=$(get "$2" "$3")
  [ "$code" = "$1" ] || { cat "$dir/body"; fail "GET $3: status $code, want $1"; }
}
# json EXPR: evaluates a Python expression on the last body (as `j`), prints it.
json() { "$py" -c "import json,sys; j=json.load(open(sys.argv[1])); print(($1))" "$dir/body"; }

start
a_rna=$(as "$alice" upload "$dir/inputs/rna.h5ad" --kind rna)
a_prot=$(as "$alice" upload "$dir/inputs/prot.h5ad" --kind protein)
a_job=$(as "$alice" submit --mod1 "$a_rna" --mod2 "$a_prot" --n-clusters 2)
test "$(as "$alice" watch "$a_job" --timeout 25)" = SUCCEEDED || fail "alice's job"
b_rna=$(as "$bob" upload "$dir/inputs/prot.h5ad" --kind rna)
b_job=$(as "$bob" submit --mod1 "$b_rna" --mod2 "$b_rna" --n-clusters 2)
test "$(as "$bob" watch "$b_job" --timeout 25)" = SUCCEEDED || fail "bob's job"

# --- no token, a wrong token: 401 with a JSON error and a Bearer challenge
expect 401 "" /v1/jobs
test "$(json 'j["error"]["code"], j["error"]["status"]')" = "(401, 'UNAUTHENTICATED')" || fail "401 body"
json 'j["error"]["message"]' | grep -q "no credential" || fail "401 message"
grep -qi '^WWW-Authenticate: Bearer' "$dir/headers" || fail "no WWW-Authenticate header"
expect 401 "cnd_0000000000000000000000000000000000000000000000000000000000000000" "/v1/jobs/$a_job"
expect 401 "" "/v1/queue"

# --- alice lists her job only, with the proto's field names
expect 200 "$alice" /v1/jobs
test "$(json '[x["id"] for x in j["jobs"]]')" = "['$a_job']" || fail "alice's list: $(cat "$dir/body")"
test "$(json 'j["jobs"][0]["owner"], j["jobs"][0]["state"], j["jobs"][0]["queue_position"]')" = \
  "('alice', 'JOB_STATE_SUCCEEDED', -1)" || fail "alice's job fields: $(cat "$dir/body")"
json 'j["jobs"][0]["spec"]["mod1_dataset"]' | grep -qx "$a_rna" || fail "spec.mod1_dataset"
expect 200 "$alice" "/v1/jobs?state=SUCCEEDED&page_size=1"
test "$(json 'len(j["jobs"])')" = 1 || fail "state filter"
expect 200 "$alice" "/v1/jobs?state=JOB_STATE_RUNNING"
test "$(json 'len(j["jobs"])')" = 0 || fail "state filter RUNNING"
expect 200 "$alice" "/v1/jobs/$a_job"
test "$(json 'j["id"], j["attempt"]')" = "('$a_job', 1)" || fail "GET job"
# The job's metric is the mean of its mod1 values, computed here independently.
expect 200 "$alice" "/v1/jobs/$a_job/metrics"
"$py" - "$dir/body" "$(cat "$dir/inputs/rna.mean")" "$a_job" <<'PY' || fail "metrics: $(cat "$dir/body")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["job_id"] == sys.argv[3] and j["n_obs"] == "1", j
assert abs(j["metrics"]["mean_x"] - float(sys.argv[2])) < 1e-6 * float(sys.argv[2]), j
assert set(j["stage_seconds"]) == {"mean", "total"} and j["low_quality"] == "mod2", j
PY
expect 200 "$alice" "/v1/jobs/$a_job/report"
grep -qi '^Content-Type: text/html' "$dir/headers" || fail "report content type"
grep -q "<h1>candies job $a_job</h1>" "$dir/body" || fail "report body"
expect 200 "$alice" /v1/queue
test "$(json 'j["queued"], j["running"], j["workers"], j["max_queue"], j["jobs"]')" = "(0, 0, 1, 1000, [])" ||
  fail "queue: $(cat "$dir/body")"
expect 200 "$alice" /v1/models
test "$(json 'j["models"], j["budget_bytes"]')" = "([], '4294967296')" || fail "models: $(cat "$dir/body")"
expect 404 "$alice" /v1/models/model-0123456789abcdef
json 'j["error"]["message"]' | grep -q "model model-0123456789abcdef not found" || fail "model 404"

# --- bob: alice's job is NOT_FOUND, in the very words of a missing one (and of gRPC)
for path in "/v1/jobs/$a_job" "/v1/jobs/$a_job/metrics" "/v1/jobs/$a_job/report"; do
  expect 404 "$bob" "$path"
  test "$(json 'j["error"]["status"], j["error"]["message"]')" = "('NOT_FOUND', 'job $a_job not found')" ||
    fail "bob's 404 on $path: $(cat "$dir/body")"
done
expect 404 "$bob" /v1/jobs/job-0123456789abcdef
test "$(json 'j["error"]["message"]')" = "job job-0123456789abcdef not found" || fail "missing job message"
if as "$bob" status "$a_job" 2>"$dir/grpc.err"; then fail "gRPC showed bob alice's job"; fi
grep -q "job $a_job not found" "$dir/grpc.err" || fail "gRPC message differs: $(cat "$dir/grpc.err")"
expect 200 "$bob" /v1/jobs
test "$(json '[x["id"] for x in j["jobs"]]')" = "['$b_job']" || fail "bob's list"

# --- root (admin) sees both
expect 200 "$root" /v1/jobs
test "$(json 'sorted(x["owner"] for x in j["jobs"])')" = "['alice', 'bob']" || fail "admin list"
expect 200 "$root" "/v1/jobs/$a_job/report"

# --- bad requests name the parameter
expect 400 "$alice" "/v1/jobs?state=DONE"
json 'j["error"]["message"]' | grep -q "^state: 'DONE' is not" || fail "state message"
expect 400 "$alice" "/v1/jobs?page_size=many"
json 'j["error"]["message"]' | grep -q "^page_size: " || fail "page_size message"
expect 400 "$alice" "/v1/jobs?page_size=5000"
json 'j["error"]["message"]' | grep -q "max-page-size" || fail "page_size limit message"
expect 400 "$alice" "/v1/queue?owner=bob"
json 'j["error"]["message"]' | grep -q "^owner: is not a query parameter" || fail "unknown parameter"
expect 404 "$alice" /v2/jobs
test "$(json 'j["error"]["status"]')" = NOT_FOUND || fail "unknown path body"
code=$(curl -sS -o "$dir/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $alice" "$http/v1/jobs")
[ "$code" = 405 ] && json 'j["error"]["message"]' | grep -q "read-only" || fail "POST: $code"

# --- open: /healthz, /openapi.json, /metrics (default)
expect 200 "" /healthz
test "$(json 'j["status"]')" = SERVING || fail "healthz"
expect 200 "" /metrics
grep -q 'candies_rpcs_total{code="NOT_FOUND",method="GET /v1/jobs/{id}"}' "$dir/body" || fail "HTTP requests in /metrics"
expect 200 "" /openapi.json
# Every documented path answers (ids filled in; not 404 for the admin), and
# every path this test used is documented.
"$py" - "$dir/body" "$a_job" <<'PY' >"$dir/paths" || fail "openapi.json"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["openapi"].startswith("3."), doc["openapi"]
for p, item in doc["paths"].items():
    assert list(item) == ["get"], (p, list(item))
    print(p, p.replace("{id}", sys.argv[2]))
PY
used="/healthz /metrics /openapi.json /v1/jobs /v1/jobs/{id} /v1/jobs/{id}/metrics /v1/jobs/{id}/report /v1/models /v1/models/{id} /v1/queue"
test "$(cut -d' ' -f1 "$dir/paths" | sort | tr '\n' ' ')" = "$used " || fail "documented paths: $(cut -d' ' -f1 "$dir/paths" | tr '\n' ' ')"
while read -r template path; do
  [ "$template" = "/v1/models/{id}" ] && continue  # no model exists here (404 above)
  expect 200 "$root" "$path"
done <"$dir/paths"
grep -q "msg=\"audit\" rpc=\"GET /v1/jobs\" identity=- .* code=UNAUTHENTICATED" "$dir/err.log" ||
  fail "no audit line for a refused HTTP request"
stop_daemon

# --- /metrics behind a token, JSON API off
start --metrics-require-token true --http-api false
expect 401 "" /metrics
expect 200 "$bob" /metrics
grep -q '^candies_queue_depth' "$dir/body" || fail "/metrics with a token"
expect 404 "$alice" /v1/jobs
expect 404 "" /healthz
stop_daemon
echo "http api ok"
