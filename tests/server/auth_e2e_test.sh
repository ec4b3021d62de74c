#!/usr/bin/env bash
# Issue 14 end to end: a TLS daemon (certificates made here with the openssl
# CLI; the mean backend of mean_daemon_main.cc) shared by three identities:
# alice and bob (users) and root (admin) with bearer tokens, plus carol with a
# client certificate (mTLS). Each user sees only their own objects, the admin
# sees all, nobody can act as another, a wrong or revoked token is refused,
# plain text and foreign certificates are refused, health checks and the
# HTTPS /metrics stay open; the JSON API on the same HTTPS server takes the
# same tokens and certificates.
set -euo pipefail
daemon=$(realpath "$1")
cli=$(realpath "$2")
py=$3
stubs=${4:-}   # optional: generated Python stubs and client/python, for the Python client check
pyclient=${5:-}
# shellcheck source-path=SCRIPTDIR source=lib/daemon.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/daemon.sh"
make_test_dir

# --- certificates: a CA, the server (127.0.0.1), carol's client certificate,
# and a client certificate from a CA the daemon does not trust.
cd "$dir"
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=candies test CA" -keyout ca.key -out ca.crt
ossl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
ossl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.crt
ossl req -newkey rsa:2048 -nodes -subj "/CN=carol" -keyout carol.key -out carol.csr
ossl x509 -req -in carol.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out carol.crt
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=rogue CA" -keyout rogue-ca.key -out rogue-ca.crt
ossl req -newkey rsa:2048 -nodes -subj "/CN=root" -keyout mallory.key -out mallory.csr
ossl x509 -req -in mallory.csr -CA rogue-ca.crt -CAkey rogue-ca.key -CAcreateserial -days 2 -out mallory.crt
test -s server.crt && test -s carol.crt && test -s mallory.crt || fail "openssl did not make the certificates"

# --- tokens (only salted hashes are stored; the file is 0600)
make_tokens
test "$(stat -c %a "$dir/tokens")" = 600 || fail "token file is not 0600"
if grep -q "${alice#cnd_}" "$dir/tokens"; then fail "a token is stored in clear"; fi
"$cli" token list --file "$dir/tokens" >"$dir/token-list"
grep -q "^alice user " "$dir/token-list" && grep -q "^root admin " "$dir/token-list" || fail "token list"

write_inputs 30 0

start_daemon --metrics-listen 127.0.0.1:0 --token-file "$dir/tokens" \
  --tls-cert server.crt --tls-key server.key --tls-client-ca ca.crt --admin-identity ops
tls=(--server "$addr" --tls-ca ca.crt)
as() { local t=$1; shift; CANDIES_TOKEN=$t timeout 30 "$cli" "$@" "${tls[@]}"; }
refused() {  # refused CODE CMD...: the command fails with gRPC code CODE
  local code=$1 pattern; shift
  pattern="(code $code)"
  # watch/fetch print the server's message alone: NOT_FOUND reads "... not found".
  if [ "$code" = 5 ]; then pattern="not found"; fi
  if "$@" >"$dir/refused.out" 2>"$dir/refused.err"; then fail "not refused: $*"; fi
  grep -qF "$pattern" "$dir/refused.err" || { cat "$dir/refused.err"; fail "wrong code for: $*"; }
}

# --- alice works as usual
a_rna=$(as "$alice" upload inputs/rna.h5ad --kind rna)
a_prot=$(as "$alice" upload inputs/prot.h5ad --kind protein)
a_job=$(as "$alice" submit --mod1 "$a_rna" --mod2 "$a_prot" --n-clusters 2)
test "$(as "$alice" watch "$a_job" --timeout 25)" = SUCCEEDED || fail "alice's job"
as "$alice" status "$a_job" | grep -q "^owner: alice$" || fail "owner is not alice"
as "$alice" fetch "$a_job" --out "$dir/a.h5ad" >/dev/null
# --- bob has his own, and sees nothing of alice's; every action on hers is NOT_FOUND (5)
b_rna=$(as "$bob" upload inputs/rna.h5ad --kind rna)
b_job=$(as "$bob" submit --mod1 "$b_rna" --mod2 "$b_rna" --n-clusters 2)
test "$(as "$bob" watch "$b_job" --timeout 25)" = SUCCEEDED || fail "bob's job"
as "$bob" list >"$dir/bob-jobs"
grep -q "^$b_job " "$dir/bob-jobs" || fail "bob does not see his job"
if grep -q "$a_job" "$dir/bob-jobs"; then fail "bob sees alice's job"; fi
as "$bob" list --datasets >"$dir/bob-ds"
if grep -q "$a_rna" "$dir/bob-ds"; then fail "bob sees alice's dataset"; fi
refused 5 as "$bob" status "$a_job"
grep -q "job $a_job not found" "$dir/refused.err" || fail "hidden job message"
if as "$bob" fetch "$a_job" --out "$dir/stolen.h5ad" 2>"$dir/refused.err"; then fail "bob fetched alice's result"; fi
grep -q "job $a_job not found" "$dir/refused.err" || fail "fetch: hidden job message"
test ! -e "$dir/stolen.h5ad" || fail "a result file was written for bob"
refused 5 as "$bob" cancel "$a_job"
refused 5 as "$bob" watch "$a_job"
refused 5 as "$bob" submit --mod1 "$a_rna" --mod2 "$a_prot" --n-clusters 2
# --owner cannot make bob into alice: the identity comes from the token.
as "$bob" list --owner alice >"$dir/bob-as-alice"
if grep -q "$a_job" "$dir/bob-as-alice"; then fail "--owner changed the identity"; fi
# --- root (admin) sees both
as "$root" list >"$dir/root-jobs"
grep -q "^$a_job .* alice " "$dir/root-jobs" && grep -q "^$b_job .* bob " "$dir/root-jobs" || fail "admin list"
as "$root" status "$a_job" | grep -q "^owner: alice$" || fail "admin status"

# --- refused credentials: none (16), wrong (16), plain text (14), revoked (16)
refused 16 env -u CANDIES_TOKEN timeout 30 "$cli" list "${tls[@]}"
refused 16 as "cnd_0000000000000000000000000000000000000000000000000000000000000000" list
refused 14 env CANDIES_TOKEN="$alice" timeout 10 "$cli" list --server "$addr" --timeout 5
"$cli" token revoke bob --file "$dir/tokens" 2>/dev/null
refused 16 as "$bob" list
as "$alice" list >/dev/null || fail "alice refused after bob's revocation"

# --- mTLS: carol's certificate is her identity; a foreign CA's is refused
carol=(--tls-cert carol.crt --tls-key carol.key)
c_rna=$(env -u CANDIES_TOKEN timeout 30 "$cli" upload inputs/rna.h5ad --kind rna "${tls[@]}" "${carol[@]}")
env -u CANDIES_TOKEN timeout 30 "$cli" list --datasets "${tls[@]}" "${carol[@]}" >"$dir/carol-ds"
grep -q "^$c_rna .* carol " "$dir/carol-ds" || fail "carol's dataset"
if grep -q "$a_rna" "$dir/carol-ds"; then fail "carol sees alice's dataset"; fi
refused 14 env -u CANDIES_TOKEN timeout 10 "$cli" list "${tls[@]}" --tls-cert mallory.crt --tls-key mallory.key --timeout 5

# --- open: the health check needs no credential; /metrics over HTTPS
"$py" - "$addr" "$dir/ca.crt" <<'PY'
import sys, grpc
creds = grpc.ssl_channel_credentials(open(sys.argv[2], "rb").read())
ch = grpc.secure_channel(sys.argv[1], creds)
check = ch.unary_unary("/grpc.health.v1.Health/Check",
                       request_serializer=lambda x: x, response_deserializer=lambda x: x)
assert check(b"", timeout=10) == b"\x08\x01", "health: not SERVING"  # status = SERVING
PY
if [ -n "$stubs" ]; then
  # The Python client with a token over TLS: alice's job only, as alice.
  "$py" - "$addr" "$dir/ca.crt" "$alice" "$a_job" "$b_job" "$stubs" "$pyclient" <<'PY'
import sys
sys.path[:0] = [sys.argv[6], sys.argv[7]]
import grpc
from candies_client import Client
addr, ca, token, a_job, b_job = sys.argv[1:6]
ids = [j.id for j in Client(addr, token=token, tls_ca=ca, timeout=20).list_jobs()]
assert a_job in ids and b_job not in ids, ids
try:
    list(Client(addr, token="cnd_wrong", tls_ca=ca, timeout=20).list_jobs())
    raise SystemExit("a wrong token was accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
PY
fi
curl -sf --cacert ca.crt "https://$metrics_addr/metrics" >"$dir/metrics.txt" || fail "/metrics over HTTPS"
grep -q 'candies_rpc_duration_seconds_count{method="SubmitJob"}' "$dir/metrics.txt" || fail "/metrics content"
# The JSON API on the same HTTPS server (tests/server/http_api_test.sh has the
# rest): a token, carol's certificate as her identity, a foreign CA's refused.
curl -sf --cacert ca.crt -H "Authorization: Bearer $alice" "https://$metrics_addr/v1/jobs" >"$dir/api.json" ||
  fail "JSON API over HTTPS"
grep -q "\"$a_job\"" "$dir/api.json" && ! grep -q "$b_job" "$dir/api.json" || fail "alice's JSON job list"
c_job=$(env -u CANDIES_TOKEN timeout 30 "$cli" submit --mod1 "$c_rna" --mod2 "$c_rna" --n-clusters 2 "${tls[@]}" "${carol[@]}")
curl -sf --cacert ca.crt --cert carol.crt --key carol.key "https://$metrics_addr/v1/jobs" >"$dir/api.json" ||
  fail "JSON API with carol's certificate"
grep -q "\"id\":\"$c_job\",.*\"owner\":\"carol\"" "$dir/api.json" && ! grep -q "$a_job" "$dir/api.json" ||
  fail "carol's JSON job list: $(cat "$dir/api.json")"
test "$(curl -s -o /dev/null -w '%{http_code}' --cacert ca.crt "https://$metrics_addr/v1/jobs")" = 401 ||
  fail "JSON API without a credential"
if curl -s --cacert ca.crt --cert mallory.crt --key mallory.key "https://$metrics_addr/v1/jobs" >/dev/null; then
  fail "a certificate from a foreign CA was accepted by the HTTP server"
fi

# --- audit lines and modes
grep -q "msg=\"audit\" rpc=SubmitJob identity=alice role=user peer=ipv4:127.0.0.1:[0-9]* object=$a_job code=OK" "$dir/err.log" ||
  fail "no audit line for alice's SubmitJob"
grep -q "msg=\"audit\" rpc=CancelJob identity=bob role=user .* object=$a_job code=NOT_FOUND" "$dir/err.log" ||
  fail "no audit line for bob's refused CancelJob"
test "$(stat -c %a "$dir/data")" = 700 && test "$(stat -c %a "$dir/data/candies.db")" = 600 || fail "modes"

stop_daemon
echo "auth e2e ok"
