#!/bin/sh
# Usage: expect_inspect_contained.sh CANDIES FILE.gz EXPECTED
# A byte-flipped file that crashes (SIGSEGV inside libhdf5) or hangs the reader:
# `candies inspect --timeout 5` must still exit 1 with one line naming the file
# and containing EXPECTED ("killed by signal 11", "timed out", or the element
# error that stops the read first; alternatives separated by " OR "), never die
# itself.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
f="$tmp/$(basename "$2" .gz)"
gunzip -c "$2" > "$f" || exit 1
out=$("$1" inspect --timeout 5 "$f" 2>&1)
rc=$?
printf '%s\n' "$out"
[ "$rc" -eq 1 ] || { echo "exit code $rc, expected 1"; exit 1; }
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || { echo "expected one line"; exit 1; }
printf '%s' "$out" | grep -qF -- "candies inspect: $f: " || { echo "missing prefix"; exit 1; }
found=no
rest=$3
while :; do
  alt=${rest%% OR *}
  printf '%s' "$out" | grep -qF -- "$alt" && found=yes
  [ "$alt" = "$rest" ] && break
  rest=${rest#* OR }
done
[ "$found" = yes ] || { echo "missing: $3"; exit 1; }
