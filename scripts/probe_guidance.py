"""What the eq. 5 guidance does to an InstructPix2Pix-tiny edit (dev aid).

    python scripts/probe_guidance.py [CKPT] [--variant ma5k] [--split val] [--n 96] [--threads 1]

Edits the first ``n`` samples of a synth variant (seed 0, 20 steps) under a grid of guidance
settings (αV, αX, rescale φ) and splits each output's error against the exact target:

- ``l1 ×id``: mean l1 over identity's (the quality bar's ratio);
- ``gain``: the projection of the change the model made, output − source, on the change the
  target asks for, target − source (1 = exactly the asked amount; median and quartiles);
- ``off-edit``: the norm of the rest of the change over the asked change's norm (median);
- ``offset``: mean |per-image, per-channel mean of output − target|, the part of the error that
  is a global colour or brightness shift;
- ``clipped``: share of output pixels at 0 or 1 (the target's share is printed once).

CKPT defaults to the shipped checkpoint; docs/tiny-models.md ("What the guidance adds") quotes it.
"""
import argparse

import numpy as np
import torch

from baselines.instruct_pix2pix import InstructPix2Pix
from benchmark.api import EditRequest
from benchmark.datasets import synth
from benchmark.metrics.l1 import l1_distance

GRID = ((1.0, 1.0, 0.0), (1.5, 1.0, 0.7), (1.0, 3.0, 0.7), (1.0, 7.5, 0.7), (1.5, 7.5, 0.0),
        (1.5, 7.5, 0.7))


def _rgb(image) -> np.ndarray:
    return np.asarray(image, np.float32) / 255.0


def _l1(a: np.ndarray, b: np.ndarray) -> float:
    """The metric suite's l1 (per-sample mean, then mean over samples) of N x H x W x 3 arrays."""
    chw = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2)
    return float(l1_distance(chw(a), chw(b)).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", default=None)
    p.add_argument("--variant", default="ma5k", choices=synth.VARIANTS)
    p.add_argument("--split", default="val", choices=tuple(synth.SPLITS))
    p.add_argument("--n", type=int, default=96)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = InstructPix2Pix(checkpoint=a.checkpoint)
    samples = [synth.generate(a.variant, a.split, i, size=64)[-1] for i in range(a.n)]
    src = np.stack([_rgb(s.source) for s in samples])
    tgt = np.stack([_rgb(s.target) for s in samples])
    identity_l1 = _l1(src, tgt)
    asked = (tgt - src).reshape(len(samples), -1)
    asked_sq = np.maximum((asked * asked).sum(1), 1e-12)
    clipped_tgt = ((tgt <= 0.002) | (tgt >= 0.998)).mean()
    print(f"{len(samples)} synth-{a.variant} {a.split} samples, seed 0; checkpoint "
          f"{a.checkpoint or 'shipped'}; identity l1 {identity_l1:.4f}; target clipped {clipped_tgt:.3f}")
    for av, ax, phi in GRID:
        settings = dict(steps=20, image_guidance_scale=av, text_guidance_scale=ax, guidance_rescale=phi)
        outs = model.edit([EditRequest(sample=s, seed=0, settings=settings) for s in samples])
        out = np.stack([np.asarray(o.image, np.float32) for o in outs])  # already in [0, 1]
        made = (out - src).reshape(len(samples), -1)
        gain = (made * asked).sum(1) / asked_sq
        off = np.linalg.norm(made - gain[:, None] * asked, axis=1) / np.sqrt(asked_sq)
        offset = np.abs((out - tgt).mean(axis=(1, 2))).mean()
        clipped = ((out <= 0.002) | (out >= 0.998)).mean()
        q1, med, q3 = np.percentile(gain, [25, 50, 75])
        print(f"αV {av:.1f} αX {ax:.1f} φ {phi:.1f}: l1 ×id {_l1(out, tgt) / identity_l1:.3f}"
              f"  gain {med:.2f} [{q1:.2f}, {q3:.2f}]  off-edit {np.median(off):.2f}"
              f"  offset {offset:.4f}  clipped {clipped:.3f}", flush=True)


if __name__ == "__main__":
    main()
