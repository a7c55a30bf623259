"""Sample with one InstructPix2Pix-tiny checkpoint for the first k steps and another for the rest (dev aid).

    python scripts/probe_expert_handoff.py FIRST REST [--k 1] [--variant magicbrush] [--op add] [--n 64]

FIRST drives the first ``k`` of the protocol's 20 sampling steps (from t = 999), REST the others,
each with its own text encoder, as an ensemble of expert denoisers would (eDiff-I, Balaji et al.
2022). Prints l1 (inside the edit mask where there is one) over identity's on the samples
``scripts/probe_edit_ops.py`` picks, seed 0, unguided and at protocol guidance. docs/tiny-models.md's
"later steps undo a good first step" figures come from it.
"""
import argparse

import numpy as np
import torch

from baselines.instruct_pix2pix import InstructPix2Pix
from benchmark.api import EditRequest
from benchmark.datasets import synth
from probe_edit_ops import UNGUIDED, l1_vs_identity, pick_samples  # scripts/ is on sys.path when this runs as a script


class HandoffText(torch.nn.Module):
    """Both experts' instruction encodings, concatenated along the token axis."""

    def __init__(self, rest, first):
        super().__init__()
        self.rest, self.first = rest, first

    def forward(self, ids, *args, **kwargs):
        return (torch.cat([self.rest(ids)[0], self.first(ids)[0]], 1),)


class HandoffUNet(torch.nn.Module):
    """FIRST's UNet for the first ``k`` calls of a sampling run (a run starts at t = 999), REST's after."""

    def __init__(self, rest, first, k):
        super().__init__()
        self.rest, self.first, self.k, self.calls = rest, first, k, 0
        self.config, self.dtype = rest.config, rest.dtype

    def forward(self, x, t, encoder_hidden_states, return_dict=False):
        self.calls = 0 if float(t) >= 999 else self.calls + 1
        half = encoder_hidden_states.shape[1] // 2
        if self.calls < self.k:
            return self.first(x, t, encoder_hidden_states=encoder_hidden_states[:, half:])
        return self.rest(x, t, encoder_hidden_states=encoder_hidden_states[:, :half])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first")
    p.add_argument("rest")
    p.add_argument("--k", type=int, default=1)
    p.add_argument("--variant", default="magicbrush", choices=synth.VARIANTS)
    p.add_argument("--op", default=None)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    first, model = InstructPix2Pix(checkpoint=a.first), InstructPix2Pix(checkpoint=a.rest)
    model.text_encoder = HandoffText(model.text_encoder, first.text_encoder)
    model.unet = HandoffUNet(model.unet, first.unet, a.k)
    model._null = None
    samples = pick_samples(a.variant, "val", a.n, a.op, False)
    for name, settings in (("unguided", UNGUIDED), ("protocol", {})):
        outs = model.edit([EditRequest(sample=s, seed=0, settings=settings) for s in samples])
        m = np.array([l1_vs_identity(s, o.image) for s, o in zip(samples, outs)])
        print(f"{name}: model {m[:, 0].mean():.4f} identity {m[:, 1].mean():.4f} "
              f"ratio {m[:, 0].mean() / m[:, 1].mean():.2f}")


if __name__ == "__main__":
    main()
