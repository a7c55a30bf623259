"""The protocol: load a task's samples, edit them under every seed in batches, store each output,
score, aggregate, and return one result (see ``benchmark.results`` for the schema).

Reads top to bottom as the protocol it implements:

1. ``load_samples``: the task's dataset, cut to ``limit`` dataset items (sessions, for multi-turn
   data); an item that fails to load becomes a failure for every seed.
2. ``edit_all``: for each seed, the edits missing from the output store are made in batches of
   ``batch_size`` (a batch that raises is retried one request at a time, so one bad sample fails
   alone); each output is validated and stored atomically before the next batch. Under the
   final-turn protocol, turn t's source is the model's own stored output for turn t-1.
3. ``score_all``: every metric of the task on every stored output of a scored sample.
4. ``assemble``: per-seed means, mean/std/CI over seeds, per-category breakdown, timing, env.

Timing: seconds per edit = wall time of ``model.edit`` on a batch / batch length, recorded with
each stored output (model loading is never timed); the result reports the mean over all outputs
used, so a resumed run reports the timing of the runs that made its outputs.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from benchmark.api import EditModel, EditRequest, EditSample, FailedSample
from benchmark.files import ImageError, to_rgb_image
from benchmark.metrics.base import Metric, MetricInput
from benchmark.registry import DATASETS, METRICS
from benchmark.results import SCHEMA_VERSION, aggregate, device_info, environment
from benchmark.store import DEFAULT_CACHE_DIR, OutputStore
from benchmark.tasks import TaskSpec

__all__ = ["load_samples", "scored_samples", "run_task", "score_task", "Failure", "one_line"]


def one_line(exc: BaseException | str) -> str:
    """A one-line reason: exception type and the first line of its message."""
    if isinstance(exc, str):
        text = exc
    else:
        msg = str(exc).strip().splitlines()
        text = f"{type(exc).__name__}: {msg[0]}" if msg else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@dataclass
class Failure:
    sample_id: str
    seed: int | None
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"sample_id": self.sample_id, "seed": self.seed, "error": self.error}


# --------------------------------------------------------------------------- 1. samples
def load_samples(task: TaskSpec, limit: int | None = None,
                 data_dir: str | None = None) -> list[EditSample | FailedSample]:
    """The task's dataset items. ``data_dir`` (where the user unpacked a real benchmark) is
    passed to the loader only when given, so loaders of embedded data need not accept it."""
    spec = dict(task.dataset)
    name = spec.pop("name")
    loader = DATASETS.get(name)
    if data_dir is not None:
        spec["data_dir"] = data_dir
    items = list(loader(**spec, limit=limit))
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"dataset {name!r} yields duplicate sample ids")
    return items


def scored_samples(task: TaskSpec, items: Sequence[EditSample | FailedSample]) -> list[str]:
    """Ids of the samples a task scores: all of them, or each session's last turn (final-turn)."""
    if task.turn_protocol != "final-turn":
        return [it.id for it in items]
    last: dict[str, EditSample | FailedSample] = {}
    for it in items:
        key = it.session_id or it.id
        if key not in last or it.turn >= last[key].turn:
            last[key] = it
    return [it.id for it in items if last[it.session_id or it.id] is it]


def validate_sample(sample: EditSample) -> str | None:
    """A one-line reason the sample cannot be edited or scored, or None."""
    if not isinstance(sample.instruction, str) or not sample.instruction.strip():
        return "empty instruction"
    if sample.source.mode != "RGB":
        return f"source image has mode {sample.source.mode}, expected RGB"
    for role in ("target", "mask"):
        other = getattr(sample, role)
        if other is not None and other.size != sample.source.size:
            return (f"{role} size {other.size[0]}x{other.size[1]} does not match source size "
                    f"{sample.source.size[0]}x{sample.source.size[1]}")
    return None


def _groups(items: Sequence[EditSample | FailedSample], scored: Sequence[str],
            multi_turn: bool) -> dict[str, list[str]]:
    scored_set = set(scored)
    groups: dict[str, list[str]] = defaultdict(list)
    for it in items:
        if it.id not in scored_set:
            continue
        groups[it.category].append(it.id)
        if multi_turn:
            groups[f"turn-{it.turn}"].append(it.id)
    return dict(groups)


# --------------------------------------------------------------------------- 2. edits
@dataclass
class _EditLog:
    failures: list[Failure] = field(default_factory=list)
    reused: int = 0
    computed: int = 0


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="edit", disable=not enabled, file=sys.stderr,
                dynamic_ncols=True, leave=False)


def _edit_batch(model: EditModel, requests: list[EditRequest], store: OutputStore,
                log: _EditLog) -> None:
    """Edit one batch and store what succeeds; a raising batch is retried request by request."""
    t0 = time.perf_counter()
    try:
        results = model.edit(requests)
        if len(results) != len(requests):
            raise RuntimeError(f"model returned {len(results)} results for {len(requests)} requests")
    except Exception as exc:  # noqa: BLE001 - a model's failure is data, not a crash
        if len(requests) > 1:
            for req in requests:
                _edit_batch(model, [req], store, log)
            return
        log.failures.append(Failure(requests[0].sample.id, requests[0].seed, one_line(exc)))
        log.computed += 1
        return
    seconds = (time.perf_counter() - t0) / len(requests)
    for req, res in zip(requests, results):
        log.computed += 1
        try:
            image = to_rgb_image(res.image)
        except ImageError as exc:
            log.failures.append(Failure(req.sample.id, req.seed, f"model output: {exc}"))
            continue
        except Exception as exc:  # noqa: BLE001
            log.failures.append(Failure(req.sample.id, req.seed, f"model output: {one_line(exc)}"))
            continue
        store.put(req.seed, req.sample.id, image, expressive=res.expressive, seconds=seconds,
                  extra=dict(res.extra or {}))


def _rounds(task: TaskSpec, samples: Sequence[EditSample]) -> list[list[EditSample]]:
    """Samples in the order they must be edited: one round, or one round per turn (final-turn)."""
    if task.turn_protocol != "final-turn":
        return [list(samples)]
    by_turn: dict[int, list[EditSample]] = defaultdict(list)
    for s in samples:
        by_turn[s.turn].append(s)
    return [by_turn[t] for t in sorted(by_turn)]


def edit_all(model: EditModel, task: TaskSpec, items: Sequence[EditSample | FailedSample],
             seeds: Sequence[int], store: OutputStore, batch_size: int,
             progress: bool = True) -> _EditLog:
    log = _EditLog()
    valid: list[EditSample] = []
    bad: dict[str, str] = {}
    for it in items:
        reason = it.error if isinstance(it, FailedSample) else validate_sample(it)
        if reason:
            bad[it.id] = reason
        else:
            valid.append(it)
    # Under final-turn, a session whose earlier turn failed to load cannot continue.
    prev_turn_id: dict[str, str] = {}
    if task.turn_protocol == "final-turn":
        by_session: dict[str, list[EditSample | FailedSample]] = defaultdict(list)
        for it in items:
            by_session[it.session_id or it.id].append(it)
        for turns in by_session.values():
            turns.sort(key=lambda x: x.turn)
            for prev, cur in zip(turns, turns[1:]):
                prev_turn_id[cur.id] = prev.id
    bar = _progress(len(items) * len(seeds), progress, f"{model.name} on {task.name}")
    try:
        for seed in seeds:
            for sid, reason in bad.items():
                log.failures.append(Failure(sid, seed, reason))
                bar.update(1)
            for round_samples in _rounds(task, valid):
                pending: list[EditRequest] = []
                for sample in round_samples:
                    if store.has(seed, sample.id):
                        log.reused += 1
                        bar.update(1)
                        continue
                    if sample.id in prev_turn_id:
                        previous = store.get(seed, prev_turn_id[sample.id])
                        if previous is None:
                            log.failures.append(Failure(sample.id, seed,
                                                        "previous turn has no output"))
                            bar.update(1)
                            continue
                        sample = sample.replace(source=previous.image)
                    pending.append(EditRequest(sample=sample, seed=seed, settings=task.settings))
                for i in range(0, len(pending), batch_size):
                    batch = pending[i:i + batch_size]
                    _edit_batch(model, batch, store, log)
                    bar.update(len(batch))
    finally:
        bar.close()
    return log


# --------------------------------------------------------------------------- 3. scoring
def build_metrics(task: TaskSpec, *, backbones: str = "auto", weights_dir: str | None = None,
                  device: str = "cpu", cache_dir: str | None = None,
                  context: Any = None) -> dict[str, Metric]:
    """The task's metrics, bound to one shared context: the backbone choice (``auto``,
    ``standard``, ``synth``), the weights folder, and one feature cache (persisted under
    ``<cache_dir>/features``). Binding resolves every backbone now, so missing standard weights
    fail with one clear error before any edit is made."""
    from pathlib import Path

    from benchmark.metrics.features import FeatureCache, MetricContext

    if context is None:
        context = MetricContext(backbones=backbones, weights_dir=weights_dir, device=device,
                                features=FeatureCache(Path(cache_dir) / "features" if cache_dir else None))
    metrics = {key: METRICS.get(key)() for key in task.metrics}
    for metric in metrics.values():
        bind = getattr(metric, "bind", None)
        if bind is not None:
            bind(context)
    return metrics


def _feature_stats(metrics: dict[str, Metric]) -> dict[str, int] | None:
    for metric in metrics.values():
        context = getattr(metric, "context", None)
        if context is not None and hasattr(context, "features"):
            return context.features.summary()
    return None


def score_all(metrics: dict[str, Metric], samples: dict[str, EditSample], scored: Sequence[str],
              seeds: Sequence[int], fetch: Callable[[int, str], tuple[Image.Image, str | None] | None],
              failures: list[Failure]) -> dict[str, dict[int, dict[str, float]]]:
    """``scores[metric][seed][sample_id]``; samples with no output are left out (already failed).

    Each metric sees all of a seed's outputs in one call, so learned metrics can batch; if that
    call raises, the seed is rescored one sample at a time and only the raising samples fail (a
    set-level metric is then scored once more on the samples that did not raise).
    """
    scores: dict[str, dict[int, dict[str, float]]] = {k: {s: {} for s in seeds} for k in metrics}
    for seed in seeds:
        items: list[MetricInput] = []
        for sid in scored:
            sample = samples.get(sid)
            if sample is None:
                continue
            got = fetch(seed, sid)
            if got is not None:
                items.append(MetricInput(output=got[0], sample=sample, expressive=got[1]))
        for key, metric in metrics.items():
            try:
                values = metric.score(items)
            except Exception:  # noqa: BLE001 - find the sample(s) at fault
                values = []
                good: list[int] = []
                for i, item in enumerate(items):
                    try:
                        values.append(metric.score([item])[0])
                        good.append(i)
                    except Exception as exc:  # noqa: BLE001 - one sample must not end the run
                        failures.append(Failure(item.sample.id, seed, f"metric {key}: {one_line(exc)}"))
                        values.append(math.nan)
                if getattr(metric, "set_level", False) and good:
                    # a set-level value (FID) is one number over the set: rescore the good samples
                    try:
                        for i, v in zip(good, metric.score([items[i] for i in good])):
                            values[i] = v
                    except Exception as exc:  # noqa: BLE001
                        for i in good:
                            failures.append(Failure(items[i].sample.id, seed,
                                                    f"metric {key}: {one_line(exc)}"))
                            values[i] = math.nan
            for item, value in zip(items, values):
                scores[key][seed][item.sample.id] = float(value)
    return scores


# --------------------------------------------------------------------------- 4. result
def _peak_memory_mb(device: str) -> float:
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    # ru_maxrss is KiB on Linux (bytes on macOS).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def assemble(task: TaskSpec, model_block: dict[str, Any], seeds: Sequence[int],
             items: Sequence[EditSample | FailedSample], scored: Sequence[str],
             scores: dict[str, dict[int, dict[str, float]]], metrics: dict[str, Metric],
             failures: list[Failure], timing: dict[str, Any], cache: dict[str, int],
             limit: int | None, outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    info = {k: m.describe() for k, m in metrics.items()}
    metric_block, by_category = aggregate(scores, seeds, info,
                                          _groups(items, scored, task.turn_protocol != "single"))
    failures = sorted({(f.seed if f.seed is not None else -1, f.sample_id, f.error): f
                       for f in failures}.values(),
                      key=lambda f: (f.seed if f.seed is not None else -1, f.sample_id, f.error))
    return {
        "schema_version": SCHEMA_VERSION,
        "task": {"name": task.name, "version": task.version, "hash": task.hash,
                 "store_hash": task.store_hash, "turn_protocol": task.turn_protocol,
                 "dataset": dict(task.dataset), "headline": list(task.headline)},
        "model": model_block,
        "protocol": {"seeds": list(seeds), "n_samples": len(scored), "n_edited": len(items),
                     "settings": dict(task.settings), "turn_protocol": task.turn_protocol,
                     "limit": limit},
        "metrics": metric_block,
        "timing": timing,
        "env": environment(),
        "failures": [f.to_dict() for f in failures],
        "cache": cache,
        "by_category": by_category,
        **({"outputs": outputs} if outputs else {}),
    }


def run_task(model: EditModel, task: TaskSpec, *, seeds: Sequence[int] | None = None,
             limit: int | None = None, batch_size: int = 8, device: str = "cpu",
             cache_dir: str = DEFAULT_CACHE_DIR, progress: bool = True,
             data_dir: str | None = None, backbones: str = "auto",
             weights_dir: str | None = None) -> dict[str, Any]:
    """Run ``model`` on ``task`` under the protocol and return the result dict.

    ``backbones`` / ``weights_dir``: which metric backbones to use (see
    ``benchmark.metrics.backbones``); resolved before any edit is made."""
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    metrics = build_metrics(task, backbones=backbones, weights_dir=weights_dir, device=device,
                            cache_dir=cache_dir)
    seeds = list(task.seeds if seeds is None else seeds)
    items = load_samples(task, limit, data_dir)
    scored = scored_samples(task, items)
    store = OutputStore(cache_dir, task.name, task.store_hash, model.name, model.preset,
                        model.config_hash, model.weights_sha256)
    log = edit_all(model, task, items, seeds, store, batch_size, progress)

    samples = {it.id: it for it in items if isinstance(it, EditSample)}
    seconds: list[float] = []
    expressive: dict[str, dict[str, str]] = defaultdict(dict)
    notes: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)

    def fetch(seed: int, sid: str):
        got = store.get(seed, sid)
        if got is None:
            return None
        if got.seconds is not None:
            seconds.append(got.seconds)
        if got.expressive is not None:
            expressive[str(seed)][sid] = got.expressive
        extra = {**(got.extra or {}), **_resize_note(got.image, samples.get(sid))}
        if extra:
            notes[str(seed)][sid] = extra
        return got.image, got.expressive

    failures = list(log.failures)
    scores = score_all(metrics, samples, scored, seeds, fetch, failures)
    mean_s = sum(seconds) / len(seconds) if seconds else None
    timing = {
        "seconds_per_edit": mean_s,
        "edits_per_second": (1.0 / mean_s) if mean_s else None,
        "peak_memory_mb": _peak_memory_mb(device),
        "device": device,
        **device_info(device),
        "batch_size": batch_size,
        "n_timed_edits": len(seconds),
    }
    model_block = {"name": model.name, "preset": model.preset, "config_hash": model.config_hash,
                   "weights_sha256": model.weights_sha256}
    if getattr(model, "variant", None):  # absent in the default mode: old results keep their shape
        model_block["variant"] = model.variant
    cache = {"reused": log.reused, "computed": log.computed}
    features = _feature_stats(metrics)
    if features is not None:
        cache["features"] = features
    return assemble(task, model_block, seeds, items, scored, scores, metrics, failures, timing,
                    cache, limit, outputs=_outputs_block(expressive, notes))


def _resize_note(image: Image.Image, sample: EditSample | None) -> dict[str, str]:
    """``{"resized_to_target": "WxH->WxH"}`` when the metrics will resize this output to the
    target's size (MagicBrush's convention, ``benchmark.metrics.base.aligned_pair``), else {}: the
    resize changes what is scored, so a result says how many outputs it touched."""
    if sample is None or sample.target is None or image.size == sample.target.size:
        return {}
    (w, h), (tw, th) = image.size, sample.target.size
    return {"resized_to_target": f"{w}x{h}->{tw}x{th}"}


def _outputs_block(expressive: dict[str, dict[str, str]],
                   notes: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """The optional ``outputs`` block of a result: the expressive instruction of every scored
    edit (``{seed: {sample id: text}}``; the CLIP-S metrics read these), the per-edit notes a
    model attached (truncation warnings, conditioning fallbacks) and how often each note occurred
    (``"key=value": count``, so a run's fallback rate reads at a glance)."""
    if not expressive and not notes:
        return None
    counts: Counter = Counter()
    for per_seed in notes.values():
        for extra in per_seed.values():
            for key, value in extra.items():
                counts[f"{key}={value}" if isinstance(value, (bool, int, str)) and key != "warning"
                       else key] += 1
    block: dict[str, Any] = {}
    if expressive:
        block["expressive"] = {seed: dict(sorted(v.items())) for seed, v in sorted(expressive.items())}
    if notes:
        block["notes"] = {seed: dict(sorted(v.items())) for seed, v in sorted(notes.items())}
        block["note_counts"] = dict(sorted(counts.items()))
    return block


# --------------------------------------------------------------------------- model-free mode
def find_output_layout(outputs_dir, seeds: Sequence[int] | None) -> dict[int, Any]:
    """``{seed: folder}``: ``DIR/<seed>/<id>.png`` when numbered folders exist, else ``DIR`` as
    seed 0 (or the single seed given)."""
    from pathlib import Path

    root = Path(outputs_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"outputs folder not found: {root}")
    numbered = {int(p.name): p for p in root.iterdir() if p.is_dir() and p.name.isdigit()}
    if numbered:
        wanted = sorted(numbered) if seeds is None else list(seeds)
        return {s: numbered.get(s, root / str(s)) for s in wanted}
    only = 0 if seeds is None else list(seeds)[0]
    if seeds is not None and len(list(seeds)) > 1:
        raise ValueError(f"{root} holds one seed's outputs (no numbered folders) but "
                         f"{len(list(seeds))} seeds were asked for")
    return {only: root}


def score_task(task: TaskSpec, outputs_dir, *, seeds: Sequence[int] | None = None,
               limit: int | None = None, name: str | None = None,
               data_dir: str | None = None, backbones: str = "auto",
               weights_dir: str | None = None, cache_dir: str | None = None) -> dict[str, Any]:
    """Score pre-made edits (``DIR/<seed>/<sample_id>.png`` or ``DIR/<sample_id>.png``)."""
    from pathlib import Path

    from benchmark.api import stable_hash
    from benchmark.files import read_image, sha256_file
    from benchmark.store import safe_name

    layout = find_output_layout(outputs_dir, seeds)
    seeds = sorted(layout)
    items = load_samples(task, limit, data_dir)
    scored = scored_samples(task, items)
    samples: dict[str, EditSample] = {}
    failures: list[Failure] = []
    for it in items:
        if it.id not in set(scored):
            continue
        reason = it.error if isinstance(it, FailedSample) else validate_sample(it)
        if reason:
            failures.extend(Failure(it.id, s, reason) for s in seeds)
        else:
            samples[it.id] = it
    digests: list[tuple[str, str]] = []
    notes: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    read = 0

    def fetch(seed: int, sid: str):
        nonlocal read
        path = Path(layout[seed]) / f"{safe_name(sid)}.png"
        try:
            image = read_image(path, "output")
        except ImageError as exc:
            failures.append(Failure(sid, seed, str(exc)))
            return None
        read += 1
        digests.append((f"{seed}/{path.name}", sha256_file(path)))
        note = _resize_note(image, samples.get(sid))
        if note:
            notes[str(seed)][sid] = note
        return image, None

    metrics = build_metrics(task, backbones=backbones, weights_dir=weights_dir, cache_dir=cache_dir)
    scores = score_all(metrics, samples, scored, seeds, fetch, failures)
    model_block = {"name": name or f"outputs:{Path(outputs_dir).resolve().name}", "preset": None,
                   "config_hash": stable_hash(sorted(digests)), "weights_sha256": None}
    timing = {"seconds_per_edit": None, "edits_per_second": None,
              "peak_memory_mb": _peak_memory_mb("cpu"), "device": None, "batch_size": None,
              "n_timed_edits": 0}
    return assemble(task, model_block, seeds, items, scored, scores, metrics, failures, timing,
                    {"reused": read, "computed": 0}, limit, outputs=_outputs_block({}, notes))
