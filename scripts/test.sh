#!/usr/bin/env bash
# Sets up (installs missing packages, builds) and runs the test suite.
# Default: every test except the labels slow, gpu, fuzz and browser. Extra arguments go to
# ctest, e.g. scripts/test.sh -L slow   or   scripts/test.sh -R test_data
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${LRIAD_BUILD_DIR:-build}
if (($#)); then
  exec ctest --test-dir "$BUILD_DIR" --output-on-failure "$@"
fi
exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" -LE "slow|gpu|fuzz|browser"
