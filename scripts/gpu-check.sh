#!/usr/bin/env bash
# The GPU check: one call on a GPU machine, one report. Runs from an unpacked
# scripts/gpu-bundle.sh tarball (candies-gpu/scripts/gpu-check.sh) against the
# machine's torch 2.11.0+cu130 (found with python3's `import torch`), within
# CANDIES_GPU_CHECK_BUDGET_S (450 s; the machine allows 8 minutes). Every step
# has its own timeout, cut to what is left of the budget, so the report is always
# written, with the steps that did not fit marked as skipped.
#
# Steps: build facts and GPU; the test suites with CANDIES_TEST_DEVICE=cuda;
# bench_speed for the fast and the paper preset on 1,296 spots, fp32 and bf16;
# bench_quality with 3 seeds, fp32 and bf16 (seconds and ARI); the paper preset's
# whole method with its ARI; the whole method (fast preset) on 10k, 20k, 50k and
# 100k spots (seconds, peak GPU memory).
#
# usage: scripts/gpu-check.sh [--cpu-smoke] [--bin DIR]
#   --cpu-smoke  the same steps on the CPU with tiny sizes (CI runs it on the
#                CUDA build; it checks the script and the binaries, not speed)
#   --bin DIR    the binaries (default: the bundle's bin/, else build-cuda/bin)
# The report goes to $OUT/gpu-report.md when OUT is set, else ./gpu-report/.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
smoke=0
bin=""
while (($#)); do
  case $1 in
    --cpu-smoke) smoke=1 ;;
    --bin) bin=$2; shift ;;
    *) echo "usage: gpu-check.sh [--cpu-smoke] [--bin DIR]" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z $bin ]]; then
  if [[ -x $here/../bin/candies ]]; then bin=$here/../bin; else bin=$here/../build-cuda/bin; fi
fi
bin=$(cd "$bin" && pwd)
data=$(cd "$bin/.." && pwd)  # bundle root (tests/metrics/reference.txt) or the build folder
outdir=${OUT:-$PWD/gpu-report}
mkdir -p "$outdir"
report=$outdir/gpu-report.md
log=$outdir/gpu-check.log
: >"$log"
budget=${CANDIES_GPU_CHECK_BUDGET_S:-450}
start=$(date +%s)

# LibTorch: the GPU machine's Python torch; on the build machine the binaries'
# RPATH already names the set-up's copy. The bundle's lib/ comes first (its
# libraries load each other through the search path, not an RPATH).
if [[ -z ${CANDIES_TORCH_LIB:-} ]]; then
  CANDIES_TORCH_LIB=$(python3 -c 'import torch,os;print(os.path.join(os.path.dirname(torch.__file__),"lib"))' 2>/dev/null || true)
fi
export LD_LIBRARY_PATH=$data/lib${CANDIES_TORCH_LIB:+:$CANDIES_TORCH_LIB}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export CANDIES_METRICS_REFERENCE=$data/tests/metrics/reference.txt
[[ -f $CANDIES_METRICS_REFERENCE ]] || unset CANDIES_METRICS_REFERENCE

if ((smoke)); then
  device=cpu
  # The wheel's libgomp spins for work; on a shared CPU that costs 3-6x (test_cuda.sh).
  export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
  speed_n=96 quality_seeds=1 scale_sizes=(300)
  quality_flags=(--grid 12 --diffusion-epochs 2 --sample-steps 2 --gae-epochs 5 --integration-epochs 5
                 --integration-ensemble 1)
  speed_flags=(--epochs=2 --steps=2 --fast_only --no_pipeline)
  tests=(runtime_tests)
else
  device=cuda
  speed_n=1296 quality_seeds=3 scale_sizes=(10000 20000 50000 100000)
  quality_flags=()
  speed_flags=()
  tests=(runtime_tests cluster_tests models_tests diffusion_tests pipeline_tests preprocess_tests
         sim_tests metrics_tests)
fi

{
  echo "# candies GPU check ($( ((smoke)) && echo "CPU smoke" || echo "GPU"))"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), host $(hostname), budget ${budget} s"
  echo
} >"$report"

# step <title> <timeout_s> <command...>: runs the command with at most
# min(timeout, what is left of the budget), keeps its output in the log and the
# lines that matter (grep -E "$keep") in the report.
keep='.'
step() {
  local title=$1 limit=$2
  shift 2
  local left=$((budget - ($(date +%s) - start)))
  ((limit > left)) && limit=$left
  {
    echo "## $title"
    echo
  } >>"$report"
  if ((limit < 5)); then
    printf 'skipped: the budget is spent\n\n' >>"$report"
    return
  fi
  local t0 rc out
  t0=$(date +%s)
  out=$(timeout -k 5 "$limit" "$@" 2>&1)
  rc=$?
  printf '### %s\n$ %s\n%s\n\n' "$title" "$*" "$out" >>"$log"
  {
    echo '```'
    echo "\$ $*"
    grep -E "$keep" <<<"$out" | tail -n 40
    echo '```'
    if ((rc == 124 || rc == 137)); then
      echo "timed out after ${limit} s"
    else
      echo "exit $rc, $(($(date +%s) - t0)) s"
    fi
    echo
  } >>"$report"
}

keep='.'
step "build and device" 30 bash -c "'$bin/candies' --version; nvidia-smi -L 2>/dev/null || echo 'no nvidia-smi'; echo \"torch lib: ${CANDIES_TORCH_LIB:-the build RPATH}\""

keep='PASSED|FAILED|tests? ran|Failure|error'
for t in "${tests[@]}"; do
  step "test suite $t (CANDIES_TEST_DEVICE=$device)" 120 \
    env CANDIES_TEST_DEVICE=$device "$bin/$t" --gtest_brief=1
done

keep='preset|^fast|^paper|whole method|ARI|ours|total|peak|error|Error'
step "bench_speed, fp32, fast and paper presets, $speed_n spots" 120 \
  "$bin/bench_speed" --device=$device --n=$speed_n "${speed_flags[@]}"
step "bench_speed, bf16 autocast, fast and paper presets, $speed_n spots" 90 \
  "$bin/bench_speed" --device=$device --n=$speed_n --bf16 --no_pipeline "${speed_flags[@]}"

keep='device|seed|mean|^ +[0-9]|total|peak|error|Error'
step "bench_quality, $quality_seeds seeds, fp32" 120 \
  "$bin/bench_quality" --seeds $quality_seeds --denoise --device $device "${quality_flags[@]}"
step "bench_quality, $quality_seeds seeds, bf16 autocast" 120 \
  "$bin/bench_quality" --seeds $quality_seeds --denoise --device $device --bf16 "${quality_flags[@]}"

if ((!smoke)); then  # the paper preset's 800 DDPM steps do not fit a CPU smoke run
  step "bench_quality, paper preset, whole method, 1 seed" 150 \
    "$bin/bench_quality" --seeds 1 --denoise --preset paper --device $device
fi

keep='scaled|ARI|total|peak|error|Error'
for n in "${scale_sizes[@]}"; do
  step "whole method (fast preset, denoise + integrate), $n spots" 150 \
    "$bin/bench_quality" --n-spots "$n" --denoise --device $device "${quality_flags[@]}"
done

echo "total $(($(date +%s) - start)) s; full output: $log" >>"$report"
echo "gpu-check: report $report ($(($(date +%s) - start)) s)"
