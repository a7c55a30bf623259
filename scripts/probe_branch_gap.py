"""How far apart eq. 5's text and null-text branches are, timestep by timestep (dev aid).

    python scripts/probe_branch_gap.py [CKPT] [--variant ma5k] [--n 96] [--threads 2]

For the first ``n`` validation samples of a synth variant, the target latents are noised to
timestep t (one fixed noise draw) and an InstructPix2Pix-tiny checkpoint predicts x0 twice: with
the instruction, x_c = x0(z_t, v, c), and without, x_n = x0(z_t, v, ∅). Printed per t, each as
a norm over the norm of the asked change (target − source latents), median over samples:

- ``text`` / ``null``: the error of x_c / x_n against the target;
- ``gap``: |x_c − x_n|, what eq. 5's αX multiplies (αX = 7.5 adds 6.5 × gap to x_c);
- ``guided``: the error of x_n + 7.5 (x_c − x_n) (αV = 1, no rescale);
- ``z/√ᾱ``: the error of the trivial denoiser that returns the noisy latent unscaled;
- ``global``: the part of the text error, the null error and the gap that is a per-image,
  per-channel constant (a colour or brightness shift).

Only x0-predicting checkpoints (the tiny preset). docs/tiny-models.md ("Why the text branch's
error gets amplified") quotes it.
"""
import argparse

import torch
from diffusers import DDPMScheduler

from baselines.instruct_pix2pix import InstructPix2Pix
from benchmark.diffusion.sampling import images_to_tensor
from benchmark.datasets import synth

TIMESTEPS = (999, 900, 700, 500, 300, 100, 49, 20)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", nargs="?", default=None)
    p.add_argument("--variant", default="ma5k", choices=synth.VARIANTS)
    p.add_argument("--n", type=int, default=96)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model = InstructPix2Pix(checkpoint=a.checkpoint)
    sched = DDPMScheduler.from_config(model.manifest["config"]["scheduler"])
    if sched.config.prediction_type != "sample":
        raise SystemExit("probe_branch_gap reads x0 predictions: the checkpoint must predict 'sample'")
    samples = [synth.generate(a.variant, "val", i, size=64)[-1] for i in range(a.n)]
    sf = model.vae.config.scaling_factor
    with torch.no_grad():
        v = model.vae.encode(images_to_tensor([s.source for s in samples], 64)).latent_dist.mode()
        x = model.vae.encode(images_to_tensor([s.target for s in samples], 64)).latent_dist.mode() * sf
        cond = torch.cat([model.encode_text([s.instruction for s in samples[i:i + 8]])
                          for i in range(0, a.n, 8)])
    null = model.null_condition().expand_as(cond)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    asked = (x - sf * v).flatten(1).norm(dim=1).clamp_min(1e-8)

    def ratio(d: torch.Tensor) -> float:
        return float((d.flatten(1).norm(dim=1) / asked).median())

    def global_ratio(d: torch.Tensor) -> float:
        return ratio(d.mean((2, 3), keepdim=True).expand_as(d))

    print(f"{a.n} synth-{a.variant} val samples; checkpoint {a.checkpoint or 'shipped'}; "
          "norms over the asked change's, median")
    print(f"{'t':>4} {'z/√ᾱ':>7} {'text':>6} {'null':>6} {'gap':>6} {'guided':>7} | global: "
          f"{'text':>6} {'null':>6} {'gap':>6}")
    with torch.no_grad():
        for t in TIMESTEPS:
            tt = torch.full((a.n,), t)
            z = sched.add_noise(x, noise, tt)
            abar = sched.alphas_cumprod[t]
            trivial = ratio(z / abar.sqrt() - x) if abar > 0 else float("inf")
            inp = torch.cat([z, v], 1)
            xc = model.unet(inp, tt, encoder_hidden_states=cond)[0]
            xn = model.unet(inp, tt, encoder_hidden_states=null)[0]
            print(f"{t:4d} {trivial:7.3f} {ratio(xc - x):6.3f} {ratio(xn - x):6.3f} "
                  f"{ratio(xc - xn):6.3f} {ratio(xn + 7.5 * (xc - xn) - x):7.3f} | global: "
                  f"{global_ratio(xc - x):6.3f} {global_ratio(xn - x):6.3f} {global_ratio(xc - xn):6.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
