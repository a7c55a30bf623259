"""Inception-v3 as the FID reference graph (TF "2015-12-05" weights) and TF1-style resizing.

The network is torchvision's Inception-v3 layout with the three changes every PyTorch port of the
TensorFlow FID graph makes (pytorch-fid, torch-fidelity): average pools inside ``Mixed_5*``,
``Mixed_6b-e`` and ``Mixed_7b`` do not count the zero padding; ``Mixed_7c`` pools its pool branch
with a max instead of an average; the classifier has 1008 outputs. Module names match
torch-fidelity's ``FeatureExtractorInceptionV3`` and pytorch-fid's ``FIDInceptionV3``, so their
converted weights file ``*inception-2015-12-05-6726825d.pth`` loads as is.

Input convention (torch-fidelity; TTUR feeds the same to the TF graph): uint8 RGB, cast to
float, resized to 299x299 with TensorFlow 1.x's bilinear resize (``align_corners=False``: source
coordinate = destination index x in/out, no half-pixel offset, no antialiasing), then
``(x - 128) / 128``. Features: the 2048-d global average pool ("pool3"), float32.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import inception as tvi

INPUT_SIZE = 299


def resize_bilinear_tf1(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TensorFlow 1.x ``resize_bilinear(align_corners=False)`` of an NxCxHxW float tensor."""
    if x.dim() != 4 or not torch.is_floating_point(x):
        raise ValueError("expected a float NxCxHxW tensor")
    out_h, out_w = size
    in_h, in_w = x.shape[2], x.shape[3]

    def axis(n_out: int, n_in: int):
        src = torch.arange(n_out, dtype=torch.float32) * torch.tensor(n_in / n_out, dtype=torch.float32)
        lo = src.long()
        hi = (lo + 1).clamp_max(n_in - 1)
        return lo, hi, (src - lo.float()).to(x.dtype)

    ylo, yhi, dy = axis(out_h, in_h)
    xlo, xhi, dx = axis(out_w, in_w)
    top, bottom = x[:, :, ylo, :], x[:, :, yhi, :]
    tl, tr, bl, br = top[..., xlo], top[..., xhi], bottom[..., xlo], bottom[..., xhi]
    dx = dx.view(1, 1, 1, out_w)
    upper = tl + (tr - tl) * dx
    lower = bl + (br - bl) * dx
    return upper + (lower - upper) * dy.view(1, 1, out_h, 1)


class _A(tvi.InceptionA):
    def _forward(self, x):  # torchvision's blocks call self._forward from forward
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
        return [b1, b5, b3, bp]


class _C(tvi.InceptionC):
    def _forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
        return [b1, b7, bd, bp]


class _E(tvi.InceptionE):
    def __init__(self, in_channels: int, max_pool: bool):
        super().__init__(in_channels)
        self.max_pool = max_pool

    def _forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = (F.max_pool2d(x, 3, 1, 1) if self.max_pool
                  else F.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
        return [b1, b3, bd, self.branch_pool(pooled)]


class FIDInceptionV3(nn.Module):
    """Inception-v3 of the TF FID graph; ``forward(uint8 or float 0..255 NxCxHxW) -> N x 2048``."""

    def __init__(self):
        super().__init__()
        conv = tvi.BasicConv2d  # conv (no bias) + BatchNorm(eps=0.001) + ReLU
        self.Conv2d_1a_3x3 = conv(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = conv(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = conv(32, 64, kernel_size=3, padding=1)
        self.MaxPool_1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = conv(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = conv(80, 192, kernel_size=3)
        self.MaxPool_2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = _A(192, pool_features=32)
        self.Mixed_5c = _A(256, pool_features=64)
        self.Mixed_5d = _A(288, pool_features=64)
        self.Mixed_6a = tvi.InceptionB(288)
        self.Mixed_6b = _C(768, channels_7x7=128)
        self.Mixed_6c = _C(768, channels_7x7=160)
        self.Mixed_6d = _C(768, channels_7x7=160)
        self.Mixed_6e = _C(768, channels_7x7=192)
        self.Mixed_7a = tvi.InceptionD(768)
        self.Mixed_7b = _E(1280, max_pool=False)
        self.Mixed_7c = _E(2048, max_pool=True)
        self.AvgPool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(2048, 1008)

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        """0..255 values (any size) -> the graph's normalised 299x299 input."""
        x = resize_bilinear_tf1(x.float(), (INPUT_SIZE, INPUT_SIZE))
        return (x - 128) / 128

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised 299x299 input -> 2048-d pool3 features."""
        for name in ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1",
                     "Conv2d_4a_3x3", "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
                     "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b",
                     "Mixed_7c", "AvgPool"):
            x = getattr(self, name)(x)
        return torch.flatten(x, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool3(self.prepare(x))
