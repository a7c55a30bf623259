"""L1: mean absolute pixel difference between output and target, lower is better.

Convention (MagicBrush ``evaluation/image_eval.py``, ``eval_distance(metric='l1')``):
``nn.L1Loss()`` over ToTensor images in [0, 1] (mean over channels and pixels), the output
resized to the target size with PIL bicubic first. Averaged per sample, then over samples.
"""

from __future__ import annotations

import torch

from benchmark.metrics.base import Metric, MetricInput, aligned_pair


def l1_distance(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample mean |preds - targets| for NxCxHxW (or CxHxW) tensors in [0, 1]."""
    if preds.shape != targets.shape:
        raise ValueError(f"shape mismatch: {tuple(preds.shape)} vs {tuple(targets.shape)}")
    diff = (preds.double() - targets.double()).abs()
    return diff.flatten(start_dim=1).mean(dim=1) if diff.dim() == 4 else diff.mean().reshape(1)


class L1(Metric):
    key = "l1"
    higher_is_better = False

    def score_one(self, item: MetricInput) -> float:
        out, tgt = aligned_pair(item.output, item.sample.target)
        return float(l1_distance(out, tgt)[0])
