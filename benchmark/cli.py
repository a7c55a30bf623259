"""``editbench`` command line (also ``python -m benchmark``).

    editbench run --model M --task T [--preset P] [--seeds 0,1,2,3,4] [--limit N]
                  [--batch-size B] [--device cpu|cuda] [--output PATH] [--cache-dir DIR]
    editbench list {models,tasks,metrics,backbones,datasets}
    editbench export --task T [--limit N] DIR
    editbench score --task T --outputs DIR [--seeds ...] [--limit N] [--output PATH]

Errors a user can fix (unknown names, missing folders, bad arguments) print one line to stderr
and exit 2; per-sample problems never stop a run, they are listed in the result's ``failures``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from benchmark.store import DEFAULT_CACHE_DIR

RESULTS_DIR = "results"


class UsageError(Exception):
    """A problem with what the user asked for; printed as one line."""


def _seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UsageError(f"--seeds takes comma-separated integers, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds must list distinct integers, got {text!r}")
    return seeds


def _fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def format_table(results: list[dict[str, Any]]) -> str:
    """A plain-text table: one row per task and metric, mean ± std over seeds, 95% CI."""
    rows = [("task", "metric", "mean ± std", "95% CI", "n", "")]
    for res in results:
        headline = res["task"].get("headline", [])
        keys = sorted(res["metrics"], key=lambda k: (k not in headline, headline.index(k)
                                                     if k in headline else 0))
        for key in keys:
            m = res["metrics"][key]
            ci = m["ci95"]
            rows.append((res["task"]["name"], key,
                         f"{_fmt(m['mean'])} ± {_fmt(m['std'])}",
                         f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "-",
                         str(len([v for v in m["per_seed"] if v is not None])),
                         "↑" if m["higher_is_better"] else "↓"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _summary_line(res: dict[str, Any]) -> str:
    t = res["timing"]
    sec = t.get("seconds_per_edit")
    speed = f"{sec:.3g} s/edit" if sec is not None else "no timing"
    resized = sum(n for k, n in res.get("outputs", {}).get("note_counts", {}).items()
                  if k.startswith("resized_to_target"))
    return (f"{res['task']['name']}: {res['protocol']['n_samples']} samples x "
            f"{len(res['protocol']['seeds'])} seeds, {len(res['failures'])} failures, "
            + (f"{resized} output{'s' * (resized != 1)} resized to the target size, " if resized else "")
            + f"cache reused {res['cache']['reused']} / computed {res['cache']['computed']}, {speed}")


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark.registry import MODELS
    from benchmark.results import write_result
    from benchmark.runner import run_task
    from benchmark.tasks import expand_tasks, get_task

    seeds = _seeds(args.seeds)
    group = get_task(args.task).is_group
    tasks = expand_tasks(args.task)
    factory = MODELS.get(args.model)
    inference = {k: v for k, v in (("dtype", args.dtype), ("compile", args.compile)) if v}
    model = factory(preset=args.preset, device=args.device, weights_dir=args.weights_dir, **inference)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but torch sees no CUDA device")
        torch.cuda.reset_peak_memory_stats()
    results, paths = [], []
    for task in tasks:
        res = run_task(model, task, seeds=seeds, limit=args.limit, batch_size=args.batch_size,
                       device=args.device, cache_dir=args.cache_dir, progress=not args.no_progress,
                       data_dir=args.data_dir, backbones=args.backbones,
                       weights_dir=args.weights_dir)
        if args.output and not group and not Path(args.output).is_dir():
            path = Path(args.output)
        else:
            # a variant (e.g. bfloat16 inference) gets its own folder, never overwriting the default's
            variant = getattr(model, "variant", None)
            folder = f"{model.name}-{model.preset}" + (f"-{variant}" if variant else "")
            base = Path(args.output) if args.output else Path(RESULTS_DIR) / folder
            path = base / f"{task.name}.json"
        write_result(path, res)
        results.append(res)
        paths.append(path)
        print(_summary_line(res), file=sys.stderr)
    print(format_table(results))
    for p in paths:
        print(f"result JSON: {p}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from benchmark.results import write_result
    from benchmark.runner import score_task
    from benchmark.tasks import get_task

    task = get_task(args.task)
    if task.is_group:
        raise UsageError(f"score takes one task, {args.task!r} is a group")
    if not Path(args.outputs).is_dir():
        raise UsageError(f"outputs folder not found: {args.outputs}")
    res = score_task(task, args.outputs, seeds=_seeds(args.seeds), limit=args.limit, name=args.name,
                     data_dir=args.data_dir, backbones=args.backbones, weights_dir=args.weights_dir,
                     cache_dir=DEFAULT_CACHE_DIR)
    path = Path(args.output) if args.output else Path(RESULTS_DIR) / "scored" / f"{task.name}.json"
    write_result(path, res)
    print(_summary_line(res), file=sys.stderr)
    print(format_table([res]))
    print(f"result JSON: {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from benchmark.api import EditSample
    from benchmark.files import atomic_write_bytes, atomic_write_json, png_bytes
    from benchmark.runner import load_samples
    from benchmark.store import safe_name
    from benchmark.tasks import expand_tasks

    out = Path(args.dir)
    n = 0
    for task in expand_tasks(args.task):
        for item in load_samples(task, args.limit, args.data_dir):
            if not isinstance(item, EditSample):
                print(f"skipped {item.id}: {item.error}", file=sys.stderr)
                continue
            d = out / safe_name(item.id)
            atomic_write_bytes(d / "source.png", png_bytes(item.source))
            if item.target is not None:
                atomic_write_bytes(d / "target.png", png_bytes(item.target))
            if item.mask is not None:
                atomic_write_bytes(d / "mask.png", png_bytes(item.mask))
            atomic_write_json(d / "sample.json", {"task": task.name, **item.describe()})
            n += 1
    print(f"exported {n} samples to {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from benchmark.registry import MODELS

    factory = MODELS.get(args.model)
    trainer = getattr(factory, "train", None)
    if trainer is None:
        raise UsageError(f"model {args.model!r} has no training recipe")
    command = " ".join(["editbench", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith(
        ("editbench", "__main__.py")) else f"editbench train --model {args.model} --preset {args.preset}"
    overrides = {}
    for item in args.recipe or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--recipe takes KEY=VALUE, got {item!r}")
        import yaml

        overrides[key] = yaml.safe_load(value)
    extra = {"recipe_overrides": overrides} if overrides else {}
    if args.threads:
        import torch

        # CPU kernels may sum in another order with more threads, so a shipped checkpoint's
        # command names its thread count (the manifest records it too)
        torch.set_num_threads(args.threads)
    if args.device and args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():  # the trainers would fall back to the CPU silently
            raise UsageError("--device cuda was asked for but torch sees no CUDA device")
    if args.base_checkpoint:
        extra["base_checkpoint"] = args.base_checkpoint
    manifest = trainer(preset=args.preset, output_dir=args.output_dir, steps=args.steps,
                       batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                       device=args.device, resume=args.resume, command=command,
                       data_dir=args.data_dir, **extra)
    print(f"trained {args.model} ({args.preset}): {manifest.get('steps')} steps, final loss "
          f"{manifest.get('final_loss')}, {manifest.get('wall_seconds')} s")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from benchmark.registry import BACKBONES, DATASETS, METRICS, MODELS
    from benchmark.tasks import TASKS, get_task

    if args.what == "tasks":
        for name in TASKS.names():
            try:
                spec = get_task(name)
                desc = (f"group: {', '.join(spec.group or [])}" if spec.is_group
                        else spec.description.split(". ")[0])
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not hide the others
                desc = f"(cannot load: {exc})"
            print(f"{name:24s} {desc}")
        return 0
    reg = {"models": MODELS, "metrics": METRICS, "backbones": BACKBONES, "datasets": DATASETS}[args.what]
    names = reg.names()
    if not names:
        print(f"(no {args.what} registered)")
    for name, target in reg.items():
        print(f"{name:24s} {target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from benchmark import __version__

    p = argparse.ArgumentParser(prog="editbench", description="Reproducible benchmarks for "
                                "instruction-based image editing.")
    p.add_argument("--version", action="version", version=f"editbench {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run a model on a task under the protocol; write a result JSON")
    r.add_argument("--model", required=True, help="registered model name or module:object")
    r.add_argument("--task", required=True, help="task or group name (see `editbench list tasks`)")
    r.add_argument("--preset", default=None, help="model preset (model-specific; default: its own)")
    r.add_argument("--seeds", default=None, help="comma-separated seeds (default: the task's)")
    r.add_argument("--limit", type=int, default=None, help="first N dataset items (sessions for "
                   "multi-turn data)")
    r.add_argument("--batch-size", type=int, default=8)
    r.add_argument("--dtype", default=None, choices=["float32", "bfloat16"],
                   help="diffusion models: the UNet's compute dtype (default float32; bfloat16 is "
                   "about 2x faster on CPUs with AMX; recorded, so its rows stay apart)")
    r.add_argument("--compile", action="store_true", default=None,
                   help="diffusion models: torch.compile the UNet (tens of seconds once per run)")
    r.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    r.add_argument("--output", default=None, help="result JSON path (a folder for group tasks); "
                   f"default {RESULTS_DIR}/<model>-<preset>/<task>.json")
    r.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="per-sample output store")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--data-dir", default=None, help="where the benchmark's files were unpacked "
                   "(real benchmarks; the synth suite needs none)")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("score", help="score pre-made edits (model-free mode)")
    s.add_argument("--task", required=True)
    s.add_argument("--outputs", required=True, help="DIR/<seed>/<sample_id>.png or DIR/<sample_id>.png")
    s.add_argument("--seeds", default=None)
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--name", default=None, help="name for the model row (default: outputs:<dir>)")
    s.add_argument("--output", default=None, help="result JSON path")
    s.add_argument("--data-dir", default=None, help="where the benchmark's files were unpacked "
                   "(real benchmarks; the synth suite needs none)")
    s.set_defaults(func=cmd_score)

    e = sub.add_parser("export", help="write a task's samples as PNG + JSON for model-free use")
    e.add_argument("--task", required=True)
    e.add_argument("--limit", type=int, default=None)
    e.add_argument("dir")
    e.add_argument("--data-dir", default=None, help="where the benchmark's files were unpacked "
                   "(real benchmarks; the synth suite needs none)")
    e.set_defaults(func=cmd_export)

    t = sub.add_parser("train", help="train a model preset (tiny presets run on a CPU)")
    t.add_argument("--model", required=True)
    t.add_argument("--preset", default="tiny")
    t.add_argument("--output-dir", default=None, help="checkpoint folder (default: the shipped one)")
    t.add_argument("--steps", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    t.add_argument("--resume", action="store_true", help="continue from the last training state")
    t.add_argument("--data-dir", default=None, help="training data folder (full-size presets)")
    t.add_argument("--recipe", action="append", metavar="KEY=VALUE",
                   help="override one recipe entry (repeatable), e.g. instruction_loss=false for "
                   "MGIE's w/o-L_ins ablation; the manifest records the recipe used")
    t.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: torch's; the bits of a CPU run depend on it)")
    t.add_argument("--base-checkpoint", default=None,
                   help="what training starts from: MLLM-guided models, the InstructPix2Pix-tiny "
                   "checkpoint; instruct-pix2pix tiny, a tiny checkpoint to fine-tune (default: "
                   "train from scratch); instruct-pix2pix sd15, a diffusers Stable Diffusion folder "
                   "(default: runwayml/stable-diffusion-v1-5 from the local cache)")
    t.set_defaults(func=cmd_train)

    ls = sub.add_parser("list", help="list registered names")
    ls.add_argument("what", choices=["models", "tasks", "metrics", "backbones", "datasets"])
    ls.set_defaults(func=cmd_list)

    from benchmark import adapters, leaderboard, sweep
    from benchmark.datasets.verify import add_cli as add_datasets_cli
    from benchmark.metrics.backbones import add_backbone_args
    from benchmark.metrics.backbones.standard import add_cli as add_weights_cli
    from benchmark.metrics.backbones.train import add_cli as add_train_backbones_cli
    from benchmark.metrics.perf import add_cli as add_perf_cli

    add_backbone_args(r)  # --backbones {auto,standard,synth}, --weights-dir
    add_backbone_args(s)
    add_weights_cli(sub)  # weights download
    add_train_backbones_cli(sub)  # train-backbones
    add_perf_cli(sub)  # perf metrics

    add_datasets_cli(sub)  # datasets verify
    leaderboard.add_cli(sub)  # leaderboard {show,add,update,render}, check-drift, bundle, submit
    sweep.add_cli(sub)  # sweep
    adapters.add_cli(sub)  # validate-adapter
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    from benchmark.registry import UnknownNameError

    try:
        if getattr(args, "limit", None) is not None and args.limit < 1:
            raise UsageError("--limit must be at least 1")
        return args.func(args)
    except (UsageError, UnknownNameError, FileNotFoundError) as exc:
        print(f"editbench: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, ImportError) as exc:
        if os.environ.get("EDITBENCH_DEBUG"):
            raise
        print(f"editbench: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
