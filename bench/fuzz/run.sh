#!/usr/bin/env bash
# Usage: bench/fuzz/run.sh [SECONDS] [TARGET...]
# CANDIES_FUZZ_RUNS=N also stops each target after N executions (whichever
# comes first: SECONDS or N).
# Builds the libFuzzer targets in build-fuzz/ (clang, -DCANDIES_FUZZ=ON, ASan)
# and runs each for SECONDS (default 60) on a seed corpus made by the tests'
# writers (tests/io/make_fixtures.py, make_hostile.py, fuzz_seeds). Prints per
# target: executions, exec/s, crashes, and for each crash whether its stack is
# inside libhdf5 only (contained in production by the validation sandbox,
# docs/SECURITY.md) or reaches our code. Exit 1 when a crash reaches our code
# (or any crash in fuzz_upload / fuzz_config); crash inputs stay in
# build-fuzz/artifacts/TARGET/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(fuzz_h5ad fuzz_upload fuzz_config)
build=${CANDIES_FUZZ_BUILD:-$root/build-fuzz}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$root")}
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCANDIES_FUZZ=ON -DCANDIES_BUILD_TESTS=OFF -DCANDIES_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target "${targets[@]}" fuzz_seeds -j "${CANDIES_JOBS:-$(nproc)}" >/dev/null

seeds=$build/seeds
rm -rf "$seeds"
mkdir -p "$seeds/fuzz_h5ad" "$seeds/fuzz_upload" "$seeds/fuzz_config" "$seeds/gen"
python=${CANDIES_PYTHON:-/usr/bin/python3}
"$python" "$root/tests/io/make_fixtures.py" "$seeds/gen" >/dev/null 2>&1
"$python" "$root/tests/io/make_hostile.py" "$seeds/gen/hostile" >/dev/null 2>&1
find "$seeds/gen" -maxdepth 2 -type f \( -name '*.h5ad' -o -name '*.h5' -o -name '*.h5mu' \) \
  -size -256k -exec cp {} "$seeds/fuzz_h5ad/" \;
"$build/bin/fuzz_seeds" "$seeds/fuzz_upload" "$seeds/fuzz_config"
cp "$root/deploy/candiesd.conf" "$seeds/fuzz_config/"

fail=0
: >"$build/crashes.txt"
printf '%-12s %12s %9s %8s %12s %s\n' target executions exec/s crashes oom/timeout "crash stacks"
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t
  art=$build/artifacts/$t
  mkdir -p "$corpus" "$art"
  log=$build/$t.log
  # -fork=1: a crash ends one child, the run goes on and counts it. -timeout=5:
  # an input takes milliseconds; the timeouts found are libhdf5 loops, and each
  # one costs the run its full timeout.
  (cd "$build" && ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \
    "$build/bin/$t" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
    -timeout=5 -rss_limit_mb=2048 -max_len=65536 -max_total_time="$secs" \
    ${CANDIES_FUZZ_RUNS:+-runs="$CANDIES_FUZZ_RUNS"} \
    -artifact_prefix="$art/" "$corpus" "$seeds/$t" >"$log" 2>&1) || true
  # Fork mode's status lines: "#EXECS: ... exec/s N (the last job's rate) ... time: Ts";
  # the rate printed is the whole run's, executions / seconds.
  last=$(grep -E '^#[0-9]+: ' "$log" | tail -1 || true)
  execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
  took=$(sed -nE 's/.* time: ([0-9]+)s.*/\1/p' <<<"$last")
  rate=$(( ${took:-0} > 0 ? ${execs:-0} / took : 0 ))
  crashes=$(find "$art" -name 'crash-*' | wc -l)
  # Out-of-memory and timeout inputs (libFuzzer's own counts; kept in $art too).
  slow=$(sed -nE 's/.*oom\/timeout\/crash: ([0-9]+)\/([0-9]+)\/.*/\1\/\2/p' <<<"$last")
  # Where each crash happened: rerun it and take the first stack frame in
  # libhdf5 or in our code (namespace candies, or the harness itself). Frames
  # above it are libc, ASan's interceptors (strdup, strcmp, malloc, ... inside
  # the fuzz binary) and libFuzzer; an out-of-memory report names the
  # allocating caller.
  hdf5=0
  ours=0
  other=0
  for c in $(find "$art" -name 'crash-*'); do
    frame=$(ASAN_OPTIONS=detect_leaks=0 timeout 60 "$build/bin/$t" "$c" 2>&1 |
      grep -E '^ +#[0-9]+ ' | grep -E 'libhdf5|candies::|LLVMFuzzerTestOneInput' | head -1 || true)
    if [[ $frame == *libhdf5* ]]; then
      hdf5=$((hdf5 + 1))
    elif [[ -n $frame ]]; then
      ours=$((ours + 1))
    else
      other=$((other + 1))  # did not crash again alone (flaky, or a timeout): listed, not failed
    fi
    echo "  $t $(basename "$c"): ${frame:-no stack (timeout or OOM)}" | cut -c1-160 >>"$build/crashes.txt"
  done
  printf '%-12s %12s %9s %8s %12s %s\n' "$t" "${execs:-0}" "${rate:-0}" "$crashes" "${slow:-0/0}" \
    "libhdf5-only: $hdf5, reaching our code: $ours, not reproduced alone: $other"
  if ((ours > 0)) || { [[ $t != fuzz_h5ad ]] && ((crashes > 0)); }; then fail=1; fi
done
if [[ -s $build/crashes.txt ]]; then
  echo "crashes (first frame outside libc / ASan):"
  cat "$build/crashes.txt"
fi
exit $fail
