"""Does an InstructPix2Pix checkpoint use its instruction? (dev aid)

    python scripts/probe_text_conditioning.py [CHECKPOINT_DIR] [--variant ma5k] [--n 64]

For synth train-split pairs it prints, at fixed timesteps, the x0-prediction MSE (latent space) of
the UNet given the right instruction, another sample's instruction (shuffled) and the empty one,
next to the identity edit's MSE. At t = 999 (pure noise under the zero-terminal-SNR schedule) the
prediction can only come from the source and the instruction, so "right" far below "shuffled" is
instruction following; at small t the noisy target gives the answer away. Needs an x0-predicting
(``prediction_type="sample"``) checkpoint, as the tiny preset is.
"""
import argparse

import torch
import torch.nn.functional as F

from baselines.instruct_pix2pix import InstructPix2Pix
from benchmark.diffusion.sampling import images_to_tensor
from benchmark.datasets import synth
from benchmark.diffusion.text import tokenize

p = argparse.ArgumentParser()
p.add_argument("checkpoint", nargs="?", default=None, help="default: the shipped tiny checkpoint")
p.add_argument("--variant", default="ma5k", choices=synth.VARIANTS)
p.add_argument("--n", type=int, default=64)
p.add_argument("--timesteps", default="999,900,700,500,200,50")
a = p.parse_args()

model = InstructPix2Pix(checkpoint=a.checkpoint)
if model.scheduler_config.get("prediction_type") != "sample":
    raise SystemExit("this probe reads x0 predictions: it needs a prediction_type='sample' checkpoint")
samples = []
for i in range(10 * a.n):
    samples += synth.generate(a.variant, "train", i, size=model.resolution)[:1]
    if len(samples) >= a.n:
        break
src = images_to_tensor([s.source for s in samples], model.resolution)
tgt = images_to_tensor([s.target for s in samples], model.resolution)
texts = [s.instruction for s in samples]
variants = {"right": texts, "shuffled": texts[1:] + texts[:1], "empty": [""] * len(texts)}
from diffusers import DDPMScheduler  # noqa: E402

sched = DDPMScheduler.from_config(model.scheduler_config)
vae, scale = model.vae, model.vae.config.scaling_factor
g = torch.Generator().manual_seed(0)
with torch.no_grad():
    latents = vae.encode(tgt).latent_dist.mode() * scale
    source = vae.encode(src).latent_dist.mode()
    conds = {k: model.text_encoder(tokenize(model.tokenizer, v))[0] for k, v in variants.items()}
    identity = F.mse_loss(source * scale, latents).item()
    print(f"{a.variant}: {len(samples)} train pairs; identity edit mse {identity:.4f}")
    for t in (int(x) for x in a.timesteps.split(",")):
        ts = torch.full((len(samples),), t)
        noisy = sched.add_noise(latents, torch.randn(latents.shape, generator=g), ts)
        row = {k: F.mse_loss(model.unet(torch.cat([noisy, source], 1), ts, encoder_hidden_states=c,
                                        return_dict=False)[0], latents).item() for k, c in conds.items()}
        print(f"  t={t:4d}  " + "  ".join(f"{k} {v:.4f}" for k, v in row.items()))
