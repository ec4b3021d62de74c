#!/usr/bin/env bash
# The CUDA build on a machine without a GPU (CI; scripts/test.sh runs it when
# CANDIES_CUDA_CI=1): fetches LibTorch 2.11 + CUDA 13 (scripts/setup.sh --cuda,
# cached across clones), builds only what the checks below need in build-cuda/,
# runs the core and pipeline suites with it on the CPU, makes the GPU check's
# bundle (printing its size) and runs the check's CPU smoke.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-cuda
# The wheel's own libgomp spin-waits for work (OMP_WAIT_POLICY active): on this
# shared 2-core machine that tripled the suites' CPU time (one pipeline test: 71 s
# active, 12 s passive; Debian's 1.13 build: 14-18 s either way), and pipeline_tests
# ran past its 900 s timeout. Passive threads sleep instead.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
t0=$(date +%s)
suites=(runtime_tests cluster_tests models_tests diffusion_tests pipeline_tests preprocess_tests
        sim_tests metrics_tests)
"$root/scripts/setup.sh" --cuda
t1=$(date +%s)
CANDIES_TARGETS="${suites[*]} candies candiesd candies-validate candies-worker bench_speed bench_quality" \
  "$root/scripts/build.sh" --cuda "$build"
t2=$(date +%s)
# One process per suite, not ctest's one per test: each start loads LibTorch's
# 1 GB of CUDA libraries (seconds apiece on this machine).
for s in "${suites[@]}"; do
  area=${s%_tests}
  echo "test_cuda: $s"
  (cd "$build/tests/$area" && timeout "${CANDIES_TEST_TIMEOUT:-900}" "$build/bin/$s" --gtest_brief=1)
done
t3=$(date +%s)
"$root/scripts/gpu-bundle.sh" "$build"
OUT=$build/gpu-report-smoke "$root/scripts/gpu-check.sh" --cpu-smoke --bin "$build/bin"
cat "$build/gpu-report-smoke/gpu-report.md"
t4=$(date +%s)
echo "test_cuda: setup $((t1 - t0)) s, build $((t2 - t1)) s, tests $((t3 - t2)) s, bundle + smoke $((t4 - t3)) s, total $((t4 - t0)) s"
