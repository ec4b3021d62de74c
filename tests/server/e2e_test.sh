#!/usr/bin/env bash
# candiesd end to end over loopback: `candies run --server` gives the same
# result as local `candies run`; the trained model it keeps is listed, pinned
# and applied to a second section without retraining; the metrics endpoint
# answers; upload/submit/watch/fetch; then kill -9, restart, and check the
# finished jobs, the datasets and the pinned model are back. Every wait is bounded.
set -euo pipefail
daemon=$1
cli=$2
py=$3
# shellcheck source-path=SCRIPTDIR source=lib/daemon.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/daemon.sh"
make_test_dir

# One admin token for every call (pinning models is for admins).
CANDIES_TOKEN=$("$cli" token add e2e --role admin --file "$dir/tokens")
export CANDIES_TOKEN

start() { start_daemon --token-file "$dir/tokens" --metrics-listen 127.0.0.1:0; }

start
grep -q "candiesd listening on $addr" "$dir/out.log"
"$cli" simulate --out "$dir/sim" --grid 20 --seed 3 >/dev/null
"$cli" simulate --out "$dir/sim2" --grid 20 --seed 4 >/dev/null

# The same job remotely and locally: same clusters, same embedding.
common=(--mod1 "$dir/sim/rna.h5ad" --mod1-kind rna --mod2 "$dir/sim/protein.h5ad"
  --mod2-kind protein --n-clusters 5 --seed 1 --labels-key domain)
timeout 300 "$cli" run "${common[@]}" --server "$addr" --save-model keep \
  --out "$dir/remote.h5ad" --out-denoised "$dir/remote_denoised.h5ad" >"$dir/remote.txt"
timeout 300 "$cli" run "${common[@]}" --out "$dir/local.h5ad" >"$dir/local.txt" 2>/dev/null
model=$(awk '$1 == "saved" && $2 == "model" {print $3}' "$dir/remote.txt")
case "$model" in model-*) ;; *) echo "no model id in:"; cat "$dir/remote.txt"; exit 1;; esac
grep -q "^ARI" "$dir/remote.txt"
test "$(grep "^ARI" "$dir/remote.txt")" = "$(grep "^ARI" "$dir/local.txt")"
"$py" - "$dir/remote.h5ad" "$dir/local.h5ad" "$dir/remote_denoised.h5ad" "$dir/sim/rna.h5ad" <<'PY'
import sys, anndata, numpy as np
remote, local, den, rna = (anndata.read_h5ad(p) for p in sys.argv[1:5])
assert list(remote.obs_names) == list(local.obs_names) == list(rna.obs_names)
assert (remote.obs["candies_cluster"].astype(str).values == local.obs["candies_cluster"].astype(str).values).all()
np.testing.assert_allclose(remote.obsm["X_candies"], local.obsm["X_candies"], atol=1e-5)
assert remote.uns["candies"]["low_quality"] == local.uns["candies"]["low_quality"]
# No --cluster-method: the daemon resolves the fast preset's choices as a local run does.
for a in (remote, local):
    p = a.uns["candies"]["params"]
    assert p["cluster_method"] == "kmeans" and int(p["integration_ensemble"]) == 3, dict(p)
# The denoised matrix of the low-quality modality, original values in layers["raw"].
assert den.shape[0] == 400 and "raw" in den.layers, den
PY
timeout 30 "$cli" models --server "$addr" >"$dir/models"
grep -q "^$model resident - " "$dir/models"
timeout 60 "$cli" models pin "$model" --server "$addr" | grep -q "^$model resident pinned"

# Apply the kept model to a second section: no denoiser training.
rna2=$(timeout 60 "$cli" upload "$dir/sim2/rna.h5ad" --kind rna --server "$addr")
prot2=$(timeout 60 "$cli" upload "$dir/sim2/protein.h5ad" --kind protein --server "$addr")
job2=$(timeout 60 "$cli" submit --mod1 "$rna2" --mod2 "$prot2" --n-clusters 5 --seed 1 \
  --labels-key domain --model "$model" --server "$addr")
test "$(timeout 280 "$cli" watch "$job2" --server "$addr" --timeout 270)" = SUCCEEDED
timeout 60 "$cli" fetch "$job2" --out "$dir/applied.h5ad" --server "$addr"
"$py" - "$dir/applied.h5ad" <<'PY'
import sys, anndata
a = anndata.read_h5ad(sys.argv[1])
d = a.uns["candies"]["denoise"]
assert bool(d["pretrained"]), d
assert "X_candies_denoised" in a.obsm and a.obsm["X_candies_denoised"].shape[0] == 400
assert 0.0 <= float(a.uns["candies"]["metrics"]["ARI"]) <= 1.0
PY

# Metrics: jobs, stage histograms and the resident model are exported.
curl -sf "http://$metrics_addr/metrics" >"$dir/metrics.txt"
grep -q 'candies_jobs_total{kind="full",state="SUCCEEDED"} 2' "$dir/metrics.txt"
grep -q 'candies_stage_duration_seconds_count{stage=' "$dir/metrics.txt"
grep -q 'candies_rpc_duration_seconds_count{method="SubmitJob"}' "$dir/metrics.txt"
grep -q '^candies_models_resident 1' "$dir/metrics.txt"

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
kill_daemon
start
timeout 30 "$cli" list --server "$addr" >"$dir/jobs"
grep -q "^$job SUCCEEDED full " "$dir/jobs"
grep -q "^$job2 SUCCEEDED full " "$dir/jobs"
# The pinned model is resident again after the restart.
timeout 30 "$cli" models --server "$addr" | grep -q "^$model resident pinned"
timeout 30 "$cli" list --datasets --server "$addr" >"$dir/datasets"
grep -q "^$rna " "$dir/datasets"
grep -q "^$prot " "$dir/datasets"
timeout 60 "$cli" fetch "$job" --out "$dir/again.h5ad" --server "$addr"
cmp "$dir/result.h5ad" "$dir/again.h5ad"
stop_daemon
echo "service e2e ok"
