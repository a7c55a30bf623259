"""What a Bayes-optimal denoiser scores on synth-ma5k under the eq. 5 protocol (dev aid).

    python scripts/probe_ideal_denoiser.py [--n 96] [--split val] [--others 256] [--scale S]
        [--text-error 0.0] [--amounts N] [--threads 2]

Replaces the UNet of InstructPix2Pix-tiny by the exact posterior-mean x0 predictor of the synth
data, then samples with the project's own sampler (``benchmark.diffusion.sampling.edit_images``:
the task's 20 Euler-ancestral steps, zero-terminal-SNR trailing schedule) under a grid of guidance
settings. The three branches of eq. 5, for a source v and instruction u:

- text ``(z, v, u)``: the target itself (a synth retouch is a deterministic function of the source
  and the instruction), optionally off by ``--text-error`` times the asked change, a stand-in for an
  imperfect model;
- null text ``(z, v, ∅)``: the posterior mean over the 20 retouches the generator can draw
  (``synth.edits.RETOUCH``: 5 adjustments x 4 amounts, uniform) of that source, given z; with
  ``--amounts N``, N evenly spaced amounts per adjustment instead (a nearly continuous prior);
- unconditional ``(z, ∅, ∅)``: the posterior mean over an empirical image distribution: this
  source's retouches (as one image) and the targets of ``--others`` other training samples.

Posterior means are exact for these priors: weights softmax(-|z - sqrt(abar) c_k|^2 / (2 (1 - abar)))
over the candidates c_k (latents at ``--scale``; default: the shipped checkpoint's scaling factor). The
figure is l1 over identity's l1 on the first ``n`` samples, seed 0, as ``scripts/probe_guidance.py``
prints it; docs/tiny-models.md ("What an ideal denoiser scores") quotes it. No weights are involved.
"""
import argparse

import numpy as np
import torch
from diffusers import DDPMScheduler, EulerAncestralDiscreteScheduler

from baselines.instruct_pix2pix import CHECKPOINT_DIR, TINY
from benchmark.datasets import synth
from benchmark.datasets.synth.edits import RETOUCH, apply_adjust
from benchmark.diffusion.autoencoders import PixelUnshuffleAutoencoder
from benchmark.diffusion.checkpoints import load_manifest
from benchmark.diffusion.sampling import edit_images, images_to_tensor
from probe_guidance import GRID, _l1, _rgb  # scripts/ is on sys.path when this runs as a script

RETOUCHES = [r for rs in RETOUCH.values() for r in rs]


def retouch_params(amounts: int | None = None) -> list[tuple[str, tuple[float, ...]]]:
    """The null-text prior's retouches: the generator's 20 (``amounts=None``), or, per adjustment,
    ``amounts`` evenly spaced parameters spanning its four (a nearly continuous prior, whose
    posterior can follow z between the generator's amounts)."""
    if amounts is None:
        return [(r.op, r.params) for r in RETOUCHES]
    out = []
    for op, rs in RETOUCH.items():
        ps = np.array([r.params for r in rs], np.float64)
        lo, hi = ps[ps[:, 0].argmin()], ps[ps[:, 0].argmax()]  # white balance: r and b move together
        out += [(op, tuple(float(v) for v in lo + f * (hi - lo))) for f in np.linspace(0, 1, amounts)]
    return out


def retouched(source: np.ndarray, amounts: int | None = None) -> np.ndarray:
    """The retouches of a float H x W x 3 source in [0, 1] (``retouch_params``), quantised as the
    dataset's PNGs."""
    return np.stack([np.round(apply_adjust(source, op, params) * 255) / 255
                     for op, params in retouch_params(amounts)])


def posterior_mean(z: torch.Tensor, abar: float, cands: torch.Tensor, logw: torch.Tensor) -> torch.Tensor:
    """E[x0 | z] for x0 drawn from candidates ``cands`` (K x D) with log prior ``logw`` (K), and
    z = sqrt(abar) x0 + sqrt(1 - abar) eps (z: D)."""
    if abar <= 0:
        return (logw.softmax(0)[:, None] * cands).sum(0)
    d2 = ((z[None] - abar ** 0.5 * cands) ** 2).sum(1)
    w = (logw - d2 / (2 * (1 - abar))).softmax(0)
    return (w[:, None] * cands).sum(0)


class IdealUNet(torch.nn.Module):
    """Bayes-optimal x0 prediction of the three eq. 5 branches (see the module docstring), behind the
    UNet call the sampler makes: ``unet(model_in, t, encoder_hidden_states=..., return_dict=False)``
    with ``model_in`` = [3B scaled noisy latents | image latents], rows ordered full, image, uncond."""

    def __init__(self, targets, nulls, others, abar, text_error: float, sources):
        super().__init__()
        self.targets, self.nulls, self.others, self.abar = targets, nulls, others, abar
        self.sources, self.text_error = sources, text_error

    @property
    def dtype(self):
        return torch.float32

    def forward(self, model_in, t, encoder_hidden_states=None, return_dict=False):
        b = self.targets.shape[0]
        ch = model_in.shape[1] // 2
        z = model_in[:, :ch].flatten(1)
        abar = float(self.abar[int(t)])
        out = []
        for i in range(b):
            err = self.text_error * (self.targets[i] - self.sources[i])
            out.append(self.targets[i] + err)
        for i in range(b):
            k = self.nulls[i].shape[0]
            out.append(posterior_mean(z[b + i], abar, self.nulls[i], torch.full((k,), -np.log(k))))
        for i in range(b):
            k, m = self.nulls[i].shape[0], self.others.shape[0]
            cands = torch.cat([self.nulls[i], self.others])
            logw = torch.cat([torch.full((k,), -np.log(k)), torch.zeros(m)]) - np.log(m + 1)
            out.append(posterior_mean(z[2 * b + i], abar, cands, logw))
        return (torch.stack(out).view(model_in.shape[0], ch, *model_in.shape[2:]),)


def latents(vae, arr: np.ndarray) -> torch.Tensor:
    """N x H x W x 3 images in [0, 1] as flat scaled latents (N x D), as the sampler sees them."""
    x = torch.from_numpy(np.asarray(arr, np.float32)).permute(0, 3, 1, 2) * 2 - 1
    return vae.encode(x).latent_dist.mode().flatten(1) * vae.config.scaling_factor


def ideal_edits(samples, others: torch.Tensor, vae, *, image_guidance_scale: float,
                text_guidance_scale: float, guidance_rescale: float, text_error: float = 0.0,
                amounts: int | None = None, chunk: int = 16) -> np.ndarray:
    """The ideal denoiser's edits of synth-ma5k ``samples`` (N x H x W x 3 in [0, 1], quantised to
    8 bits) under eq. 5 with the given scales; ``others``: the unconditional branch's other images
    as latents (``latents``); sample i draws its noise from seed i."""
    src = np.stack([_rgb(s.source) for s in samples])
    tgt = np.stack([_rgb(s.target) for s in samples])
    nulls = []
    for s, t in zip(src, tgt):
        cands = retouched(s, amounts)
        cands[np.abs(cands - t).reshape(len(cands), -1).mean(1).argmin()] = t  # the exact target among them
        nulls.append(latents(vae, cands))
    ddpm = DDPMScheduler(**TINY["scheduler"])
    outs = []
    for start in range(0, len(samples), chunk):
        idx = list(range(start, min(start + chunk, len(samples))))
        unet = IdealUNet(latents(vae, tgt[idx]), [nulls[i] for i in idx], others, ddpm.alphas_cumprod,
                         text_error, latents(vae, src[idx]))
        sched = EulerAncestralDiscreteScheduler.from_config(ddpm.config)
        gens = [torch.Generator().manual_seed(i) for i in idx]
        source = images_to_tensor([samples[i].source for i in idx], TINY["resolution"])
        img = edit_images(unet, vae, sched, source, torch.zeros(len(idx), 1, 1), torch.zeros(1, 1, 1),
                          gens, image_guidance_scale=image_guidance_scale,
                          text_guidance_scale=text_guidance_scale, guidance_rescale=guidance_rescale)
        outs.append(np.round(img.permute(0, 2, 3, 1).numpy() * 255) / 255)
    return np.concatenate(outs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=96)
    p.add_argument("--split", default="val", choices=tuple(synth.SPLITS))
    p.add_argument("--others", type=int, default=256)
    p.add_argument("--scale", type=float, default=None,
                   help="latent scaling factor (default: the shipped checkpoint's)")
    p.add_argument("--text-error", type=float, default=0.0)
    p.add_argument("--amounts", type=int, default=None,
                   help="null-text prior: N amounts per adjustment instead of the generator's 4")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.scale is None:
        a.scale = float(load_manifest(CHECKPOINT_DIR, what="InstructPix2Pix-tiny checkpoint",
                                      how="editbench train --model instruct-pix2pix --preset tiny",
                                      verify=False)["config"]["vae"]["scaling_factor"])
    vae = PixelUnshuffleAutoencoder(factor=TINY["ae_factor"])
    vae.register_to_config(scaling_factor=a.scale)
    samples = [synth.generate("ma5k", a.split, i, size=TINY["resolution"])[-1] for i in range(a.n)]
    others = [synth.generate(v, "train", i, size=TINY["resolution"])[-1]
              for i in range(a.others // len(synth.VARIANTS) + 1) for v in synth.VARIANTS][:a.others]
    others = latents(vae, np.stack([_rgb(s.target) for s in others]))
    tgt = np.stack([_rgb(s.target) for s in samples])
    identity = _l1(np.stack([_rgb(s.source) for s in samples]), tgt)
    print(f"{a.n} synth-ma5k {a.split} samples, seed 0; ideal denoiser, scale {a.scale}, text error "
          f"{a.text_error}, null prior {a.amounts or 4} amounts per adjustment; identity l1 {identity:.4f}")
    for av, ax, phi in GRID:
        out = ideal_edits(samples, others, vae, image_guidance_scale=av, text_guidance_scale=ax,
                          guidance_rescale=phi, text_error=a.text_error, amounts=a.amounts)
        print(f"αV {av} αX {ax} φ {phi}: l1 ×id {_l1(out, tgt) / identity:.3f}", flush=True)


if __name__ == "__main__":
    main()
