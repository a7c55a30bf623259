"""The guided sampler shared by every diffusion editor here.

Two-scale classifier-free guidance of InstructPix2Pix (Brooks et al. 2023, eq. 3), written as in
the MGIE paper (eq. 5) with αV the image scale and αX the instruction scale:

    s = s(z, ∅, ∅) + αV · (s(z, v, ∅) − s(z, ∅, ∅)) + αX · (s(z, v, u) − s(z, v, ∅))

where v is the source image latent (∅ = zeros) and u the instruction condition (∅ = the model's
null condition: CLIP's embedding of "" for InstructPix2Pix, the edit head applied to zeros for the
MLLM-guided models). Step for step this is diffusers' ``StableDiffusionInstructPix2PixPipeline``
(source latents ``mode()`` unscaled, Euler-ancestral steps, per-sample generators); the fidelity
test checks that the outputs agree.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers import EulerAncestralDiscreteScheduler
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg
from diffusers.utils.torch_utils import randn_tensor


def images_to_tensor(images: Sequence, resolution: int) -> torch.Tensor:
    """PIL images as the diffusion editors take them: RGB, resized to ``resolution`` square with
    PIL bicubic when their size differs (the presets' documented input transform), float32
    B x 3 x H x W in [-1, 1]."""
    import numpy as np
    from PIL import Image

    arrs = []
    for im in images:
        if im.size != (resolution, resolution):
            im = im.resize((resolution, resolution), Image.BICUBIC)
        arrs.append(np.asarray(im.convert("RGB"), dtype=np.float32))
    return (torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2) / 127.5 - 1.0).contiguous()


def sampling_kwargs(settings, guidance_rescale: float = 0.0) -> dict:
    """``edit_images`` keyword arguments from a task's generation settings: ``steps`` (20),
    ``image_guidance_scale`` αV (1.5), ``text_guidance_scale`` αX (7.5) and ``guidance_rescale``
    (the model's own value unless the task sets one)."""
    return dict(steps=int(settings.get("steps", 20)),
                image_guidance_scale=float(settings.get("image_guidance_scale", 1.5)),
                text_guidance_scale=float(settings.get("text_guidance_scale", 7.5)),
                guidance_rescale=float(settings.get("guidance_rescale", guidance_rescale)))


@torch.no_grad()
def edit_images(
    unet,
    vae,
    scheduler: EulerAncestralDiscreteScheduler,
    source: torch.Tensor,
    cond: torch.Tensor,
    null_cond: torch.Tensor,
    generators: Sequence[torch.Generator],
    *,
    steps: int = 20,
    image_guidance_scale: float = 1.5,
    text_guidance_scale: float = 7.5,
    guidance_rescale: float = 0.0,
) -> torch.Tensor:
    """Edit ``source`` (B x 3 x H x W in [-1, 1]) under ``cond`` (B x L x D); returns images in
    [0, 1]. ``null_cond`` is 1 x L x D or B x L x D. One generator per sample: the noise of a
    sample depends on its own generator only, never on the batch it is in.

    ``guidance_rescale`` φ > 0 rescales the guided prediction towards the standard deviation of the
    fully conditioned one (Lin et al. 2024, section 3.4, through diffusers' ``rescale_noise_cfg``),
    in the UNet's own prediction space; 0 (the default, and diffusers' InstructPix2Pix pipeline)
    leaves eq. 5 as it is."""
    device, dtype = source.device, unet.dtype
    bsz = source.shape[0]
    if len(generators) != bsz:
        raise ValueError(f"{len(generators)} generators for a batch of {bsz}")
    null_cond = null_cond.expand(bsz, -1, -1) if null_cond.shape[0] == 1 else null_cond
    predicts_sample = scheduler.config.prediction_type == "sample"
    if predicts_sample:
        # Euler steps take epsilon; an x0-predicting UNet's output is converted each step with
        # eps = (z - x0) / sigma (z the unscaled sample). The map is affine with weights summing
        # to 1 across the three guidance terms, so guiding x0 or eps gives the same step.
        scheduler = type(scheduler).from_config(scheduler.config, prediction_type="epsilon")
    scheduler.set_timesteps(steps, device=device)

    image_latents = vae.encode(source.to(dtype)).latent_dist.mode()
    image_latents = torch.cat([image_latents, image_latents, torch.zeros_like(image_latents)])
    hidden = torch.cat([cond, null_cond, null_cond]).to(dtype)

    shape = (bsz, vae.config.latent_channels, *image_latents.shape[-2:])
    latents = randn_tensor(shape, generator=list(generators), device=device, dtype=dtype)
    latents = latents * scheduler.init_noise_sigma

    for i, t in enumerate(scheduler.timesteps):
        model_in = scheduler.scale_model_input(torch.cat([latents] * 3), t)
        model_in = torch.cat([model_in, image_latents], dim=1)
        pred = unet(model_in, t, encoder_hidden_states=hidden, return_dict=False)[0]
        pred_full, pred_image, pred_uncond = pred.chunk(3)
        # Same term order as diffusers' pipeline, so the floating-point sums agree too.
        pred = (pred_uncond
                + text_guidance_scale * (pred_full - pred_image)
                + image_guidance_scale * (pred_image - pred_uncond))
        if guidance_rescale > 0:
            pred = rescale_noise_cfg(pred, pred_full, guidance_rescale)
        if predicts_sample:
            pred = (latents - pred) / scheduler.sigmas[i]
        latents = scheduler.step(pred, t, latents, generator=list(generators), return_dict=False)[0]

    images = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
    return (images / 2 + 0.5).clamp(0, 1).float()


# On CPU, GEMM and convolution kernels are picked by problem size, and their last bits change with
# the batch size (measured: 1.3e-6, enough to flip uint8 pixels). At a *fixed* batch size a row's
# result does not depend on the other rows (tests/baselines/test_instruct_pix2pix.py checks
# 11 requests batched == each alone, bit for bit), so CPU
# editing always runs in chunks of CPU_CHUNK samples, padding the last one: same seed, same bits,
# whatever batch size the caller asked for, at batched speed.
CPU_CHUNK = 8


def fixed_chunks(n: int, size: int) -> list[tuple[list[int], int]]:
    """``(indices, n_real)`` pairs: index lists of exactly ``size`` covering ``range(n)`` in order;
    the last list is padded by repeating index ``n - 1`` (its padding rows are computed and
    discarded), ``n_real`` counts the rows that are not padding."""
    out = []
    for start in range(0, n, size):
        real = list(range(start, min(start + size, n)))
        out.append((real + [n - 1] * (size - len(real)), len(real)))
    return out


def edit_images_batched(unet, vae, make_scheduler, source: torch.Tensor, cond: torch.Tensor,
                        null_cond: torch.Tensor, generators: Sequence[torch.Generator], *,
                        chunk: int | None, **kwargs) -> torch.Tensor:
    """``edit_images`` over fixed-size chunks (``chunk=None``: the whole batch at once, for GPUs);
    ``make_scheduler()`` gives a fresh scheduler per chunk. Padding rows get their own throw-away
    generators, so a real sample's generator is only ever drawn for that sample."""
    if chunk is None:
        return edit_images(unet, vae, make_scheduler(), source, cond, null_cond, generators, **kwargs)
    parts = []
    for idx, real in fixed_chunks(source.shape[0], chunk):
        gens = [generators[i] for i in idx[:real]]
        gens += [torch.Generator(device=source.device).manual_seed(0) for _ in idx[real:]]
        null = null_cond if null_cond.shape[0] == 1 else null_cond[idx]
        out = edit_images(unet, vae, make_scheduler(), source[idx], cond[idx], null, gens, **kwargs)
        parts.append(out[:real])
    return torch.cat(parts)
