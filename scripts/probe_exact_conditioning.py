"""Can the tiny UNet draw an ``add`` edit when its conditioning is exact? (dev aid)

    python scripts/probe_exact_conditioning.py [--steps 600] [--dropout 0.05] [--diffusion]

The shipped tiny UNet (``TINY``, source residual, exact autoencoder), conditioned not by a text
encoder but by four learned tokens (size, colour, kind, position) read off the generator's
expressive instruction of synth-magicbrush ``add`` edits. Trained on the x0 regression from pure
noise (t = 999, where sampling starts; ``--diffusion``: uniform timesteps), with InstructPix2Pix's
conditioning dropout when ``--dropout`` is given (null condition: zeros). Every
``--eval-every`` steps it prints the one-step x0 prediction's l1 inside the edit mask on 64
validation ``add`` edits, over identity's (docs/tiny-models.md's "exact conditioning" rows).
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

import baselines.instruct_pix2pix as ip
from benchmark.datasets import synth
from benchmark.datasets.synth.scene import COLOURS, KINDS, POSITIONS, SIZE_CLASSES
from benchmark.diffusion.sampling import images_to_tensor
from probe_edit_ops import l1_vs_identity, op_key  # scripts/ is on sys.path when this runs as a script


def parse(expr: str) -> tuple[int, int, int, int]:
    """(size, colour, kind, position) indices of "add a small yellow square at the top right"."""
    rest = expr[len("add a "):] if expr.startswith("add a ") else expr[len("add an "):]
    size, colour, kind, *pos = rest.split(" ")
    return (SIZE_CLASSES.index(size), COLOURS.index(colour), KINDS.index(kind),
            POSITIONS.index(" ".join(pos)))


def add_samples(split):
    i = 0
    while True:
        for s in synth.generate("magicbrush", split, i % synth.SPLITS[split], size=64):
            if op_key(s) == "add":
                yield s
        i += 1


class AttributeTokens(torch.nn.Module):
    """Four learned tokens, one per attribute, as ``encoder_hidden_states`` (B x 4 x dim)."""

    def __init__(self, dim=64):
        super().__init__()
        self.tabs = torch.nn.ModuleList([torch.nn.Embedding(n, dim) for n in
                                         (len(SIZE_CLASSES), len(COLOURS), len(KINDS), len(POSITIONS))])
        self.slot = torch.nn.Parameter(torch.randn(4, dim) * 0.02)

    def forward(self, attrs):  # B x 4 long
        return torch.stack([t(attrs[:, j]) for j, t in enumerate(self.tabs)], 1) + self.slot


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--diffusion", action="store_true")
    p.add_argument("--tiny", default="{}", help="JSON patch of the TINY preset ('unet' merged)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--dropout", type=float, default=0.0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    patch = json.loads(a.tiny)
    unet_patch = patch.pop("unet", {})
    ip.TINY.update(patch)
    ip.TINY["unet"] = {**ip.TINY["unet"], **unet_patch}
    from benchmark.diffusion.training import conditioning_dropout
    from benchmark.diffusion.unet import SourceResidualUNet

    unet, vae, _, sched = ip.build_tiny_components(None)
    ch = vae.config.latent_channels
    scale = ip.latent_scale(vae, 0, 64)
    vae.register_to_config(scaling_factor=scale)
    with torch.no_grad():
        unet.conv_out.weight.zero_()
        unet.conv_out.bias.zero_()
    model = SourceResidualUNet(unet, ch, scale)
    cond = AttributeTokens(ip.TINY["unet"]["cross_attention_dim"])
    params = list(unet.parameters()) + list(cond.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=1e-2)
    from diffusers.optimization import get_scheduler
    lrs = get_scheduler("cosine", opt, num_warmup_steps=100, num_training_steps=a.steps)

    val = [s for _, s in zip(range(64), add_samples("val"))]
    vsrc = images_to_tensor([s.source for s in val], 64)
    vattr = torch.tensor([parse(s.expressive) for s in val])

    def evaluate():
        model.eval()
        with torch.no_grad():
            v = vae.encode(vsrc).latent_dist.mode()
            g = torch.Generator().manual_seed(0)
            noise = torch.randn(v.shape, generator=g)
            t = torch.full((len(val),), sched.config.num_train_timesteps - 1)
            x0 = model(torch.cat([noise, v], 1), t, cond(vattr))[0]
            img = vae.decode(x0 / scale).sample.clamp(-1, 1)
        model.train()
        r = np.array([l1_vs_identity(s, ((o + 1) / 2).permute(1, 2, 0).numpy()) for s, o in zip(val, img)])
        return r[:, 0].mean(), r[:, 1].mean()

    it = add_samples("train")
    t0 = time.time()
    losses = []
    for step in range(1, a.steps + 1):
        batch = [next(it) for _ in range(32)]
        src = images_to_tensor([s.source for s in batch], 64)
        tgt = images_to_tensor([s.target for s in batch], 64)
        attrs = torch.tensor([parse(s.expressive) for s in batch])
        lat = vae.encode(tgt).latent_dist.mode() * scale
        v = vae.encode(src).latent_dist.mode()
        noise = torch.randn_like(lat)
        n_t = sched.config.num_train_timesteps
        t = torch.randint(0, n_t, (32,)) if a.diffusion else torch.full((32,), n_t - 1)
        noisy = sched.add_noise(lat, noise, t)
        c = cond(attrs)
        if a.dropout:
            c, v = conditioning_dropout(c, torch.zeros_like(c[:1]), v, None, a.dropout)
        pred = model(torch.cat([noisy, v], 1), t, c)[0]
        loss = F.mse_loss(pred, lat)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        lrs.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 50 == 0:
            print(f"step {step} loss {np.mean(losses[-50:]):.4f} ({step / (time.time() - t0):.2f} steps/s)", flush=True)
        if step % a.eval_every == 0 or step == a.steps:
            m, i_ = evaluate()
            print(f"  eval step {step}: l1_in_mask {m:.4f} identity {i_:.4f} ratio {m / i_:.3f}", flush=True)


if __name__ == "__main__":
    main()
