"""How well does an InstructPix2Pix-tiny checkpoint keep the objects of a background swap? (dev aid)

    python scripts/probe_background_swaps.py [CHECKPOINT_DIR] [--n 200] [--threads 2]

The swaps among the first ``--n`` synth-evr validation samples (47 of 200). On a swap the mask is
the background, so what lies outside it (l1_out_mask) is the objects, which must come through
unchanged. Prints, at seed 0:
- l1_out_mask / l1_in_mask of 20-step edits at the protocol's guidance and unguided;
- the l1 of the UNet's x0 prediction on the objects and on the background, from the target
  noised to fixed timesteps (fully conditioned). At small t the noisy input is nearly the target,
  which on the objects is the source: a model that still moves them there smooths them into the
  new background (docs/tiny-models.md, "Background swaps").
Needs an x0-predicting checkpoint, as the tiny preset is.
"""
import argparse

import numpy as np
import torch
from diffusers import DDPMScheduler

from baselines.instruct_pix2pix import InstructPix2Pix
from benchmark.api import EditRequest
from benchmark.datasets import synth
from benchmark.diffusion.sampling import images_to_tensor
from benchmark.metrics.masked_l1 import mask_region, masked_l1

p = argparse.ArgumentParser()
p.add_argument("checkpoint", nargs="?", default=None, help="default: the shipped tiny checkpoint")
p.add_argument("--n", type=int, default=200)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--timesteps", default="999,900,700,500,300,100,20")
a = p.parse_args()
torch.set_num_threads(a.threads)

model = InstructPix2Pix(checkpoint=a.checkpoint)
if model.scheduler_config.get("prediction_type") != "sample":
    raise SystemExit("needs an x0-predicting (prediction_type='sample') checkpoint")
res = model.resolution
swaps = [s for s in (synth.generate("evr", "val", i, size=res)[-1] for i in range(a.n))
         if s.category == "background"]
background = torch.stack([mask_region(s.mask, (res, res)) for s in swaps])
src, tgt = (images_to_tensor([getattr(s, k) for s in swaps], res) for k in ("source", "target"))
tgt01 = tgt / 2 + 0.5


def objects_and_background(images01: torch.Tensor) -> tuple[float, float]:
    """The metric suite's l1_out_mask (the objects) and l1_in_mask (the background) against the
    targets, averaged over the swaps."""
    return (float(masked_l1(images01, tgt01, ~background).mean()),
            float(masked_l1(images01, tgt01, background).mean()))


print(f"{len(swaps)} background swaps among the first {a.n} synth-evr validation samples, seed 0")
for name, (av, ax, phi) in {"protocol (αV 1.5, αX 7.5)": (1.5, 7.5, model.guidance_rescale),
                            "unguided": (1.0, 1.0, 0.0)}.items():
    settings = dict(steps=20, image_guidance_scale=av, text_guidance_scale=ax, guidance_rescale=phi)
    out = torch.stack([torch.from_numpy(np.asarray(r.image, np.float32)).permute(2, 0, 1) for r in
                       model.edit([EditRequest(sample=s, seed=0, settings=settings) for s in swaps])])
    obj, bg = objects_and_background(out)
    print(f"edit, {name}: l1_out_mask (objects) {obj:.4f}  l1_in_mask (background) {bg:.4f}")

scheduler = DDPMScheduler(**model.manifest["config"]["scheduler"])
sf = model.vae.config.scaling_factor
gen = torch.Generator().manual_seed(0)
with torch.no_grad():
    cond = model.encode_text([s.instruction for s in swaps])
    source_latents = model.vae.encode(src).latent_dist.mode()
    target_latents = model.vae.encode(tgt).latent_dist.mode() * sf
    for t in (int(x) for x in a.timesteps.split(",")):
        steps = torch.full((len(swaps),), t, dtype=torch.long)
        noisy = scheduler.add_noise(target_latents, torch.randn(target_latents.shape, generator=gen), steps)
        x0 = model.unet(torch.cat([noisy, source_latents], 1), steps, encoder_hidden_states=cond)[0]
        image = model.vae.decode(x0 / sf, return_dict=False)[0].clamp(-1, 1)
        obj, bg = objects_and_background(image / 2 + 0.5)
        print(f"x0 prediction, t = {t:4d}: objects {obj:.4f}  background {bg:.4f}")
