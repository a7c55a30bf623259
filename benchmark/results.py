"""The result schema (versioned) and aggregation.

Aggregation, the same for every metric and every category:
1. per seed: the mean over the samples that were scored (NaN = not applicable, and failed
   edits, are left out; failures are listed in ``failures`` so a reader can see the coverage);
2. over seeds: ``mean`` and ``std`` (sample standard deviation, ddof = 1) of the per-seed means;
3. ``ci95``: ``[mean - h, mean + h]`` with ``h = t_{0.975, n-1} * std / sqrt(n)`` over the n
   per-seed means (Student t). With one seed, ``std`` and ``ci95`` are null: one seed says nothing
   about the spread.

The interval covers seed-to-seed variation of the model's sampling on this fixed test set; it
does not cover sampling of the test set itself.
"""

from __future__ import annotations

import math
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.files import atomic_write_json

SCHEMA_VERSION = 1
TOP_LEVEL_KEYS = ("schema_version", "task", "model", "protocol", "metrics", "timing", "env",
                  "failures", "cache", "by_category")

__all__ = ["SCHEMA_VERSION", "summarise", "aggregate", "environment", "write_result",
           "validate_result", "TOP_LEVEL_KEYS"]


def _clean(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def summarise(per_seed: Sequence[float]) -> dict[str, Any]:
    """mean, std (ddof=1) and Student-t 95% CI of per-seed means (NaN seeds dropped)."""
    vals = np.asarray([v for v in per_seed if v is not None and not math.isnan(v)], dtype=np.float64)
    n = len(vals)
    if n == 0:
        return {"mean": None, "std": None, "ci95": None, "n_seeds": 0}
    mean = float(vals.mean())
    if n < 2:
        return {"mean": mean, "std": None, "ci95": None, "n_seeds": 1}
    std = float(vals.std(ddof=1))
    from scipy import stats

    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci95": [mean - half, mean + half], "n_seeds": n}


def _seed_mean(values: Mapping[str, float], ids: Sequence[str] | None = None) -> float:
    keys = values.keys() if ids is None else [i for i in ids if i in values]
    vals = [values[k] for k in keys if values[k] is not None and not math.isnan(values[k])]
    return float(np.mean(np.asarray(vals, dtype=np.float64))) if vals else math.nan


def aggregate(
    scores: Mapping[str, Mapping[int, Mapping[str, float]]],
    seeds: Sequence[int],
    metric_info: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(metrics block, by_category block) from ``scores[metric][seed][sample_id]``.

    ``groups`` maps a category name to its sample ids (a sample may be in several groups).
    """
    metrics: dict[str, Any] = {}
    by_category: dict[str, Any] = {name: {} for name in sorted(groups)}
    for key, per_seed_scores in scores.items():
        per_seed = [_seed_mean(per_seed_scores.get(s, {})) for s in seeds]
        n_scored = [sum(1 for v in per_seed_scores.get(s, {}).values()
                        if v is not None and not math.isnan(v)) for s in seeds]
        summary = summarise(per_seed)
        info = metric_info[key]
        metrics[key] = {
            "mean": _clean(summary["mean"]),
            "std": _clean(summary["std"]),
            "ci95": [_clean(v) for v in summary["ci95"]] if summary["ci95"] else None,
            "per_seed": [_clean(v) for v in per_seed],
            "n_scored": n_scored,
            "higher_is_better": bool(info["higher_is_better"]),
            "backbone": info.get("backbone"),
            "backbone_sha256": info.get("backbone_sha256"),
        }
        if info.get("set_level"):
            continue  # one number per seed over the whole set: no per-category value
        for name, ids in groups.items():
            cat = summarise([_seed_mean(per_seed_scores.get(s, {}), ids) for s in seeds])
            if cat["mean"] is None:
                continue
            by_category[name][key] = {
                "mean": _clean(cat["mean"]),
                "std": _clean(cat["std"]),
                "ci95": [_clean(v) for v in cat["ci95"]] if cat["ci95"] else None,
            }
    return metrics, {name: block for name, block in by_category.items() if block}


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5)
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    import PIL
    import torch

    from benchmark import __version__

    return {
        "package_version": __version__,
        "git_commit": _git_commit(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def processor_name(device: str | None) -> str | None:
    """The model name of what ran the edits: the GPU's for a CUDA device, else the CPU's (from
    /proc/cpuinfo on Linux, where ``platform.processor()`` says only "x86_64")."""
    import torch

    if device and str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or None


def device_info(device: str | None) -> dict[str, Any]:
    """``processor`` and CPU ``threads`` for a result's timing block: seconds per edit mean little
    without them (the same tiny model edits 1.6x slower on one 2-core CPU than on another)."""
    import torch

    return {"processor": processor_name(device), "threads": torch.get_num_threads()}


def device_label(timing: Mapping[str, Any]) -> str | None:
    """``cpu (AMD EPYC, 2 threads)``-style text for tables; older results show just the device, and
    results without one (model-free scoring) None, which each table renders its own way."""
    device = timing.get("device")
    if device is None:
        return None
    extra = [x for x in (timing.get("processor"),
                         f"{timing['threads']} threads" if timing.get("threads") else None) if x]
    return f"{device} ({', '.join(extra)})" if extra else str(device)


def validate_result(result: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first thing wrong with a result's shape."""
    missing = [k for k in TOP_LEVEL_KEYS if k not in result]
    if missing:
        raise ValueError(f"result lacks {', '.join(missing)}")
    if result["schema_version"] != SCHEMA_VERSION:
        raise ValueError(f"schema_version {result['schema_version']} != {SCHEMA_VERSION}")
    for block, keys in (("task", ("name", "version", "hash")),
                        ("model", ("name", "preset", "config_hash", "weights_sha256")),
                        ("protocol", ("seeds", "n_samples", "settings")),
                        ("timing", ("seconds_per_edit", "edits_per_second", "peak_memory_mb",
                                    "device")),
                        ("env", ("package_version", "git_commit", "torch", "python", "platform")),
                        ("cache", ("reused", "computed"))):
        lacking = [k for k in keys if k not in result[block]]
        if lacking:
            raise ValueError(f"result.{block} lacks {', '.join(lacking)}")
    for key, m in result["metrics"].items():
        lacking = [k for k in ("mean", "std", "ci95", "per_seed", "higher_is_better", "backbone",
                               "backbone_sha256") if k not in m]
        if lacking:
            raise ValueError(f"result.metrics.{key} lacks {', '.join(lacking)}")


def write_result(path: str | Path, result: Mapping[str, Any]) -> Path:
    validate_result(result)
    path = Path(path)
    atomic_write_json(path, result)
    return path
