#!/usr/bin/env python3
"""Table of scripts/ablate.sh's evaluations: mean ± std over seeds (sample std, n-1) of each arm
(SFT end, GRPO with the focal reward, GRPO with the plain accuracy reward) beside the evidence-only
baseline, per layout and test split: balanced accuracy and AUROC overall, balanced accuracy per
category, and the recall of the rarest defect types (those with the fewest test images; MVTec layout
only: VisA's CSV names no types); then the chains beside their baselines: localisation against "always the
centre", family accuracy against "always the most frequent family", and the collapse shares.
Usage: ablate_table.py OUT_DIR > table.md"""
import glob
import json
import os
import re
import statistics
import sys

ARMS = [("sft", "SFT end"), ("focal", "GRPO, focal reward"), ("plain", "GRPO, plain reward")]


def ms(values):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f} (1 seed)"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def rarest(metrics):
    types = {t: v for t, v in metrics.get("per_defect_type", {}).items() if t not in ("good", "anomaly")}
    if not types:
        return None, []
    low = min(v["n"] for v in types.values())
    names = sorted(t for t, v in types.items() if v["n"] == low)
    hit = sum(types[t]["recall"] * types[t]["n"] for t in names)
    return hit / (low * len(names)), names


def main(out):
    runs = {}  # (layout, split) -> arm -> seed -> metrics
    for path in glob.glob(os.path.join(out, "*", "s*", "eval-*-*", "metrics.json")):
        parts = path.split(os.sep)
        layout, seed, ev = parts[-4], parts[-3], parts[-2]
        m = re.fullmatch(r"eval-(\w+)-(\w+)", ev)
        if not m or not re.fullmatch(r"s\d+", seed):
            continue
        runs.setdefault((layout, m.group(2)), {}).setdefault(m.group(1), {})[seed] = json.load(open(path))
    if not runs:
        sys.exit(f"no evaluations under {out}")
    print(f"# Ablation ({out})\n")
    print("Mean ± sample std over seeds. Baseline: the normal reference's evidence alone (deviation-map peak, "
          "threshold from held-out normal training images), from the same evaluations.\n")
    for (layout, split), arms in sorted(runs.items()):
        seeds = sorted({s for a in arms.values() for s in a})
        print(f"## {layout} layout, {split} test split ({len(seeds)} seed{'s' if len(seeds) != 1 else ''}: {', '.join(seeds)})\n")
        base = [m.get("baseline") or {} for a in arms.values() for m in a.values()]
        cats = sorted({c for a in arms.values() for m in a.values() for c in m.get("per_category", {})})
        head = ["", "balanced accuracy", "AUROC"] + [f"{c} (bal. acc.)" for c in cats] + ["rarest types' recall"]
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        any_metrics = next(iter(next(iter(arms.values())).values()))
        _, rare_names = rarest(any_metrics)
        for key, name in ARMS:
            ms_ = list(arms.get(key, {}).values())
            if not ms_:
                continue
            row = [name, ms([m["balanced_accuracy"] for m in ms_]), ms([m.get("auroc") for m in ms_])]
            row += [ms([m["per_category"].get(c, {}).get("balanced_accuracy") for m in ms_]) for c in cats]
            row.append(ms([rarest(m)[0] for m in ms_]))
            print("| " + " | ".join(row) + " |")
        # The baseline does not depend on the weights: one value per seed (the SFT arm's evaluation).
        bs = [m.get("baseline") or {} for m in arms.get("sft", arms[next(iter(arms))]).values()]
        row = ["evidence-only baseline", ms([b.get("balanced_accuracy") for b in bs]), ms([b.get("auroc") for b in bs])]
        row += [ms([(b.get("per_category") or {}).get(c, {}).get("balanced_accuracy") for b in bs]) for c in cats]
        row.append("–")
        print("| " + " | ".join(row) + " |\n")
        if rare_names:
            print(f"Rarest defect types: {', '.join(rare_names)}.\n")
        explanations(arms)


def explanations(arms):
    """The chains beside their baselines (metrics.json): localisation against "always the centre",
    family accuracy against "always the most frequent family" and "the family the look suggests",
    and the collapse shares."""
    head = ["", "localisation", "centre baseline", "family accuracy", "most-frequent baseline",
            "look's family", "top family's share", "top chain's share"]
    rows = []
    for key, name in ARMS:
        ms_ = list(arms.get(key, {}).values())
        if not ms_:
            continue
        rows.append([name, ms([m.get("localization_agreement") for m in ms_]),
                     ms([(m.get("localization_baselines") or {}).get("centre") for m in ms_]),
                     ms([m.get("defect_family_accuracy") for m in ms_]),
                     ms([m.get("family_baseline_most_frequent") for m in ms_]),
                     ms([m.get("family_baseline_look") for m in ms_]),
                     ms([(m.get("collapse") or {}).get("type") for m in ms_]),
                     ms([(m.get("collapse") or {}).get("chain") for m in ms_])])
    if not rows:
        return
    print("Explanations (correctly flagged anomalies; localisation needs masks, family accuracy named types):\n")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/ablate")
