#!/usr/bin/env bash
# Reproduces the README's Performance figures: `lriad bench` (GEMM ceiling, generation,
# GRPO step, evaluation, data loading, peak memory) and, when the demo data exists, the data
# wait and peak memory of a short real training run.
#   scripts/bench.sh [--device cuda] [--threads N] [extra lriad bench options]
# Writes bench.json (and train-bench/) under ${LRIAD_BENCH_OUT:-runs/bench}.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${LRIAD_BIN:-build/bin/lriad}
OUT=${LRIAD_BENCH_OUT:-runs/bench}
mkdir -p "$OUT"
THREADS=()
ARGS=()
while (($#)); do
  case "$1" in
    --threads) THREADS=(--threads "$2"); shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
"$BIN" "${THREADS[@]}" bench --config configs/tiny.json --json "${ARGS[@]}" > "$OUT/bench.json"
python3 - "$OUT/bench.json" <<'PY' || cat "$OUT/bench.json"
import json, sys
j = json.load(open(sys.argv[1]))
print(f"{j['config']} on {j['device']}, {j['threads']} threads, B={j['B']} G={j['G']} L={j['L']}")
print(j['runtime'])
if 'gemm' in j: print(f"GEMM ceiling: fp32 {j['gemm']['fp32']['gflops']:.1f} GFLOP/s, bf16 {j['gemm']['bf16']['gflops']:.1f} GFLOP/s")
g = j.get('generate', {})
if g: print("generation tokens/s: " + ", ".join(f"{k} {v['tokens_per_s']:.0f}" for k, v in g.items() if isinstance(v, dict))
            + f"; shared/no-cache {g.get('shared_over_no_cache', 0):.1f}x, shared/cache {g.get('shared_over_cache', 0):.2f}x")
for p, s in j.get('grpo', {}).items():
    ms = s['ms']
    print(f"GRPO step {p}: " + ", ".join(f"{k} {ms[k]:.0f} ms" for k in ['generate', 'reference', 'policy_forward', 'backward', 'optimizer', 'total'])
          + f"; generation {100*s['generate_share']:.0f}%, fwd+bwd MFU {100*s['mfu_policy_forward_backward']:.0f}%, step MFU {100*s['mfu_step']:.0f}%")
d = j.get('data')
if d: print(f"data: decode+resize {d['decode_resize_images_per_s']:.0f} img/s, reference map {d.get('reference_ms_per_image', 0):.1f} ms/img, "
            f"batches {d['batch_items_per_s']:.1f} items/s, wait in step {100*d['in_step']['data_wait_share']:.0f}% -> prefetched {100*d['prefetch']['data_wait_share']:.0f}%, "
            f"synthetic anomaly {d.get('synthetic_anomaly_ms', {}).get('128', 0):.2f} ms at 128 px, reference banks on {d.get('reference_device', 'cpu')}")
if 'eval' in j: print(f"evaluation: {j['eval']['images_per_s']:.1f} images/s")
print(f"peak RSS {j['peak_rss_mib']:.0f} MiB" + ("; by section: " + ", ".join(f"{k} {v:.0f}" for k, v in j['peak_rss_mib_by_section'].items())
                                                if j.get('peak_rss_mib_by_section') else ""))
PY
# A short real run on the demo data: data wait share and peak memory of `lriad train`.
if [[ -d data/demo ]]; then
  /usr/bin/time -v "$BIN" "${THREADS[@]}" train --config configs/tiny.json --out "$OUT/train-bench" --overwrite \
    --set sft.steps=30 --set grpo.steps=10 --set train.eval_every=1000 > "$OUT/train.log" 2> "$OUT/train.time" || true
  grep "Maximum resident" "$OUT/train.time" | sed 's/^\s*/lriad train (sft 30, grpo 10): /'
  python3 - "$OUT/train-bench/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
for stage in ['sft', 'grpo']:
    r = [x for x in rows if x['stage'] == stage and x['step'] > 1]  # step 1 waits for the first batch
    if not r: continue
    wait = sum(x.get('time/data_wait', 0) for x in r); step = sum(x['step_time'] for x in r)
    print(f"  {stage}: data wait {100*wait/(wait+step):.1f}% of step time ({1000*wait/len(r):.0f} ms per step of {1000*(wait+step)/len(r):.0f} ms)")
    if stage == 'grpo':
        gen = sum(x.get('time/generate', 0) for x in r)
        print(f"  grpo: generation {100*gen/step:.0f}% of the step")
PY
fi
