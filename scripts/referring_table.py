"""The quality-bar table of the MLLM-guided issue: models on the visually-referring share of the
synth suite (task ``synth-referring``), 5 seeds, mean and Student-t 95% CI over seeds.

    python scripts/referring_table.py RESULT.json [RESULT.json ...] [--vs instruct-pix2pix]

Each RESULT is what ``editbench run --task synth-referring --model M`` wrote. Prints a Markdown
table, and for every model whether its CI on ``l1_in_mask`` (lower is better) and ``cvs`` (higher
is better) lies entirely on the better side of the ``--vs`` model's CI ("non-overlapping").

Several results of one model with different weights (training runs, e.g. ``--seed 1``
retrains) each get a row, labelled by their weights' sha256 prefix, every run is compared with
every ``--vs`` run, and a second table gives each model's mean over its runs and the range of
the run means. The CIs cover sampling noise only; the range shows what retraining moves.
"""
import argparse
import collections
import json
from pathlib import Path

KEYS = (("l1_in_mask", False), ("cvs", True), ("l1", False), ("l1_out_mask", False), ("dino", True),
        ("clip_s_input", True))

p = argparse.ArgumentParser()
p.add_argument("results", nargs="+")
p.add_argument("--vs", default="instruct-pix2pix")
a = p.parse_args()
runs = collections.defaultdict(dict)  # model name -> {weights sha256: result}
for path in a.results:
    r = json.loads(Path(path).read_text())
    if r["task"]["name"] != "synth-referring":
        raise SystemExit(f"{path}: task {r['task']['name']}, expected synth-referring")
    runs[r["model"]["name"]][r["model"]["weights_sha256"]] = r
rows = {}  # label -> result
for name, by_weights in runs.items():
    for sha, r in by_weights.items():
        rows[f"{name} @{sha[:8]}" if len(by_weights) > 1 else name] = r


def cell(m):
    if m is None or m.get("mean") is None:
        return "n/a"
    ci = m.get("ci95")
    return f"{m['mean']:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else f"{m['mean']:.4f}"


print("| model | seeds | " + " | ".join(k for k, _ in KEYS) + " |")
print("|---|---|" + "---|" * len(KEYS))
for name, r in rows.items():
    print(f"| {name} | {len(r['protocol']['seeds'])} | "
          + " | ".join(cell(r["metrics"].get(k)) for k, _ in KEYS) + " |")
bases = {label: r for label, r in rows.items() if r["model"]["name"] == a.vs}
if bases:
    print()
for base_label, base in bases.items():
    for name, r in rows.items():
        if r["model"]["name"] == a.vs:
            continue
        verdicts = []
        for key, higher in KEYS[:2]:
            m, b = r["metrics"].get(key), base["metrics"].get(key)
            if not (m and b and m.get("ci95") and b.get("ci95")):
                verdicts.append(f"{key}: no CI")
                continue
            better = m["ci95"][0] > b["ci95"][1] if higher else m["ci95"][1] < b["ci95"][0]
            worse = m["ci95"][1] < b["ci95"][0] if higher else m["ci95"][0] > b["ci95"][1]
            verdicts.append(f"{key}: " + ("better, CIs disjoint" if better else
                                          "worse, CIs disjoint" if worse else "CIs overlap"))
        print(f"- {name} vs {base_label}: " + "; ".join(verdicts))

multi = {name: list(by_weights.values()) for name, by_weights in runs.items() if len(by_weights) > 1}
if multi:
    print("\n| model | training runs | " + " | ".join(f"{k}: mean of runs [range]" for k, _ in KEYS[:2]) + " |")
    print("|---|---|" + "---|" * 2)
    for name, rs in multi.items():
        cells = []
        for key, _ in KEYS[:2]:
            means = [r["metrics"][key]["mean"] for r in rs
                     if r["metrics"].get(key) and r["metrics"][key].get("mean") is not None]
            cells.append(f"{sum(means) / len(means):.4f} [{min(means):.4f}, {max(means):.4f}]" if means else "n/a")
        print(f"| {name} | {len(rs)} | " + " | ".join(cells) + " |")
