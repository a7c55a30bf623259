"""``editbench sweep``: run one model over the values of one generation setting and plot the
trade-off between following the edit and keeping the input (MGIE Fig. 3; InstructPix2Pix Fig. 7).

    editbench sweep --model M --task T --param image_guidance_scale --values 1.0,1.2,...,2.2

Each value is a variant of the task with that setting changed (its own task hash, so its outputs
are stored apart and a rerun resumes); every variant is run under the protocol and scored with
the task's metrics plus the two plotted ones. Defaults follow the papers: x = ``clip_dir`` (CLIP
directional similarity: how much the edit follows the instruction), y = ``clip_img_input`` (CLIP
image similarity between output and input: how much of the input is kept). When a plotted metric
is not registered the command stops before running anything and says which metrics it needs;
``--x-metric`` / ``--y-metric`` plot any other pair.

``--values`` takes a comma-separated list; ``a,b,...,z`` expands to the arithmetic progression
``a, b, b + (b - a), ...`` up to ``z``. The sweep is written to
``<output>/<task>/<model>-<preset>-<param>.json`` (and ``.png`` when matplotlib is installed);
``editbench leaderboard render`` plots every sweep it finds under ``leaderboards/sweeps/``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

__all__ = ["parse_values", "missing_metrics", "MissingMetricsError", "run_sweep", "write_sweep",
           "add_cli", "COMMANDS", "X_METRIC", "Y_METRIC"]

COMMANDS = ("sweep",)
X_METRIC = "clip_dir"
Y_METRIC = "clip_img_input"
DEFAULT_OUTPUT = "leaderboards/sweeps"


class MissingMetricsError(LookupError):
    """A metric the sweep plots is not registered; the message lists what it needs."""

    def __str__(self) -> str:
        return str(self.args[0])


_DESCRIBE = {
    "clip_dir": "CLIP directional similarity, cos(img_out - img_src, txt_goal - txt_src)",
    "clip_img_input": "CLIP image similarity between the output and the input image",
}


def parse_values(text: str) -> list[float]:
    """``"1.0,1.2,...,2.2"`` -> [1.0, 1.2, ..., 2.2]; plain lists as given (exact decimals)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError("--values is empty")
    out: list[Decimal] = []
    i = 0
    try:
        while i < len(parts):
            if parts[i] == "...":
                if len(out) < 2 or i + 1 >= len(parts):
                    raise ValueError("'...' needs two values before it and one after it")
                step = out[-1] - out[-2]
                end = Decimal(parts[i + 1])
                if step == 0 or (end - out[-1]) * step < 0:
                    raise ValueError(f"'...' cannot step from {out[-1]} by {step} to {end}")
                nxt = out[-1] + step
                while (step > 0 and nxt < end) or (step < 0 and nxt > end):
                    out.append(nxt)
                    nxt += step
                out.append(end)
                i += 2
                continue
            out.append(Decimal(parts[i]))
            i += 1
    except InvalidOperation:
        raise ValueError(f"--values takes numbers, got {text!r}") from None
    values = [float(v) for v in out]
    if len(set(values)) != len(values):
        raise ValueError(f"--values repeats a value: {text!r}")
    if len(values) > 100:
        raise ValueError(f"--values expands to {len(values)} values; at most 100")
    return values


def missing_metrics(*keys: str) -> list[str]:
    from benchmark.registry import METRICS

    return [k for k in keys if k not in METRICS]


def _needs_message(missing: Sequence[str], x: str, y: str) -> str:
    from benchmark.registry import METRICS

    need = "; ".join(f"{k} ({_DESCRIBE.get(k, 'metric')})" for k in (x, y))
    return (f"sweep needs the metrics {need}; not registered here: {', '.join(missing)} "
            f"(registered: {', '.join(METRICS.names())}). Install or register them, or plot another "
            "pair with --x-metric/--y-metric")


def _variant(task, param: str, value: float, extra_metrics: Sequence[str]):
    from benchmark.tasks import TaskSpec

    data = task.to_dict()
    current = task.settings.get(param)
    v: Any = int(value) if isinstance(current, int) and not isinstance(current, bool) and float(value).is_integer() else value
    data["settings"] = {**task.settings, param: v}
    data["metrics"] = list(task.metrics) + [m for m in extra_metrics if m not in task.metrics]
    return TaskSpec.from_dict(data, task.source), v


def run_sweep(model_name: str, task_name: str, param: str, values: Sequence[float], *,
              preset: str | None = None, device: str = "cpu", seeds: Sequence[int] | None = None,
              limit: int | None = None, batch_size: int = 8, cache_dir: str | None = None,
              x_metric: str = X_METRIC, y_metric: str = Y_METRIC, progress: bool = True,
              data_dir: str | None = None, log=None) -> dict[str, Any]:
    """Run the sweep and return its document (``kind: editbench-sweep``)."""
    from benchmark.leaderboard import _now, backbone_label, backbone_set
    from benchmark.registry import MODELS
    from benchmark.runner import run_task
    from benchmark.store import DEFAULT_CACHE_DIR
    from benchmark.tasks import get_task

    log = log or sys.stderr
    task = get_task(task_name)
    if task.is_group:
        raise ValueError(f"sweep takes one task, {task_name!r} is a group")
    if param not in task.settings:
        raise ValueError(f"task {task_name!r} has no setting {param!r} "
                         f"(settings: {', '.join(sorted(task.settings))})")
    missing = missing_metrics(x_metric, y_metric)
    if missing:
        raise MissingMetricsError(_needs_message(missing, x_metric, y_metric))
    model = MODELS.get(model_name)(preset=preset, device=device)
    points = []
    labels = set()
    for value in values:
        variant, v = _variant(task, param, value, [x_metric, y_metric])
        res = run_task(model, variant, seeds=seeds, limit=limit, batch_size=batch_size,
                       device=device, cache_dir=cache_dir or DEFAULT_CACHE_DIR, progress=progress,
                       data_dir=data_dir)
        mx, my = res["metrics"].get(x_metric, {}), res["metrics"].get(y_metric, {})
        labels.add(backbone_label(backbone_set(res)))
        points.append({
            "value": v, "x": mx.get("mean"), "x_std": mx.get("std"), "y": my.get("mean"),
            "y_std": my.get("std"), "task_hash": variant.hash, "n_samples": res["protocol"]["n_samples"],
            "failures": len(res["failures"]),
            "metrics": {k: {"mean": m["mean"], "std": m["std"]} for k, m in res["metrics"].items()},
            "seconds_per_edit": res["timing"].get("seconds_per_edit"),
        })
        print(f"{param}={v}: {x_metric}={_f(mx.get('mean'))} {y_metric}={_f(my.get('mean'))} "
              f"({res['protocol']['n_samples']} samples, {len(res['failures'])} failures)", file=log)
    return {
        "kind": "editbench-sweep", "format": 1, "date": _now(),
        "model": model.name, "preset": model.preset, "config_hash": model.config_hash,
        "weights_sha256": model.weights_sha256,
        "task": task.name, "task_version": task.version, "task_hash": task.hash,
        "param": param, "values": [p["value"] for p in points],
        "x_metric": x_metric, "y_metric": y_metric,
        "backbone_label": " | ".join(sorted(labels)),
        "seeds": list(seeds) if seeds is not None else list(task.seeds), "limit": limit,
        "points": points,
    }


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def write_sweep(doc: dict[str, Any], output: str | Path = DEFAULT_OUTPUT) -> tuple[Path, Path | None]:
    """Write the sweep JSON and, when matplotlib is installed, its plot next to it."""
    from benchmark.files import atomic_write_json
    from benchmark.leaderboard import _matplotlib, plot_tradeoff
    from benchmark.store import safe_name

    stem = safe_name(f"{doc['model']}-{doc['preset']}-{doc['param']}")
    path = Path(output) / safe_name(doc["task"]) / f"{stem}.json"
    atomic_write_json(path, doc)
    plt = _matplotlib()
    if plt is None:
        return path, None
    png = path.with_suffix(".png")
    plot_tradeoff(plt, [doc], png, f"{doc['task']}: {doc['param']} sweep, {doc['model']}")
    return path, png


def format_sweep(doc: dict[str, Any]) -> str:
    rows = [(doc["param"], doc["x_metric"], doc["y_metric"], "samples", "failures")]
    for p in doc["points"]:
        rows.append((f"{p['value']:g}", _f(p["x"]), _f(p["y"]), str(p["n_samples"]), str(p["failures"])))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_sweep(args) -> int:
    from benchmark.cli import UsageError, _seeds

    try:
        values = parse_values(args.values)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        doc = run_sweep(args.model, args.task, args.param, values, preset=args.preset,
                        device=args.device, seeds=_seeds(args.seeds), limit=args.limit,
                        batch_size=args.batch_size, cache_dir=args.cache_dir,
                        x_metric=args.x_metric, y_metric=args.y_metric,
                        progress=not args.no_progress, data_dir=args.data_dir)
    except MissingMetricsError as exc:
        raise UsageError(str(exc)) from None
    path, png = write_sweep(doc, args.output)
    print(format_sweep(doc))
    print(f"sweep JSON: {path}")
    if png is not None:
        print(f"plot: {png}")
    else:
        print("plot skipped: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
    return 0


def add_cli(sub) -> None:
    from benchmark.store import DEFAULT_CACHE_DIR

    s = sub.add_parser("sweep", help="run a model over values of one setting; plot the edit / "
                       "input-consistency trade-off")
    s.add_argument("--model", required=True)
    s.add_argument("--task", required=True)
    s.add_argument("--param", required=True, help="a generation setting of the task, e.g. "
                   "image_guidance_scale")
    s.add_argument("--values", required=True, help="comma-separated; a,b,...,z expands to a "
                   "progression (e.g. 1.0,1.2,...,2.2)")
    s.add_argument("--preset", default=None)
    s.add_argument("--seeds", default=None, help="comma-separated seeds (default: the task's)")
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--device", default="cpu")
    s.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR)
    s.add_argument("--data-dir", default=None)
    s.add_argument("--x-metric", default=X_METRIC, help=f"x axis (default {X_METRIC})")
    s.add_argument("--y-metric", default=Y_METRIC, help=f"y axis (default {Y_METRIC})")
    s.add_argument("--output", default=DEFAULT_OUTPUT, help=f"folder (default {DEFAULT_OUTPUT}/)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_sweep)
