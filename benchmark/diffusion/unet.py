"""InstructPix2Pix's UNet input surgery (Brooks et al. 2023, section 3.2; diffusers'
``train_instruct_pix2pix.py``): the first convolution takes the noisy latents *and* the source
image latents; the new input channels start at zero so the pretrained text-to-image behaviour is
kept at initialisation, and the old weights are copied unchanged."""

from __future__ import annotations

import contextlib

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


class SourceResidualUNet(torch.nn.Module):
    """``x0 = scaling_factor * v + UNet(z_t, v, c)`` for an x0-predicting UNet: the network learns
    the *change* to the source latents v (the last ``latent_channels`` input channels, zero when
    the image condition is dropped).

    Why (tiny presets only): with the exact pixel-unshuffle autoencoder, a plain 64-channel UNet
    had to squeeze 48 exact source channels through its first layer and regress them back; after
    750 steps its outputs were still blurred, colour-shifted copies (synth-ma5k l1 2.3x identity's,
    l1 outside the edit mask 0.11). With the residual, keeping the source is the zero function.
    The wrapped UNet is stored and loaded as is; this module adds no weights.
    """

    def __init__(self, unet: UNet2DConditionModel, latent_channels: int, scaling_factor: float):
        super().__init__()
        self.unet = unet
        self.latent_channels = latent_channels
        self.scaling_factor = scaling_factor

    @property
    def config(self):
        return self.unet.config

    @property
    def dtype(self):
        return self.unet.dtype

    def forward(self, sample, timestep, encoder_hidden_states, return_dict: bool = False):
        out = self.unet(sample, timestep, encoder_hidden_states=encoder_hidden_states,
                        return_dict=False)[0]
        source = sample[:, -self.latent_channels:]
        return (out + self.scaling_factor * source,)


def use_plain_attention(unet: UNet2DConditionModel) -> UNet2DConditionModel:
    """Give every attention layer diffusers' classic ``AttnProcessor`` (bmm + softmax) instead of
    the default SDPA one, in place; same function, different kernel.

    Why (tiny presets, bf16 training on the CPU): PyTorch's CPU flash-attention backward in bf16
    took half of a training step (23 ms per call on the tiny UNet's 64-token attention);
    measured on the 2-core CPU, batch 32: 436 ms per step in float32 (either processor), 418 ms with
    bf16 autocast and SDPA, 239 ms with bf16 autocast and this processor.
    """
    from diffusers.models.attention_processor import AttnProcessor

    unet.set_attn_processor(AttnProcessor())
    return unet


class InferenceUNet(torch.nn.Module):
    """A UNet whose weights and arithmetic are in ``compute_dtype`` (e.g. bfloat16), optionally
    ``torch.compile``d, behind a float32 interface: inputs are cast down, the prediction is cast
    back up, so the sampler's latents, the guidance arithmetic and a source residual stay float32.

    Why (tiny presets, CPU inference): on a CPU with native bf16 (AMX) InstructPix2Pix-tiny edits
    in 0.182 s per edit in bf16 against 0.282 s in float32, and about 0.1 s compiled (2-core CPU,
    batch 8, 20 steps; ``scripts/bench_edit_speed.py``), scoring like float32 on synth samples. Results
    differ in the last bits from float32 ones, so the adapters report it as their ``variant``.
    """

    def __init__(self, unet: UNet2DConditionModel, compute_dtype: torch.dtype = torch.float32,
                 compile: bool = False, gpu: bool = False):
        super().__init__()
        # nn.Module.to: diffusers' own .to() warns about casting outside from_pretrained
        self.unet = torch.nn.Module.to(unet, compute_dtype)
        self.compute_dtype = compute_dtype
        self._forward = self.unet
        self.compiled = bool(compile)
        self._freeze = bool(compile) and not gpu
        if compile and gpu:
            # CUDA graphs: an eager SD-v1.5 UNet step on an H100 is bound by kernel launches from
            # the host (see docs/speed.md); max-autotune's kernel search took minutes per shape there
            self._forward = torch.compile(self.unet, mode="reduce-overhead")
        elif compile:
            # Inductor's freezing (weights folded as constants, oneDNN prepacking; inference only,
            # switched on around each call in forward) with max-autotune and channels-last weights:
            # bf16 InstructPix2Pix-tiny 0.106-0.109 s per edit against 0.118-0.122 s with a plain
            # torch.compile (Intel 2-core CPU with AMX, batch 8, 20 steps; 0.21-0.25 s on a 2-core
            # AMD EPYC without AMX). The current (32, 64) UNet in float32 on that AMD EPYC:
            # 0.070-0.077 s per edit compiled against 0.106 s eager (plain compile 0.079-0.082 s).
            self.unet = self.unet.to(memory_format=torch.channels_last)
            self._forward = torch.compile(self.unet, mode="max-autotune-no-cudagraphs")

    @property
    def config(self):
        return self.unet.config

    @property
    def dtype(self):
        return torch.float32

    def forward(self, sample, timestep, encoder_hidden_states, return_dict: bool = False):
        # the option dict of torch.compile did not switch freezing on (measured); the config does
        freezing = torch._inductor.config.patch(freezing=True) if self._freeze else contextlib.nullcontext()
        with freezing:
            out = self._forward(sample.to(self.compute_dtype), timestep,
                                encoder_hidden_states=encoder_hidden_states.to(self.compute_dtype),
                                return_dict=False)[0]
        return (out.float(),)


INFERENCE_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class CompilerNotFoundError(FileNotFoundError):
    """``compile`` asked for on a CPU without a working C++ compiler (Inductor's CPU kernels are
    C++); the message names what to install."""


def require_cpp_compiler() -> str:
    """The C++ compiler Inductor will use on the CPU (``$CXX``, else ``g++``). Checked when the
    model loads: without it the first compiled call would fail deep inside Inductor, and every
    sample of the run would be recorded as failed with that trace."""
    from torch._inductor import config
    from torch._inductor.cpp_builder import get_cpp_compiler
    from torch._inductor.exc import InvalidCxxCompiler

    try:
        return get_cpp_compiler()
    except InvalidCxxCompiler:
        tried = ", ".join(str(c) for c in config.cpp.cxx if c) or "g++"
        raise CompilerNotFoundError(
            f"--compile on the CPU needs a C++ compiler for torch.compile and found none (tried "
            f"{tried}); install g++ (Debian: apt install g++), point $CXX at one, or drop --compile"
        ) from None


def for_inference(unet: UNet2DConditionModel, dtype: str = "float32", compile: bool = False,
                  device: str = "cpu"):
    """``unet`` as it will edit: unchanged for float32 without compilation (the default, and the
    only mode whose numbers match diffusers' pipeline), else wrapped in ``InferenceUNet``.
    ``compile`` on a CPU ``device`` first checks for a C++ compiler (``require_cpp_compiler``)."""
    if dtype not in INFERENCE_DTYPES:
        raise ValueError(f"unknown inference dtype {dtype!r}; use one of {', '.join(INFERENCE_DTYPES)}")
    if compile and str(device).startswith("cpu"):
        require_cpp_compiler()
    if dtype == "float32" and not compile:
        return unet
    return InferenceUNet(unet, INFERENCE_DTYPES[dtype], compile, gpu=str(device).startswith("cuda"))


def inference_variant(dtype: str = "float32", compile: bool = False) -> str | None:
    """The ``variant`` label of a non-default inference mode (``"bfloat16"``, ``"compiled"``,
    ``"bfloat16+compiled"``), None for float32 without compilation."""
    parts = [dtype] if dtype != "float32" else []
    return "+".join(parts + ["compiled"] * bool(compile)) or None
