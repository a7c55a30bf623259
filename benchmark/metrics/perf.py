"""``editbench perf metrics``: the learned-metric suite vs a naive pipeline vs the one-pass bound.

Inputs: ``--samples`` synth samples (magicbrush variant, ``--size`` pixels) edited under ``--seeds``
seeds by a stand-in editor (the target plus seeded noise, so every seed's outputs differ, with the
sample's expressive instruction). The same images go through three pipelines, each timed on the
already-built backbones:

* **suite**: what ``editbench run`` does: ``runner.score_all`` over the seeds with every learned
  metric bound to one shared ``FeatureCache`` (each unique image/text through each backbone once,
  batched; targets, sources and captions computed once for all seeds).
* **naive**: each metric on its own, per seed, per image, the way MagicBrush's evaluation script
  runs: a fresh cache for every metric and seed and batch size 1, so targets, sources and captions
  are recomputed for every metric that needs them and for every seed.
* **bound**: one preprocessing + forward pass per unique (backbone, view, image) and per unique
  (backbone, text) the suite needed, batched, with no hashing, caching or metric arithmetic.

Every backbone, view and text tower runs once untimed before the three timings (first calls
allocate memory and select kernels).

Reported: seconds of each, ``speedup_vs_naive`` = naive / suite, ``ratio_to_bound`` = suite / bound,
``speedup_ceiling_cold`` = naive / bound (what a cold suite could reach at best),
the largest difference between suite and naive values per metric (they must be equal up to float
rounding of batched vs unbatched inference), and the passes per backbone. Optionally
(``speedup_vs_naive_with_loads``) the naive pipeline also loads its backbone once per metric and
seed, as separate runs of a per-metric script would; loading is timed as building the architecture
and copying the weights in.

Backbones: ``--backbones standard`` (default) uses the real-size standard architectures (CLIP
ViT-B/32 and ViT-L/14, DINO ViT-S/16, FID Inception-v3, LPIPS AlexNet) with random weights: the
timing does not depend on the weights; ``synth`` uses the embedded synth backbones.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.results import processor_name

LEARNED = ("lpips", "dino", "cvs", "cts", "clip_dir", "clip_s_input", "clip_s_goal", "fid", "kid")


def make_items(n_samples: int, seeds: list[int], size: int):
    """(samples by id, scored ids, {seed: {id: (output, expressive)}})."""
    from PIL import Image

    from benchmark.api import derive_seed
    from benchmark.datasets import synth

    samples = []
    index = 0
    while len(samples) < n_samples:
        samples.extend(synth.generate("magicbrush", "test", index, size=size))
        index += 1
    samples = samples[:n_samples]
    outputs: dict[int, dict[str, Any]] = {}
    for seed in seeds:
        outputs[seed] = {}
        for s in samples:
            rng = np.random.default_rng(derive_seed(seed, s.id))
            arr = np.asarray(s.target, dtype=np.float32)
            arr = np.clip(arr + rng.normal(0, 12, arr.shape), 0, 255).astype(np.uint8)
            outputs[seed][s.id] = (Image.fromarray(arr), s.expressive)
    return {s.id: s for s in samples}, [s.id for s in samples], outputs


def build_backbones(kind: str) -> dict[str, Any]:
    from benchmark.metrics.backbones import STANDARD, SYNTH, resolve
    from benchmark.metrics.backbones.standard import random_backbone

    if kind == "synth":
        return {role: resolve(role, "synth") for role in SYNTH}
    return {role: random_backbone(name, seed=0) for role, name in STANDARD.items()}


class _Recorder:
    """Wraps a FeatureCache to remember which inputs it actually computed (for the bound)."""

    def __init__(self):
        self.images: dict[tuple[int, str], dict[str, Any]] = defaultdict(dict)
        self.texts: dict[tuple[int, bool], dict[str, str]] = defaultdict(dict)


def _instrumented_cache(recorder: _Recorder):
    from benchmark.metrics.features import FeatureCache, image_hash, text_hash

    class Recording(FeatureCache):
        def image_features(self, backbone, view, images, dataset_side=False):
            for im in images:
                recorder.images[(id(backbone), view)].setdefault(image_hash(im), (backbone, im))
            return super().image_features(backbone, view, images, dataset_side)

        def text_vectors(self, backbone, texts, truncate, dataset_side=True):
            for t in texts:
                recorder.texts[(id(backbone), truncate)].setdefault(text_hash(t), (backbone, t))
            return super().text_vectors(backbone, texts, truncate, dataset_side)

    return Recording()


def _task(metrics):
    from benchmark.tasks import TaskSpec

    return TaskSpec.from_dict({"name": "perf", "version": 1, "dataset": {"name": "synth"},
                               "metrics": list(metrics), "settings": {}, "seeds": [0]})


def run_suite(backbones, samples, scored, outputs, seeds, metrics, recorder=None, cache_root=None):
    from benchmark.metrics.features import FeatureCache, MetricContext
    from benchmark.runner import build_metrics, score_all

    cache = _instrumented_cache(recorder) if recorder is not None else FeatureCache(cache_root)
    ctx = MetricContext(features=cache, overrides=dict(backbones))
    built = build_metrics(_task(metrics), context=ctx)
    failures: list = []
    t0 = time.perf_counter()
    scores = score_all(built, samples, scored, seeds, lambda seed, sid: outputs[seed].get(sid), failures)
    seconds = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"suite failures: {failures[:3]}")
    passes = Counter({f"{k[0]} [{k[1]}]": v for k, v in cache.passes.items()})
    return seconds, scores, passes


def run_naive(backbones, samples, scored, outputs, seeds, metrics):
    from benchmark.metrics.base import MetricInput
    from benchmark.metrics.features import FeatureCache, MetricContext
    from benchmark.registry import METRICS

    saved = {id(b): b.batch_size for b in backbones.values()}
    for b in backbones.values():
        b.batch_size = 1
    scores: dict[str, dict[int, dict[str, float]]] = {k: {s: {} for s in seeds} for k in metrics}
    uses: Counter = Counter()
    t0 = time.perf_counter()
    try:
        for seed in seeds:
            items = [MetricInput(output=outputs[seed][sid][0], sample=samples[sid],
                                 expressive=outputs[seed][sid][1]) for sid in scored]
            for key in metrics:
                metric = METRICS.get(key)()
                uses[metric.role] += 1
                if metric.set_level:
                    ctx = MetricContext(features=FeatureCache(), overrides=dict(backbones))
                    metric.bind(ctx)
                    values = metric.score(items)
                else:
                    values = []
                    for item in items:  # per image: nothing carries over between samples
                        metric.bind(MetricContext(features=FeatureCache(), overrides=dict(backbones)))
                        values.append(metric.score([item])[0])
                for item, v in zip(items, values):
                    scores[key][seed][item.sample.id] = float(v)
    finally:
        for b in backbones.values():
            b.batch_size = saved[id(b)]
    return time.perf_counter() - t0, scores, uses


def warm_up(backbones, samples) -> None:
    """One untimed pass of every backbone, view and text tower (first calls allocate and pick
    kernels; whichever pipeline ran first would pay for it)."""
    images = [s.target for s in list(samples.values())[:2]]
    for b in {id(b): b for b in backbones.values()}.values():
        for view in b.views:
            xs = [b.preprocess(im, view) for im in images]
            if len({tuple(x.shape) for x in xs}) == 1:
                b.forward_images(torch.stack(xs), view)
                b.forward_images(xs[0][None], view)
        if b.has_text:
            b.forward_texts(b.tokenize(["a red circle", "a blue square"], True))
            b.forward_texts(b.tokenize(["a red circle"], True))


def run_bound(recorder: _Recorder) -> float:
    t0 = time.perf_counter()
    for (_, view), entries in recorder.images.items():
        backbone = next(iter(entries.values()))[0]
        groups: dict[tuple, list] = defaultdict(list)
        for _, im in entries.values():
            x = backbone.preprocess(im, view)
            groups[tuple(x.shape)].append(x)
        for xs in groups.values():
            for i in range(0, len(xs), backbone.batch_size):
                backbone.forward_images(torch.stack(xs[i:i + backbone.batch_size]), view)
    for (_, truncate), entries in recorder.texts.items():
        backbone = next(iter(entries.values()))[0]
        texts = [t for _, t in entries.values()]
        for i in range(0, len(texts), backbone.batch_size):
            chunk = texts[i:i + backbone.batch_size]
            backbone.forward_texts(torch.cat([backbone.tokenize([t], truncate) for t in chunk]))
    return time.perf_counter() - t0


def run_warm(backbones, samples, scored, outputs, seeds, metrics):
    """The suite as a *second* run on the same task finds it: dataset-side features (sources,
    targets, captions) already on disk from an earlier run, so only the model's outputs go
    through the backbones. The random-weight backbones get a stand-in weights id for the
    duration (they have none, so their features are never written to a real cache)."""
    import tempfile

    saved = {id(b): (b, b.sha256) for b in backbones.values()}
    try:
        for b, _ in saved.values():
            b.sha256 = b.sha256 or f"perf-random-weights-{b.name}"
        with tempfile.TemporaryDirectory() as root:
            run_suite(backbones, samples, scored, outputs, seeds, metrics, cache_root=root)  # fill
            seconds, scores, passes = run_suite(backbones, samples, scored, outputs, seeds, metrics,
                                                cache_root=root)
    finally:
        for b, sha in saved.values():
            b.sha256 = sha
    return seconds, scores, passes


def uses_per_pair(metrics) -> dict[str, float]:
    """Backbone image passes per (sample, seed) of the naive pipeline, by role."""
    from benchmark.registry import METRICS

    per = Counter()
    for key in metrics:
        m = METRICS.get(key)()
        # every learned metric here encodes two images per (sample, seed): output and a reference
        # (target or source); clip_s encodes one image (source or target) with the text.
        per[m.role] += 1 if key.startswith("clip_s") or key == "cts" else 2
    return dict(per)


def sharing_ceiling(per_pair: dict[str, float], n_seeds: int) -> dict[str, float]:
    """The most that one-pass-per-unique-image can save, role by role, at ``n_seeds`` seeds: the
    naive pipeline's passes per (sample, seed) over the suite's (one output per (sample, seed)
    plus each reference once per sample). Roles whose reference images differ (clip: source and
    target) count both."""
    refs = {"clip": 2, "clip-large": 1, "dino": 1, "inception": 1, "lpips": 1}
    return {role: n / (1 + refs.get(role, 1) / n_seeds) for role, n in per_pair.items()}


def load_seconds(backbones) -> dict[str, float]:
    """Time to build each backbone's module and copy its weights in (a warm load from disk)."""
    out = {}
    for role, b in backbones.items():
        module = next(getattr(b, a) for a in ("model", "taps") if hasattr(b, a))
        state = module.state_dict()
        t0 = time.perf_counter()
        clone = copy.deepcopy(module)
        clone.load_state_dict(state)
        out[role] = time.perf_counter() - t0
        del clone
    return out


def max_diff(a, b) -> dict[str, float]:
    out = {}
    for key in a:
        worst = 0.0
        for seed in a[key]:
            for sid, v in a[key][seed].items():
                w = b[key][seed][sid]
                if math.isnan(v) and math.isnan(w):
                    continue
                worst = max(worst, abs(v - w) / max(1.0, abs(w)))
        out[key] = worst
    return out


def perf_metrics(n_samples: int = 4, n_seeds: int = 5, size: int = 256, backbones: str = "standard",
                 metrics=LEARNED, with_loads: bool = True, progress: bool = True) -> dict[str, Any]:
    log = (lambda m: print(m, file=sys.stderr, flush=True)) if progress else (lambda m: None)
    seeds = list(range(n_seeds))
    log(f"perf metrics: building {backbones} backbones ...")
    bbs = build_backbones(backbones)
    samples, scored, outputs = make_items(n_samples, seeds, size)
    warm_up(bbs, samples)
    log("perf metrics: suite ...")
    recorder = _Recorder()
    t_suite, s_suite, passes = run_suite(bbs, samples, scored, outputs, seeds, metrics, recorder)
    log(f"  {t_suite:.2f}s; naive ...")
    t_naive, s_naive, uses = run_naive(bbs, samples, scored, outputs, seeds, metrics)
    log(f"  {t_naive:.2f}s; bound ...")
    t_bound = run_bound(recorder)
    log(f"  {t_bound:.2f}s")
    t_warm, s_warm, passes_warm = run_warm(bbs, samples, scored, outputs, seeds, metrics)
    log(f"  warm suite {t_warm:.2f}s")
    diffs = max_diff(s_suite, s_naive)
    diffs_warm = max_diff(s_warm, s_naive)
    result: dict[str, Any] = {
        "config": {"samples": n_samples, "seeds": n_seeds, "size": size, "backbones": backbones,
                   "metrics": list(metrics), "threads": torch.get_num_threads(),
                   "processor": processor_name("cpu"),
                   "backbone_names": {r: b.describe()["backbone"] for r, b in bbs.items()}},
        "seconds": {"suite": t_suite, "naive": t_naive, "bound": t_bound, "suite_warm": t_warm},
        "speedup_vs_naive": t_naive / t_suite,
        "speedup_vs_naive_warm": t_naive / t_warm,
        "max_rel_diff_warm_vs_naive": diffs_warm,
        "ratio_to_bound": t_suite / t_bound,
        # the most any pipeline with one pass per unique image can gain over the naive one
        "speedup_ceiling_cold": t_naive / t_bound,
        "max_rel_diff_suite_vs_naive": diffs,
        "equal_values": all(d <= 1e-5 for d in [*diffs.values(), *diffs_warm.values()]),
        "ceiling_from_sharing": sharing_ceiling(uses_per_pair(metrics), n_seeds),
        "suite_passes": dict(passes),
        "suite_warm_passes": dict(passes_warm),
        "unique_inputs": {"images": sum(len(v) for v in recorder.images.values()),
                          "texts": sum(len(v) for v in recorder.texts.values())},
    }
    if with_loads:
        loads = load_seconds(bbs)
        suite_loads = sum(loads.values())
        naive_loads = sum(loads[role] * n for role, n in uses.items())
        result["load_seconds"] = loads
        result["speedup_vs_naive_with_loads"] = (t_naive + naive_loads) / (t_suite + suite_loads)
    return result


def format_report(r: dict[str, Any]) -> str:
    s = r["seconds"]
    lines = [f"metric suite timing ({r['config']['samples']} samples x {r['config']['seeds']} seeds, "
             f"{r['config']['size']}px, {r['config']['backbones']} backbones, "
             f"{r['config']['threads']} thread(s))",
             f"{'pipeline':10s} {'seconds':>9s}",
             f"{'suite':10s} {s['suite']:9.2f}",
             f"{'naive':10s} {s['naive']:9.2f}",
             f"{'bound':10s} {s['bound']:9.2f}",
             f"{'suite_warm':10s} {s['suite_warm']:9.2f}  (dataset-side features already cached)",
             f"speedup_vs_naive {r['speedup_vs_naive']:.2f}x   ratio_to_bound {r['ratio_to_bound']:.3f}"
             f"   speedup_vs_naive_warm {r['speedup_vs_naive_warm']:.2f}x",
             f"speedup ceiling cold (naive / bound) {r['speedup_ceiling_cold']:.2f}x: no pipeline "
             "that passes each unique image once per backbone at these kernels' speed beats it",
             "sharing ceiling per role (naive passes / suite passes): "
             + ", ".join(f"{k} {v:.2f}x" for k, v in r["ceiling_from_sharing"].items()),
             ]
    if "speedup_vs_naive_with_loads" in r:
        lines.append(f"speedup_vs_naive_with_loads {r['speedup_vs_naive_with_loads']:.2f}x")
    lines.append("equal values (suite vs naive): " + ("yes" if r["equal_values"] else "NO") + "  "
                 + ", ".join(f"{k} {v:.1e}" for k, v in r["max_rel_diff_suite_vs_naive"].items()))
    return "\n".join(lines)


def cmd_perf_metrics(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    r = perf_metrics(args.samples, args.seeds, args.size, args.backbones,
                     with_loads=not args.no_loads)
    print(format_report(r))
    if args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(r, indent=2, sort_keys=True) + "\n")
        print(f"JSON: {path}")
    return 0


def add_cli(subparsers) -> None:
    """``editbench perf metrics [--samples N] [--seeds S] [--size PX] [--backbones standard|synth]
    [--threads T] [--output PATH]``; call with the top-level subparsers."""
    perf = subparsers.add_parser("perf", help="performance benchmarks")
    which = perf.add_subparsers(dest="perf_what", required=True, metavar="WHAT")
    m = which.add_parser("metrics", help="time the metric suite against a naive pipeline and the "
                         "one-pass-per-unique-image bound")
    m.add_argument("--samples", type=int, default=4)
    m.add_argument("--seeds", type=int, default=5, help="seeds (default: the protocol's five)")
    m.add_argument("--size", type=int, default=256)
    m.add_argument("--backbones", choices=["standard", "synth"], default="standard",
                   help="standard: real-size architectures with random weights (default)")
    m.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    m.add_argument("--no-loads", action="store_true", help="skip the model-loading estimate")
    m.add_argument("--output", default=None, help="also write the JSON here")
    m.set_defaults(func=cmd_perf_metrics)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    p = argparse.ArgumentParser(prog="python -m benchmark.metrics.perf")
    sub = p.add_subparsers(dest="command", required=True)
    add_cli(sub)
    a = p.parse_args(["perf", *sys.argv[1:]])
    sys.exit(a.func(a))
