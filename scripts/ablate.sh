#!/usr/bin/env bash
# Claims across seeds (issue 19): for each layout (mvtec, visa) and seed, trains configs/tiny.json on
# the generated demo set (SFT, then GRPO with the focal reward), then GRPO with the plain accuracy
# reward from the same SFT weights, and evaluates the SFT end, both GRPO ends and (in every
# metrics.json) the evidence-only baseline on the demo test split and on a 4x larger test split
# (`lriad synth --per-category 400 --seed 1`). Writes OUT/table.md: mean ± std over seeds, overall,
# per category and on the rarest defect types (scripts/ablate_table.py).
# Usage: scripts/ablate.sh [--out runs/ablate] [--seeds "0 1 2"] [--layouts "mvtec visa"]
#                          [--splits "demo 4x"] [-- extra `lriad train` options, e.g. --set sft.steps=50]
# Finished pieces are kept: re-running continues where it stopped, a training stopped part-way from its
# last checkpoint (delete a folder to redo it).
# Time on 2 CPU cores: about 25 minutes per layout and seed.
set -euo pipefail
cd "$(dirname "$0")/.."
LRIAD=${LRIAD:-${LRIAD_BUILD_DIR:-build}/bin/lriad}
OUT=runs/ablate SEEDS="0 1 2" LAYOUTS="mvtec visa" SPLITS="demo 4x" EXTRA=()
while (($#)); do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --seeds) SEEDS=$2; shift 2 ;;
    --layouts) LAYOUTS=$2; shift 2 ;;
    --splits) SPLITS=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "ablate.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ -x "$LRIAD" ] || { echo "ablate.sh: $LRIAD not built (run scripts/setup.sh)" >&2; exit 2; }
mkdir -p "$OUT/data"

done_training() { [ -f "$1/trainer_state.json" ] && grep -q '"stage": "done"' "$1/trainer_state.json"; }
# Trains a run into $1 (the rest: `lriad train`'s options). A run stopped part-way (killed, Ctrl-C, a
# reboot) continues from its last checkpoint with its own config.json (trainer_state.json names one
# only once it is written in full); a run with no checkpoint yet starts afresh.
train_run() {
  local out=$1
  shift
  if done_training "$out"; then return 0; fi
  if [ -f "$out/trainer_state.json" ]; then
    echo "[ablate] $out stopped part-way: resuming it from its last checkpoint"
    "$LRIAD" train --resume --out "$out"
  else
    "$LRIAD" train --out "$out" --overwrite "$@"
  fi
}

for layout in $LAYOUTS; do
  demo="$OUT/data/$layout-demo" big="$OUT/data/$layout-4x"
  [ -f "$demo/synth.json" ] || "$LRIAD" synth --layout "$layout" --out "$demo" --overwrite
  [[ " $SPLITS " != *" 4x "* ]] || [ -f "$big/synth.json" ] ||
    "$LRIAD" synth --layout "$layout" --out "$big" --per-category 400 --seed 1 --overwrite
  for seed in $SEEDS; do
    run="$OUT/$layout/s$seed" plain="$OUT/$layout/s$seed-plain" init="$OUT/$layout/s$seed-sft"
    echo "[ablate] $layout seed $seed: SFT + GRPO (focal reward) -> $run"
    train_run "$run" --config configs/tiny.json --format "$layout" --root "$demo" --set seed="$seed" "${EXTRA[@]}"
    # The plain-reward arm starts from this seed's SFT weights (a run folder holding them).
    mkdir -p "$init" && cp "$run/sft.safetensors" "$init/model.safetensors"
    echo "[ablate] $layout seed $seed: GRPO (plain accuracy reward) from the same SFT weights -> $plain"
    train_run "$plain" --config configs/tiny.json --format "$layout" --root "$demo" --init "$init" \
      --tokenizer "$run/tokenizer.model" --set seed="$seed" --set sft.steps=0 --set reward.focal=0 "${EXTRA[@]}"
    for split in $SPLITS; do
      root=$demo; [ "$split" = 4x ] && root=$big
      for arm in sft focal plain; do
        case $arm in
          sft) r=$run w=sft.safetensors ;;
          focal) r=$run w=model.safetensors ;;
          plain) r=$plain w=model.safetensors ;;
        esac
        e="$OUT/$layout/s$seed/eval-$arm-$split"
        [ -f "$e/metrics.json" ] || "$LRIAD" eval --run "$r" --weights "$w" --format "$layout" --root "$root" --out "$e"
      done
    done
  done
done
/usr/bin/env python3 scripts/ablate_table.py "$OUT" > "$OUT/table.md"
echo "[ablate] table: $OUT/table.md"
