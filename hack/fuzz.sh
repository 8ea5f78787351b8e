#!/usr/bin/env bash
# Runs each Go fuzz target of the root package (the sync path: sync_fuzz_test.go) for FUZZ_TIME
# (default 20s), one target at a time, and fails if any of them fails.
#
#   hack/fuzz.sh                         every target, 20s each
#   FUZZ_TIME=5m hack/fuzz.sh            longer (any -fuzztime value: 5m, 100000x)
#   FUZZ_TARGETS=FuzzSyncFoo hack/fuzz.sh  some targets only (space-separated)
#   FUZZ_PARALLEL=1 hack/fuzz.sh         fewer fuzzing workers than GOMAXPROCS (a busy machine)
#
# A failing input is written by `go test` to testdata/fuzz/<target>/<id>, where it then runs as
# an ordinary test case in `go test .` (and so in make unit) until the bug is fixed: reproduce it
# with go test -run '^<target>/<id>$' -v . , and keep the file as a regression case.
# The inputs the fuzzer found interesting (not failing) stay in Go's cache ($(go env GOCACHE)/fuzz),
# so a later run goes on from there.
#
# The first run builds every dependency again with the fuzzer's coverage instrumentation (38
# minutes measured on the 2-core development machine while end-to-end clusters ran beside it);
# later runs reuse the build cache and spend a few seconds building before fuzzing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="/usr/local/go/bin:$PATH"

fuzz_time="${FUZZ_TIME:-20s}"
parallel=()
if [[ -n "${FUZZ_PARALLEL:-}" ]]; then
  parallel=(-parallel "$FUZZ_PARALLEL")
fi
if [[ -n "${FUZZ_TARGETS:-}" ]]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  mapfile -t targets < <(grep -ho '^func Fuzz[A-Za-z0-9_]*' -- *_test.go | sed 's/^func //' | sort -u)
fi
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "fuzz: no fuzz targets found in $root/*_test.go" >&2
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
failed=()
for target in "${targets[@]}"; do
  echo "fuzz: $target for $fuzz_time"
  start=$SECONDS
  if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzz_time" "${parallel[@]}" . 2>&1 | tee "$log"; then
    echo "fuzz: $target passed ($((SECONDS - start))s)"
    continue
  fi
  failed+=("$target")
  echo "fuzz: $target FAILED ($((SECONDS - start))s)" >&2
  input="$(sed -n 's/.*Failing input written to \(testdata\/fuzz\/[^[:space:]]*\).*/\1/p' "$log" | tail -n 1)"
  if [[ -n "$input" ]]; then
    echo "fuzz: the failing input was written to $root/$input" >&2
    echo "fuzz: reproduce it with: go test -run '^${target}/$(basename "$input")\$' -v ." >&2
  else
    echo "fuzz: no failing input was written (a build error, or a seed in testdata/fuzz/$target or in f.Add fails: go test -run '^${target}\$' -v .)" >&2
  fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: every target passed (${targets[*]}), $fuzz_time each"
