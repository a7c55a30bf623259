"""Where the referring share's error comes from: l1 per edit operation on ``synth-referring``, from
the outputs a run stored, every stored seed, next to identity's.

    python scripts/referring_by_op.py RESULT.json [RESULT.json ...] [--cache-dir .editbench-cache]
        [--cvs]

Each RESULT is what ``editbench run --task synth-referring --model M`` wrote (its model key finds
the stored outputs). Prints whole-image l1 per operation and, for operations with a mask,
l1_in_mask / l1_out_mask, with the metric suite's own functions (pixel conventions as ``l1``).
MagicBrush turns are listed apart (``mb-``), as their sources are the previous ground-truth turn.
``--cvs`` prints a second table: mean cvs per operation, with the metric's own class and the
backbone the results name (all results must name the same one).
"""
import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmark.datasets.synth import load_referring
from benchmark.metrics.base import aligned_pair
from benchmark.metrics.l1 import l1_distance
from benchmark.metrics.masked_l1 import mask_region, masked_l1
from benchmark.store import DEFAULT_CACHE_DIR, OutputStore

p = argparse.ArgumentParser()
p.add_argument("results", nargs="+")
p.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
p.add_argument("--cvs", action="store_true", help="also a table of cvs per operation")
a = p.parse_args()
cvs_backbones = set()

stores = {"identity": None}
for path in a.results:
    r = json.loads(Path(path).read_text())
    if r["task"]["name"] != "synth-referring":
        raise SystemExit(f"{path}: task {r['task']['name']}, expected synth-referring")
    m = r["model"]
    if m["name"] == "identity":  # already a column, computed from the sources (it stores nothing)
        continue
    name = m["name"] + (f" ({m['variant']})" if m.get("variant") else "")
    if name in stores:  # the same model with other weights: name them by their sha256
        name += f" [{(m.get('weights_sha256') or 'no weights')[:8]}]"
    stores[name] = (OutputStore.for_result(a.cache_dir, r), r["protocol"]["seeds"])
    if a.cvs:
        cvs_backbones.add(r["metrics"]["cvs"]["backbone"])
if len(cvs_backbones) > 1:
    raise SystemExit(f"--cvs: the results name different cvs backbones: {sorted(cvs_backbones)}")
if a.cvs:
    from benchmark.metrics.base import MetricInput
    from benchmark.metrics.cvs import CVS
    from benchmark.metrics.features import MetricContext

    cvs_metric = CVS(context=MetricContext(backbones="synth" if "synth" in next(iter(cvs_backbones)) else "standard"))
    cvs_rows = defaultdict(lambda: defaultdict(list))  # op -> model -> cvs per (sample, seed)

# op -> model -> list of (l1, l1_in_mask, l1_out_mask) over (sample, seed)
scores = defaultdict(lambda: defaultdict(list))
for s in load_referring("test"):
    op = ("mb-" if s.meta.get("variant") == "magicbrush" else "") + s.meta["ops"][0]
    region = None if s.mask is None else mask_region(s.mask, s.target.size)
    for name, entry in stores.items():
        outputs = [s.source] if entry is None else [o.image for o in (
            entry[0].get(seed, s.id) for seed in entry[1]) if o is not None]
        for image in outputs:
            out, tgt = aligned_pair(image, s.target)
            row = [float(l1_distance(out, tgt)[0]), np.nan, np.nan]
            if region is not None:
                row[1:] = [float(masked_l1(out, tgt, region)[0]), float(masked_l1(out, tgt, ~region)[0])]
            scores[op][name].append(row)
        if a.cvs and outputs:
            cvs_rows[op][name] += cvs_metric.score_applicable([MetricInput(im, s) for im in outputs])

names = list(stores)
print("| op | n | " + " | ".join(names) + " |")
print("|---|---|" + "---|" * len(names))
for op in sorted(scores):
    cells = []
    for name in names:
        rows = np.array(scores[op][name], dtype=float)
        if not len(rows):
            cells.append("—")
        elif not np.isnan(rows[:, 1]).all():
            cells.append(f"{rows[:, 0].mean():.3f} ({np.nanmean(rows[:, 1]):.3f} / {np.nanmean(rows[:, 2]):.3f})")
        else:
            cells.append(f"{rows[:, 0].mean():.3f}")
    print(f"| {op} | {len(scores[op][names[-1]])} | " + " | ".join(cells) + " |")
print("\nwhole-image l1; where samples have a mask: (l1_in_mask / l1_out_mask over them). Lower is better.")
if a.cvs:
    print("\n| op | n | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for op in sorted(cvs_rows):
        print(f"| {op} | {len(cvs_rows[op][names[-1]])} | "
              + " | ".join(f"{np.mean(cvs_rows[op][n]):.3f}" for n in names) + " |")
    print(f"\ncvs ({next(iter(cvs_backbones))}). Higher is better.")
