"""Per-operation l1 of an InstructPix2Pix-tiny checkpoint against the identity edit (dev aid).

    python scripts/probe_edit_ops.py [CKPT] [--variant magicbrush] [--n 96] [--split val]
        [--op add] [--expressive] [--sampling-steps 20] [--threads 2]

Scores synth samples of one variant (the last turn of sessions 0..n-1, or with ``--op`` the first
``n`` samples of that operation, e.g. ``add``, ``recolour/ref``), seed 0, once unguided
(αV = αX = 1, no rescale) and once with the task's protocol guidance. The figure per operation is
the model's mean l1 (inside the edit mask where the sample has one) over identity's, so 1.0 means
"no better than returning the source"; the model's l1 outside the mask is printed too.
``--expressive`` feeds the generator's ground-truth expressive instruction in place of the plain
one. ``--sampling-steps 1`` scores the model's one-step x0 prediction from pure noise (t = 999),
the regression the sampler starts from. CKPT defaults to the shipped checkpoint; docs/tiny-models.md's
probe tables were scored with this script (some rows by a scratch copy of it).
"""
import argparse
import collections
import dataclasses
import time

import numpy as np
import torch

from baselines.instruct_pix2pix import InstructPix2Pix
from benchmark.api import EditRequest
from benchmark.datasets import synth
from benchmark.metrics.masked_l1 import mask_region, masked_l1

UNGUIDED = dict(image_guidance_scale=1.0, text_guidance_scale=1.0, guidance_rescale=0.0)


def op_key(sample) -> str:
    return "+".join(sample.meta["ops"]) + ("/ref" if sample.meta.get("referring") else "")


def _chw(image, scale: float = 1.0) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, np.float32) / scale).permute(2, 0, 1)


def l1_vs_identity(sample, output) -> tuple[float, float]:
    """The metric suite's l1_in_mask (plain l1 where the sample has no mask) of ``output`` (an
    edit result's image: H x W x 3 in [0, 1]) and of the source (the identity edit)."""
    tgt, src, out = _chw(sample.target, 255), _chw(sample.source, 255), _chw(output)
    inside = (mask_region(sample.mask, sample.target.size) if sample.mask is not None
              else torch.ones(tgt.shape[1:], dtype=torch.bool))
    return float(masked_l1(out, tgt, inside)[0]), float(masked_l1(src, tgt, inside)[0])


def l1_out_of_mask(sample, output) -> float | None:
    """The metric suite's l1_out_mask of ``output`` (None where the sample has no mask)."""
    if sample.mask is None:
        return None
    outside = ~mask_region(sample.mask, sample.target.size)
    return float(masked_l1(_chw(output), _chw(sample.target, 255), outside)[0])


def pick_samples(variant: str, split: str, n: int, op: str | None, expressive: bool) -> list:
    if op:
        found = (s for i in range(synth.SPLITS[split])
                 for s in synth.generate(variant, split, i, size=64) if op_key(s) == op)
        samples = [s for _, s in zip(range(n), found)]
    else:
        samples = [synth.generate(variant, split, i, size=64)[-1] for i in range(n)]
    if expressive:
        samples = [dataclasses.replace(s, instruction=s.expressive) if s.expressive else s for s in samples]
    return samples


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", default=None)
    p.add_argument("--variant", default="magicbrush", choices=synth.VARIANTS)
    p.add_argument("--split", default="val", choices=tuple(synth.SPLITS))
    p.add_argument("--n", type=int, default=96)
    p.add_argument("--op", default=None, help="only this operation (as printed, e.g. add, remove/ref)")
    p.add_argument("--expressive", action="store_true")
    p.add_argument("--sampling-steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = InstructPix2Pix(checkpoint=a.checkpoint)
    samples = pick_samples(a.variant, a.split, a.n, a.op, a.expressive)
    print(f"{len(samples)} synth-{a.variant} {a.split} samples; checkpoint {a.checkpoint or 'shipped'}")
    for name, settings in (("unguided", UNGUIDED), ("protocol", {})):
        settings = {**settings, "steps": a.sampling_steps}
        t0 = time.time()
        outs = model.edit([EditRequest(sample=s, seed=0, settings=settings) for s in samples])
        groups = collections.defaultdict(list)
        outside = []
        for s, o in zip(samples, outs):
            pair = l1_vs_identity(s, o.image)
            groups[op_key(s)].append(pair)
            groups["ALL"].append(pair)
            if (v := l1_out_of_mask(s, o.image)) is not None:
                outside.append(v)
        tail = f"; l1_out_mask {np.mean(outside):.4f} over {len(outside)} masked samples" if outside else ""
        print(f"{name} ({time.time() - t0:.0f} s){tail}")
        for k in sorted(groups):
            m = np.array(groups[k])
            print(f"  {k:24s} n={len(m):3d} model {m[:, 0].mean():.4f} identity {m[:, 1].mean():.4f}"
                  f" ratio {m[:, 0].mean() / m[:, 1].mean():.2f}")


if __name__ == "__main__":
    main()
