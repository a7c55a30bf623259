"""Loading speed of the benchmark loaders: samples/s at 512 px from generated local fixtures.

Writes MagicBrush (train parquet as on the hub, and the test folder layout), MA5k-Req (JPEG
folder) and HumanEdit (parquet) fixtures of ``--n`` samples into a temporary folder with the
test-suite writers, then times each loader building its full sample list (decoding included).
The goal (issue 6): at least 100 samples/s on 2 cores.

Usage: python scripts/bench_loaders.py [--n 200] [--size 512] [--workers N] [--keep DIR]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import _dataset_fixtures as fx  # noqa: E402
from benchmark.api import FailedSample  # noqa: E402
from benchmark.datasets import humanedit, ma5k, magicbrush  # noqa: E402


def _time(label: str, fn, expected: int) -> float:
    fn()  # warm the page cache and imports: the timed pass reads what a second run would
    c0, t0 = time.process_time(), time.perf_counter()
    items = fn()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    bad = [it for it in items if isinstance(it, FailedSample)]
    if len(items) != expected or bad:
        raise SystemExit(f"{label}: loaded {len(items)} items ({len(bad)} failed), expected {expected}")
    rate = len(items) / dt
    print(f"{label:38s} {len(items):5d} samples  {dt:6.2f} s  {rate:7.1f} samples/s  "
          f"({len(items) / cpu:6.1f} per CPU-second)")
    return rate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="samples per fixture (even)")
    ap.add_argument("--size", type=int, default=512, help="image side in pixels")
    ap.add_argument("--workers", type=int, default=None, help="decoding threads (default: loader's)")
    ap.add_argument("--keep", default=None, help="write the fixtures here and keep them")
    args = ap.parse_args(argv)
    n = max(2, args.n - args.n % 2)
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="editbench-bench-")
    base = Path(args.keep or tmp.name)
    opts = {} if args.workers is None else {"workers": args.workers}
    sessions = {f"{300000 + i}": 2 for i in range(n // 2)}  # two-turn sessions
    stamp = base / f".fixtures-{n}-{args.size}"
    if not stamp.is_file():  # --keep DIR reuses fixtures written by an earlier run
        print(f"writing fixtures: {n} samples per format at {args.size} px in {base} ...", flush=True)
        t0 = time.perf_counter()
        fx.write_magicbrush_parquet(base / "mb-parquet", "train", sessions, size=args.size)
        fx.write_magicbrush_test(base / "mb-folder", sessions, size=args.size)
        fx.write_ma5k(base / "ma5k", {"test": n}, size=args.size)
        fx.write_humanedit(base / "humanedit", n=n, size=args.size)
        stamp.write_text("ok\n")
        print(f"  ({time.perf_counter() - t0:.1f} s)\n", flush=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"cores: {os.cpu_count()}, load average before timing: {load:.2f}, size: {args.size} px")
    print("(other processes on the machine slow the wall-clock rate; the CPU-second rate does not"
          " depend on them)")
    rates = [
        _time("magicbrush train (hub parquet)",
              lambda: magicbrush.load(data_dir=str(base / "mb-parquet"), split="train", **opts), n),
        _time("magicbrush test (folder, PNG)",
              lambda: magicbrush.load(data_dir=str(base / "mb-folder"), split="test", **opts), n),
        _time("ma5k test (folder, JPEG, native size)",
              lambda: ma5k.load(data_dir=str(base / "ma5k"), split="test", resize="none", **opts), n),
        _time("humanedit all (hub parquet)",
              lambda: humanedit.load(data_dir=str(base / "humanedit"), split="all", **opts), n),
    ]
    print(f"\nslowest: {min(rates):.1f} samples/s (goal: >= 100)")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
