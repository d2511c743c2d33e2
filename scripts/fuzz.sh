#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang in build-fuzz and runs each for the given
# number of seconds (default 30) on its seed corpus, then prints the executions per target.
# Findings (crash-*, leak-*, timeout-* inputs) are written to build-fuzz/tests/fuzz/.
# Usage: scripts/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-30}
BUILD_DIR=${LRIAD_FUZZ_DIR:-build-fuzz}
TARGETS=(fuzz_safetensors fuzz_visa_csv fuzz_answer fuzz_config)

cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLRIAD_FUZZ=ON -DLRIAD_FUZZ_SECONDS="$SECONDS_EACH" >/dev/null
ninja -C "$BUILD_DIR" -j 2 "${TARGETS[@]}"

status=0
for t in "${TARGETS[@]}"; do
  log="$BUILD_DIR/tests/fuzz/$t.log"
  ctest --test-dir "$BUILD_DIR" -R "^$t\$" -V >"$log" 2>&1 || status=1
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  result=$(grep -q 'tests passed' "$log" && echo ok || echo "FAILED (see $log)")
  printf '%-18s %12s executions in %ss  %s\n' "$t" "$execs" "$SECONDS_EACH" "$result"
done
exit $status
