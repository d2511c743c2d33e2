#!/usr/bin/env bash
# Builds lriad and its unit tests with AddressSanitizer + UBSan in build-asan and runs them.
# Usage: scripts/sanitize.sh [ctest args...]   (default: ctest -L unit)
# Debian's libtorch, openblas and libgomp are not instrumented: leaks reported from their
# frames are suppressed in tests/fuzz/lsan.supp; lriad's own code has no suppressions.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${LRIAD_ASAN_DIR:-build-asan}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLRIAD_SANITIZE=ON
ninja -C "$BUILD_DIR" -j "${LRIAD_JOBS:-2}" ${LRIAD_ASAN_TARGETS:-}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
if (($#)); then
  exec ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
fi
exec ctest --test-dir "$BUILD_DIR" --output-on-failure -L unit
