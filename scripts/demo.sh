#!/usr/bin/env bash
# Sets up (installs missing packages, builds) and runs lriad's main job on the embedded default:
# the synthetic demo dataset, generated into data/demo and described.
# Env: LRIAD_DEMO_DIR (default data/demo), LRIAD_DEMO_REGEN=1 to regenerate it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD_DIR=${LRIAD_BUILD_DIR:-build}
LRIAD="$BUILD_DIR/bin/lriad"
DEMO=${LRIAD_DEMO_DIR:-data/demo}

if [ -f "$DEMO/synth.json" ] && [ "${LRIAD_DEMO_REGEN:-0}" != 1 ]; then
  echo "[demo] reusing $DEMO (LRIAD_DEMO_REGEN=1 regenerates it)"
else
  rm -rf "$DEMO"
  echo "[demo] generating the synthetic demo dataset into $DEMO"
  "$LRIAD" synth --out "$DEMO"
fi
"$LRIAD" info
"$LRIAD" data stats --format mvtec --root "$DEMO"
echo "[demo] done: images are in $DEMO (open any PNG to look at them)"
