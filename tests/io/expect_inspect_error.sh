#!/bin/sh
# Usage: expect_inspect_error.sh CANDIES FILE EXPECTED
# Passes when `candies inspect FILE` exits 1 and prints exactly one line that
# starts with "candies inspect: FILE: " and contains EXPECTED.
out=$("$1" inspect "$2" 2>&1)
rc=$?
printf '%s\n' "$out"
[ "$rc" -eq 1 ] || { echo "exit code $rc, expected 1"; exit 1; }
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || { echo "expected one line"; exit 1; }
printf '%s' "$out" | grep -qF -- "candies inspect: $2: " || { echo "missing prefix"; exit 1; }
printf '%s' "$out" | grep -qF -- "$3" || { echo "missing: $3"; exit 1; }
