#!/usr/bin/env bash
# Scaling of the whole method (fast preset, kind full) with the number of spots:
# runs bench_quality --n-spots N (the paper's simulator tiled scale x scale, one
# process per size) and prints seconds, peak RSS and the integrated ARI per size,
# then the fitted exponent b of seconds ~ N^b (least squares on log-log) and the
# exponent between consecutive sizes. Also prints the load average before each
# size: on a shared machine the seconds are only comparable under similar load.
#
# Usage: bench/scale/run.sh [--build DIR] [--large] [--sizes "1296 5184"] [--threads N] [--integrate]
#   kind full (denoiser + integration, as `candies run --preset fast`) unless --integrate.
#   cpu_s is user + system CPU time of the process: on a loaded machine it moves
#   far less than the wall-clock seconds.
#   default sizes 1296 5184 20736; --large adds 51840 and 104976 (the simulator
#   grows in whole tiles of 36 x 36 spots, so sizes are rounded up to k^2 * 1296).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build
sizes="1296 5184 20736"
threads=0
kind=(--denoise)
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --large) sizes="$sizes 51840 104976"; shift ;;
    --sizes) sizes=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --integrate) kind=(); shift ;;
    *) echo "usage: $0 [--build DIR] [--large] [--sizes \"N ...\"] [--threads N]" >&2; exit 2 ;;
  esac
done
bin=$build/bin/bench_quality
[[ -x $bin ]] || { echo "bench/scale: no $bin (build the bench_quality target)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-8s %10s %10s %10s %8s  %s\n' spots seconds cpu_s peak_MiB ARI "load average before"
rows=()
for n in $sizes; do
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  /usr/bin/time -f '%M %U %S' -o "$tmp/rss" "$bin" --n-spots "$n" --threads "$threads" "${kind[@]}" >"$tmp/out" 2>"$tmp/err" || {
    echo "bench/scale: N=$n failed:" >&2; cat "$tmp/err" >&2; exit 1; }
  spots=$(sed -n 's/^scaled simulator: .* -> \([0-9]*\) spots$/\1/p' "$tmp/out")
  secs=$(awk '$1 == "total" {print $2}' "$tmp/out")
  ari=$(sed -n 's/^integrated ARI \([0-9.]*\).*/\1/p' "$tmp/out")
  rss=$(awk 'END {printf "%.0f", $1 / 1024}' "$tmp/rss")
  cpu=$(awk 'END {printf "%.1f", $2 + $3}' "$tmp/rss")
  printf '%-8s %10s %10s %10s %8s  %s\n' "$spots" "$secs" "$cpu" "$rss" "$ari" "$load"
  sed -n 's/.*\(threads: .*\)$/\1/p' "$tmp/out" | head -1 >"$tmp/threads"
  awk '/^  [a-z_0-9]+ +[0-9.]+ s$/ && $1 != "total" {printf "           %-12s %8s s\n", $1, $2}' "$tmp/out"
  rows+=("$spots $secs $rss $cpu")
done
cat "$tmp/threads"
# Least-squares slope of log(seconds) and log(peak RSS) on log(spots).
printf '%s\n' "${rows[@]}" | awk '
  { x[NR] = log($1); t[NR] = log($2); m[NR] = log($3); c[NR] = log($4) }
  function slope(y,   i, sx, sy, sxx, sxy) {
    for (i = 1; i <= NR; i++) { sx += x[i]; sy += y[i]; sxx += x[i] * x[i]; sxy += x[i] * y[i] }
    return (NR * sxy - sx * sy) / (NR * sxx - sx * sx)
  }
  END {
    if (NR < 2) { print "one size: no exponent"; exit }
    printf "fitted exponent over all sizes: time N^%.2f, cpu N^%.2f, peak RSS N^%.2f\n", slope(t), slope(c), slope(m)
    for (i = 2; i <= NR; i++)
      printf "  %d -> %d spots: time N^%.2f, cpu N^%.2f, peak RSS N^%.2f\n", exp(x[i-1]) + 0.5, exp(x[i]) + 0.5,
             (t[i] - t[i-1]) / (x[i] - x[i-1]), (c[i] - c[i-1]) / (x[i] - x[i-1]), (m[i] - m[i-1]) / (x[i] - x[i-1])
  }'
