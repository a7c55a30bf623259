"""InstructPix2Pix's UNet input surgery (Brooks et al. 2023, section 3.2; diffusers'
``train_instruct_pix2pix.py``): the first convolution takes the noisy latents *and* the source
image latents; the new input channels start at zero so the pretrained text-to-image behaviour is
kept at initialisation, and the old weights are copied unchanged."""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel


def expand_conv_in(unet: UNet2DConditionModel, extra_channels: int | None = None) -> UNet2DConditionModel:
    """Widen ``unet.conv_in`` by ``extra_channels`` (default: as many as it has) zero-initialised
    input channels, in place; updates ``unet.config.in_channels``."""
    old = unet.conv_in
    extra = old.in_channels if extra_channels is None else extra_channels
    new = torch.nn.Conv2d(old.in_channels + extra, old.out_channels, old.kernel_size, old.stride,
                          old.padding, dtype=old.weight.dtype, device=old.weight.device)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels].copy_(old.weight)
        new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=old.in_channels + extra)
    return unet
