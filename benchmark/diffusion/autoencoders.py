"""An exact autoencoder with the ``AutoencoderKL`` interface, for the tiny presets.

Why not a small learned ``AutoencoderKL``: trained for minutes on a CPU it has a reconstruction
floor (L1 ~0.11 on the synth suite, measured before this project started) far above the edits
the synth tasks ask for, so every diffusion model would fail for a reason unrelated to editing.
``pixel_unshuffle`` is lossless (decode(encode(x)) == x exactly), has no weights to train, and
still gives the UNet a smaller spatial grid with more channels, like a VAE latent.

Interface kept from ``diffusers.AutoencoderKL``: ``encode(x).latent_dist`` with ``mode()`` /
``sample()`` (a zero-variance Gaussian), ``decode(z).sample``, ``config.latent_channels``,
``config.scaling_factor`` and ``config.block_out_channels`` (whose length gives diffusers
pipelines their ``vae_scale_factor = 2 ** (len - 1)``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin


class PixelUnshuffleAutoencoder(ModelMixin, ConfigMixin):
    """``x`` in [-1, 1], B x 3 x H x W  <->  latents B x 3*f^2 x H/f x W/f (exact)."""

    @register_to_config
    def __init__(self, factor: int = 2, in_channels: int = 3, scaling_factor: float = 1.0,
                 latent_channels: int | None = None, block_out_channels: tuple[int, ...] | None = None):
        super().__init__()
        if factor < 1 or factor & (factor - 1):
            raise ValueError(f"factor must be a power of two, got {factor}")
        channels = in_channels * factor * factor
        if latent_channels not in (None, channels):
            raise ValueError(f"latent_channels must be {channels} for factor {factor}")
        self.register_to_config(latent_channels=channels,
                                block_out_channels=[channels] * (int(math.log2(factor)) + 1))
        # A buffer so diffusers' ModelMixin can report device and dtype of a weightless model.
        self.register_buffer("_anchor", torch.zeros(1), persistent=False)

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        mean = F.pixel_unshuffle(x, self.config.factor)
        # logvar = -inf would make std exactly 0; deterministic=True does that explicitly.
        dist = DiagonalGaussianDistribution(torch.cat([mean, torch.zeros_like(mean)], dim=1),
                                            deterministic=True)
        return AutoencoderKLOutput(latent_dist=dist) if return_dict else (dist,)

    def decode(self, z: torch.Tensor, return_dict: bool = True, generator=None):
        x = F.pixel_shuffle(z, self.config.factor)
        return DecoderOutput(sample=x) if return_dict else (x,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x).latent_dist.mode()).sample
