"""The InstructPix2Pix training step, shared by every diffusion editor here.

Conventions of diffusers' ``examples/instruct_pix2pix/train_instruct_pix2pix.py`` (after Brooks
et al. 2023, section 3.2):
- target latents: ``vae.encode(target).latent_dist.sample() * scaling_factor``;
- source latents: ``vae.encode(source).latent_dist.mode()``, unscaled, concatenated to the noisy
  latents along channels;
- DDPM forward noising at a uniformly drawn timestep (or one drawn with ``timestep_bias_weights``,
  the ``--timestep_bias_strategy`` of diffusers' SDXL training script); the loss is the MSE to the
  scheduler's prediction target (ε, v or x0);
- conditioning dropout with probability p = 0.05 each: one uniform draw r per sample;
  r < 2p drops the instruction (replaced by the null condition), p <= r < 3p drops the image
  (zeroed latents) — so 5% text only, 5% both, 5% image only, as the paper says. An optional
  extra share q of text-only drops takes 3p <= r < 3p + q (q = 0 is the paper's scheme, same draws).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def conditioning_dropout(cond: torch.Tensor, null_cond: torch.Tensor, image_latents: torch.Tensor,
                         generator: torch.Generator | None, p: float = 0.05,
                         return_dropped_image: bool = False, extra_text_p: float = 0.0):
    """Apply InstructPix2Pix's conditioning dropout; returns (cond, image_latents), plus the
    per-sample boolean "image dropped" mask when ``return_dropped_image``. ``extra_text_p`` drops
    the instruction alone in that many more samples (they train the s(z, v, ∅) branch that eq. 5's
    αX guidance extrapolates from)."""
    bsz = cond.shape[0]
    if not 0 <= 3 * p + extra_text_p <= 1:
        raise ValueError(f"dropout shares must sum to at most 1 (p={p}, extra_text_p={extra_text_p})")
    r = torch.rand(bsz, generator=generator, device="cpu").to(cond.device)
    drop_text = ((r < 2 * p) | ((r >= 3 * p) & (r < 3 * p + extra_text_p))).view(bsz, 1, 1)
    cond = torch.where(drop_text, null_cond.expand_as(cond).to(cond.dtype), cond)
    dropped_image = (r >= p) & (r < 3 * p)
    keep_image = 1.0 - dropped_image.to(image_latents.dtype)
    out = cond, image_latents * keep_image.view(bsz, 1, 1, 1)
    return (*out, dropped_image) if return_dropped_image else out


def timestep_bias_weights(num_timesteps: int, strategy: str = "none", multiplier: float = 1.0,
                          portion: float = 0.25) -> torch.Tensor:
    """Sampling weights over training timesteps, as ``generate_timestep_weights`` in diffusers'
    ``train_text_to_image_sdxl.py``: ``later`` / ``earlier`` multiply the weight of the last / first
    ``portion`` of the timesteps (the noisiest / cleanest) by ``multiplier``; ``none`` is uniform."""
    if strategy not in ("none", "later", "earlier"):
        raise ValueError(f"unknown timestep bias strategy {strategy!r} (none, later, earlier)")
    weights = torch.ones(num_timesteps)
    if strategy == "none":
        return weights / weights.sum()
    n = int(num_timesteps * portion)
    if not 0 < n <= num_timesteps:
        raise ValueError(f"timestep bias portion must be in (0, 1], got {portion}")
    if strategy == "later":
        weights[-n:] *= multiplier
    else:
        weights[:n] *= multiplier
    return weights / weights.sum()


def kept_latent_mask(vae, source: torch.Tensor, target: torch.Tensor, latent_shape,
                     tol: float = 1e-3) -> torch.Tensor:
    """1 where a latent element depends only on pixels the edit leaves unchanged (|source - target|
    <= ``tol`` in [-1, 1]), else 0; shaped like the latents. Exact per element for the
    pixel-unshuffle autoencoder (an element is one pixel's channel); for a convolutional VAE, a
    latent cell is kept when every pixel under it is (all its channels then)."""
    from benchmark.diffusion.autoencoders import PixelUnshuffleAutoencoder

    same = ((source - target).abs() <= tol).float()
    factor = source.shape[-1] // latent_shape[-1]
    if isinstance(vae, PixelUnshuffleAutoencoder):
        return F.pixel_unshuffle(same, factor)
    cells = -F.max_pool2d(-same.amin(dim=1, keepdim=True), factor)  # min-pool: all pixels kept
    return cells.expand(latent_shape)


def diffusion_loss(unet, vae, noise_scheduler, source: torch.Tensor, target: torch.Tensor,
                   cond: torch.Tensor, null_cond: torch.Tensor, generator: torch.Generator | None,
                   dropout_p: float = 0.05, timestep_weights: torch.Tensor | None = None,
                   dropped_image_weight: float = 1.0, extra_text_dropout: float = 0.0,
                   kept_weight: float = 1.0) -> torch.Tensor:
    """One InstructPix2Pix loss on a batch (images B x 3 x H x W in [-1, 1]); timesteps uniform, or
    drawn from ``timestep_weights`` (see ``timestep_bias_weights``).

    ``kept_weight`` (1 = the plain MSE): in a sample whose edit changes most of its latent
    elements, the elements it leaves unchanged (``kept_latent_mask``) weigh that many times the
    changed ones, renormalised so the sample keeps its total weight; samples that keep most of the
    image are left as they are. Why it exists: a background swap keeps a few percent of its pixels
    (the objects), too small a share of the loss for a tiny model to learn to keep them
    (docs/tiny-models.md, "Background swaps").

    ``dropped_image_weight`` (1 = InstructPix2Pix's plain MSE) scales the loss of the samples whose
    image was dropped. Why it exists: a model trained from scratch has no text-to-image prior, so
    those samples ask it to draw a whole scene from an edit instruction; their loss near pure
    noise is irreducible and dwarfs an edit's (docs/tiny-models.md, "What stops the edit from being learnt").
    """
    latents = vae.encode(target).latent_dist.sample(generator=generator) * vae.config.scaling_factor
    image_latents = vae.encode(source).latent_dist.mode()
    kept = kept_latent_mask(vae, source, target, latents.shape) if kept_weight != 1.0 else None
    noise = torch.randn(latents.shape, generator=generator, device="cpu").to(latents)
    bsz = latents.shape[0]
    if timestep_weights is None:
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (bsz,),
                                  generator=generator, device="cpu")
    else:
        timesteps = torch.multinomial(timestep_weights, bsz, replacement=True, generator=generator)
    timesteps = timesteps.to(latents.device)
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    cond, image_latents, dropped_image = conditioning_dropout(
        cond, null_cond, image_latents, generator, dropout_p, return_dropped_image=True,
        extra_text_p=extra_text_dropout)
    pred = unet(torch.cat([noisy, image_latents], dim=1), timesteps,
                encoder_hidden_states=cond, return_dict=False)[0]
    kind = noise_scheduler.config.prediction_type
    if kind == "epsilon":
        goal = noise
    elif kind == "v_prediction":
        goal = noise_scheduler.get_velocity(latents, noise, timesteps)
    elif kind == "sample":
        goal = latents
    else:
        raise ValueError(f"unsupported prediction_type {kind!r}")
    if dropped_image_weight == 1.0 and kept is None:
        return F.mse_loss(pred.float(), goal.float())
    err = F.mse_loss(pred.float(), goal.float(), reduction="none")
    if kept is not None:
        # only where the edit changes most of the image: weighting every sample's kept elements
        # made local edits too timid (docs/tiny-models.md, "Background swaps")
        mostly_changed = (kept.mean(dim=(1, 2, 3), keepdim=True) < 0.5).to(err)
        w = 1.0 + (kept_weight - 1.0) * kept.to(err) * mostly_changed
        err = err * (w / w.mean(dim=(1, 2, 3), keepdim=True))
    per_sample = err.mean(dim=(1, 2, 3))
    weights = torch.where(dropped_image, dropped_image_weight, 1.0).to(per_sample)
    return (per_sample * weights).mean()


def resolve_recipe(defaults: dict, overrides: dict | None = None, **explicit) -> dict:
    """A training recipe: ``defaults``, then ``overrides`` (``--recipe KEY=VALUE``; an unknown key
    is an error, not a silent no-op), then the explicit command-line values that are not None."""
    unknown = set(overrides or {}) - set(defaults)
    if unknown:
        raise ValueError(f"unknown recipe key(s) {sorted(unknown)}; known: {sorted(defaults)}")
    recipe = {**defaults, **{k: _as_default_type(k, v, defaults[k]) for k, v in (overrides or {}).items()}}
    recipe.update({k: v for k, v in explicit.items() if v is not None})
    return recipe


def _as_default_type(key: str, value, default):
    """A number-valued recipe entry given as text becomes that number. Why: the CLI reads
    ``--recipe KEY=VALUE`` as YAML, and YAML 1.1 reads ``5e-4`` (no dot) as a string, which the
    optimizer would only reject deep inside torch."""
    if isinstance(value, str) and isinstance(default, (int, float)) and not isinstance(default, bool):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"recipe {key} takes a number (default {default!r}), got {value!r}") from None
        if isinstance(default, int) and number.is_integer():
            return int(number)
        return number
    return value


def autocast_for(recipe: dict, device_type: str = "cpu"):
    """The autocast context of a recipe's ``mixed_precision`` ("no" or "bf16"; anything else is an
    error): bf16 autocast keeps weights and optimizer state in float32."""
    mode = recipe.get("mixed_precision", "no")
    if mode not in ("no", "bf16"):
        raise ValueError(f"mixed_precision must be 'no' or 'bf16', got {mode!r}")
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=mode == "bf16")


# --------------------------------------------------------------------------- full-size runs
def fresh_accelerator(**kwargs):
    """An ``Accelerator`` built from a clean state: accelerate keeps its state process-wide and
    refuses a second one with another precision, and a process may train twice (tests, sweeps).

    The distributed setup (``PartialState``) is kept unless it sits on another kind of device
    than the one asked for: it holds the device, so a CPU run after a GPU run in the same process
    trained on the GPU (seen on an H100 machine: ``device="cpu"`` runs that did not repeat)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState

    kept = PartialState._shared_state.get("device")
    moved = kept is not None and (kept.type == "cpu") != bool(kwargs.get("cpu", False))
    AcceleratorState._reset_state(reset_partial_state=moved)
    return Accelerator(**kwargs)


def batch_plan(recipe: dict) -> tuple[int, int, int]:
    """(per-device batch, gradient-accumulation steps, processes) of a full-size recipe: batch =
    per-device batch x processes (accelerate's ``WORLD_SIZE``) x accumulation."""
    import os

    procs = int(os.environ.get("WORLD_SIZE", "1"))
    per_device = min(recipe["per_device_batch_size"], recipe["batch_size"])
    return per_device, max(1, recipe["batch_size"] // (per_device * procs)), procs


def stream_seed(seed: int, k: int, rank: int) -> int:
    """The noise generator's seed for micro-batch k of a full-size run on process ``rank``: a
    function of (seed, k, rank) only, so a resumed run repeats the uninterrupted one's draws."""
    import numpy as np

    return int(np.random.SeedSequence([seed, k, rank]).generate_state(1)[0])


def draw_pairs(pairs, n: int, rng, eligible=None, max_failures: int = 100) -> list:
    """``n`` readable samples drawn with replacement from ``pairs`` (``ipr2pr.TrainingPairs``;
    ``eligible``: the indices allowed, default all), read as drawn. A pair that cannot be read is
    skipped and another drawn from the same ``rng`` (so the batch stays a function of the rng's
    seed); ``max_failures`` in one batch means the data is broken: one clear error."""
    from benchmark.api import EditSample

    size = len(pairs) if eligible is None else len(eligible)
    if size == 0:
        raise ValueError("no training pairs to draw from")
    out, failures = [], []
    while len(out) < n:
        j = int(rng.integers(0, size))
        i = j if eligible is None else int(eligible[j])
        item = pairs.pair(i)
        if isinstance(item, EditSample):
            out.append((i, item))
        else:
            failures.append(f"{item.id}: {item.error}")
            if len(failures) >= max_failures:
                raise ValueError(f"{len(failures)} unreadable training pairs in one batch, e.g. {failures[0]}")
    return out
