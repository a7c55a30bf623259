"""LPIPS v0.1 (AlexNet) feature network, and its uncalibrated synth counterpart.

LPIPS (Zhang et al. 2018; the ``lpips`` package, v0.1): inputs in [-1, 1] are shifted and scaled
by the package's ``ScalingLayer`` constants, passed through torchvision's AlexNet ``features`` and
tapped after each of its five ReLUs (64, 192, 384, 256, 256 channels). Each tap is unit-normalised
across channels (``x / (sqrt(sum x^2) + 1e-10)``). The distance of two images is, per tap, the
squared difference weighted by a learned non-negative 1x1 conv ("lin" layer, v0.1 weights shipped
inside the ``lpips`` package), averaged over space, then summed over taps.

The backbone returns the normalised taps (so the target's are computed once and cached); the
metric applies the lin layers to the squared difference.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
ALEX_CHANNELS = (64, 192, 384, 256, 256)
ALEX_TAPS = (2, 5, 8, 10, 12)  # slice ends in AlexNet.features: after relu1 .. relu5
EPS = 1e-10


def normalize_channels(x: torch.Tensor) -> torch.Tensor:
    return x / (torch.sqrt(torch.sum(x ** 2, dim=1, keepdim=True)) + EPS)


class AlexTaps(nn.Module):
    """AlexNet ``features`` split at the five ReLUs; ``forward`` returns the normalised taps."""

    def __init__(self, features: nn.Sequential):
        super().__init__()
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))
        starts = (0,) + ALEX_TAPS[:-1]
        self.slices = nn.ModuleList(nn.Sequential(*[features[i] for i in range(a, b)])
                                    for a, b in zip(starts, ALEX_TAPS))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = (x - self.shift) / self.scale
        taps = []
        for s in self.slices:
            h = s(h)
            taps.append(normalize_channels(h))
        return taps


class LinLayers(nn.Module):
    """The v0.1 "lin" heads: one bias-free 1x1 conv per tap (``lin{k}.model.1.weight`` in the file)."""

    def __init__(self, channels: Sequence[int] = ALEX_CHANNELS):
        super().__init__()
        self.weights = nn.ParameterList(nn.Parameter(torch.zeros(1, c, 1, 1)) for c in channels)

    @classmethod
    def from_lpips_file(cls, path, channels: Sequence[int] = ALEX_CHANNELS) -> "LinLayers":
        state = torch.load(path, map_location="cpu", weights_only=True)
        layers = cls(channels)
        for k, p in enumerate(layers.weights):
            p.data.copy_(state[f"lin{k}.model.1.weight"])
        return layers.eval().requires_grad_(False)

    @classmethod
    def uniform(cls, channels: Sequence[int]) -> "LinLayers":
        """Uncalibrated: every channel weighs 1/C (a plain mean of squared differences)."""
        layers = cls(channels)
        for p, c in zip(layers.weights, channels):
            p.data.fill_(1.0 / c)
        return layers.eval().requires_grad_(False)

    def forward(self, taps_a: Sequence[torch.Tensor], taps_b: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-pair distance (N,) from two lists of normalised taps."""
        total = None
        for w, a, b in zip(self.weights, taps_a, taps_b):
            d = F.conv2d((a - b) ** 2, w).mean(dim=(2, 3), keepdim=True)
            total = d if total is None else total + d
        return total.flatten()
