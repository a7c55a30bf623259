"""L2: mean *squared* pixel difference between output and target, lower is better.

Convention (MagicBrush ``evaluation/image_eval.py``, ``eval_distance(metric='l2')``): their L2
is ``nn.MSELoss()`` over ToTensor images in [0, 1] (no square root), the output resized to the
target size with PIL bicubic first. We keep their name and their definition.
"""

from __future__ import annotations

import torch

from benchmark.metrics.base import Metric, MetricInput, aligned_pair


def l2_distance(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample mean (preds - targets)^2 for NxCxHxW (or CxHxW) tensors in [0, 1]."""
    if preds.shape != targets.shape:
        raise ValueError(f"shape mismatch: {tuple(preds.shape)} vs {tuple(targets.shape)}")
    sq = (preds.double() - targets.double()).pow(2)
    return sq.flatten(start_dim=1).mean(dim=1) if sq.dim() == 4 else sq.mean().reshape(1)


class L2(Metric):
    key = "l2"
    higher_is_better = False

    def score_one(self, item: MetricInput) -> float:
        out, tgt = aligned_pair(item.output, item.sample.target)
        return float(l2_distance(out, tgt)[0])
