"""L1 inside and outside the edit mask: does a model edit the right region and keep the rest?

``l1_in_mask``: mean |output - target| over the pixels (all three channels) where the mask is
white; ``l1_out_mask``: the same over the pixels where it is black. Lower is better for both.
Pixel convention as ``l1`` (ToTensor images in [0, 1], output resized to the target size with
PIL bicubic). NaN (not scored) when the sample has no mask or the region is empty.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from benchmark.metrics.base import Metric, MetricInput, aligned_pair


def masked_l1(preds: torch.Tensor, targets: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Per-sample mean |preds - targets| over ``region`` (NxHxW or HxW bool), NaN if empty."""
    if preds.dim() == 3:
        preds, targets, region = preds[None], targets[None], region[None]
    diff = (preds.double() - targets.double()).abs().mean(dim=1)  # mean over channels: NxHxW
    region = region.to(torch.bool)
    count = region.flatten(1).sum(dim=1)
    total = (diff * region).flatten(1).sum(dim=1)
    out = total / count.clamp_min(1)
    return torch.where(count > 0, out, torch.full_like(out, math.nan))


def mask_region(mask_image, size) -> torch.Tensor:
    """HxW bool: the white pixels of a mask image brought to ``size`` (nearest, threshold 127)."""
    if mask_image.size != size:
        mask_image = mask_image.resize(size, resample=0)  # nearest: a mask stays binary
    return torch.from_numpy(np.asarray(mask_image.convert("L")) > 127)


class L1InMask(Metric):
    key = "l1_in_mask"
    higher_is_better = False
    requires = ("target", "mask")

    def score_one(self, item: MetricInput) -> float:
        out, tgt = aligned_pair(item.output, item.sample.target)
        return float(masked_l1(out, tgt, mask_region(item.sample.mask, item.sample.target.size))[0])


class L1OutMask(Metric):
    key = "l1_out_mask"
    higher_is_better = False
    requires = ("target", "mask")

    def score_one(self, item: MetricInput) -> float:
        out, tgt = aligned_pair(item.output, item.sample.target)
        return float(masked_l1(out, tgt, ~mask_region(item.sample.mask, item.sample.target.size))[0])
