#!/usr/bin/env bash
# Trains and evaluates one policy per category of a dataset root (the way MVTec-AD's 15
# categories are reported) and collects one summary table, as CSV and Markdown.
# Usage: scripts/eval_all.sh --format mvtec --root DIR [--config configs/tiny.json] [--out runs/all]
#                            [--category a,b] [--eval-only] [-- extra `lriad train` options]
# A category whose training or evaluation fails is reported as failed and the loop goes on;
# a trained category is not retrained on a re-run (delete <out>/<category>.trained to redo it).
set -euo pipefail
cd "$(dirname "$0")/.."
LRIAD=${LRIAD:-${LRIAD_BUILD_DIR:-build}/bin/lriad}
FORMAT="" ROOT="" CONFIG=configs/tiny.json OUT=runs/all CATS="" EVAL_ONLY=0 EXTRA=()
while (($#)); do
  case "$1" in
    --format) FORMAT=$2; shift 2 ;;
    --root) ROOT=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --category) CATS=$2; shift 2 ;;
    --eval-only) EVAL_ONLY=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "eval_all.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
[ -n "$FORMAT" ] && [ -n "$ROOT" ] || { echo "eval_all.sh: --format and --root are required" >&2; exit 2; }
[ -x "$LRIAD" ] || { echo "eval_all.sh: $LRIAD not built (run scripts/setup.sh)" >&2; exit 2; }
if [ -z "$CATS" ]; then
  CATS=$("$LRIAD" data stats --format "$FORMAT" --root "$ROOT" --json |
    /usr/bin/env python3 -c 'import json,sys; print(",".join(sorted(json.load(sys.stdin)["categories"])))')
fi
mkdir -p "$OUT"
CSV="$OUT/summary.csv" MD="$OUT/summary.md"
echo "category,status,n,accuracy,balanced_accuracy,f1,auroc,average_precision,format_rate,consistency_rate,localization_agreement" > "$CSV"
failed=0
IFS=',' read -ra LIST <<< "$CATS"
for cat in "${LIST[@]}"; do
  run="$OUT/$cat"
  echo "[eval_all] $cat"
  status=ok
  if [ "$EVAL_ONLY" != 1 ] && [ ! -f "$OUT/$cat.trained" ]; then
    if "$LRIAD" train --config "$CONFIG" --format "$FORMAT" --root "$ROOT" --category "$cat" --out "$run" --overwrite \
      ${EXTRA[@]+"${EXTRA[@]}"} > "$OUT/$cat.train.log" 2>&1; then
      touch "$OUT/$cat.trained"
    else
      status=train_failed
    fi
  fi
  if [ "$status" = ok ]; then
    "$LRIAD" eval --run "$run" --format "$FORMAT" --root "$ROOT" --category "$cat" --out "$run/eval-test" \
      > "$OUT/$cat.eval.log" 2>&1 || status=eval_failed
  fi
  if [ "$status" = ok ]; then
    /usr/bin/env python3 - "$run/eval-test/metrics.json" "$cat" >> "$CSV" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
keys = ["n", "accuracy", "balanced_accuracy", "f1", "auroc", "average_precision", "format_rate", "consistency_rate",
        "localization_agreement"]
cell = lambda v: "" if v is None else (str(v) if isinstance(v, int) else f"{v:.4f}")
print(",".join([sys.argv[2], "ok"] + [cell(m.get(k)) for k in keys]))
PY
  else
    failed=$((failed + 1))
    echo "$cat,$status,,,,,,,,," >> "$CSV"
    echo "[eval_all] $cat: $status (log: $OUT/$cat.*.log)" >&2
  fi
done
/usr/bin/env python3 - "$CSV" > "$MD" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head, body = rows[0], rows[1:]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for r in body: print("| " + " | ".join(r) + " |")
ok = [r for r in body if r[1] == "ok"]
if ok:
    def mean(i):
        v = [float(r[i]) for r in ok if r[i]]
        return f"{sum(v) / len(v):.4f}" if v else ""
    print("| **mean** | " + f"{len(ok)} ok | " + " | ".join(mean(i) for i in range(2, len(head))) + " |")
PY
cat "$MD"
echo "[eval_all] summary: $CSV and $MD ($failed failed)"
exit $((failed > 0))
