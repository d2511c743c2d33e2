#!/usr/bin/env bash
# Sets up (installs missing packages, builds) and runs lriad's main job on the embedded default:
# the synthetic demo dataset (generated into data/demo and described), `lriad train` with
# configs/tiny.json into runs/demo (replaced on each run), then `lriad eval` on the demo's test
# split into runs/demo/eval-test (metrics.json, predictions.jsonl, report.html).
# Env: LRIAD_DEMO_DIR (default data/demo), LRIAD_DEMO_REGEN=1 to regenerate it,
#      LRIAD_DEMO_RUN (default runs/demo), LRIAD_DEMO_SET="sft.steps=50 grpo.steps=20" (overrides).
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

RUN=${LRIAD_DEMO_RUN:-runs/demo}
SETS=()
for kv in ${LRIAD_DEMO_SET:-}; do SETS+=(--set "$kv"); done
echo "[demo] training configs/tiny.json on $DEMO into $RUN (a few minutes on 2 CPU cores)"
"$LRIAD" train --config configs/tiny.json --format mvtec --root "$DEMO" --out "$RUN" --overwrite "${SETS[@]}"
"$LRIAD" model info --run "$RUN" | sed -n '1,8p'
echo "[demo] evaluating $RUN on the test split of $DEMO"
"$LRIAD" eval --run "$RUN" --format mvtec --root "$DEMO" --out "$RUN/eval-test"
echo "[demo] validation history: $RUN/validation.jsonl; per-step metrics: $RUN/metrics.jsonl;"
echo "[demo] sampled completions with rewards: $RUN/completions/; images: $DEMO (open any PNG)"
echo "[demo] report (open in a browser): $RUN/eval-test/report.html"
