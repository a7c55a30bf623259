"""Generation speed of the synth suite: samples/s per variant at 64 px, single process.

Usage: python scripts/bench_synth.py [--n 1000] [--split train] [--size 64]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # numpy-only, but keep BLAS from spreading over cores

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark.datasets import synth  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="samples per variant (MagicBrush: at least this many turns)")
    ap.add_argument("--split", default="train", choices=sorted(synth.SPLITS))
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--variants", default=",".join(synth.VARIANTS))
    args = ap.parse_args(argv)

    synth.generate("gier", args.split, 0, size=args.size)  # warm imports and caches
    total_n, total_s = 0, 0.0
    print(f"synth v{synth.SYNTH_VERSION}, split={args.split}, size={args.size}, n={args.n} per variant")
    for variant in args.variants.split(","):
        n, index = 0, 0
        t0 = time.perf_counter()
        while n < args.n:
            n += len(synth.generate(variant, args.split, index % synth.SPLITS[args.split], size=args.size))
            index += 1
        dt = time.perf_counter() - t0
        total_n += n
        total_s += dt
        print(f"{variant:>12}: {n / dt:8.1f} samples/s  ({n} samples from {index} indices in {dt:.2f} s)")
    print(f"{'overall':>12}: {total_n / total_s:8.1f} samples/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
