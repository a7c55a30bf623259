"""SSIM between output and target, higher is better.

Convention: Wang et al. (2004) as implemented by ``skimage.metrics.structural_similarity`` with
the paper's settings: 11x11 Gaussian window with sigma 1.5 (``gaussian_weights=True``), K1 = 0.01,
K2 = 0.03, population covariance (``use_sample_covariance=False``), data range 1.0 on images in
[0, 1], computed per channel and averaged over channels; the mean SSIM map excludes the
5-pixel border where the window does not fit (skimage's crop). The output is resized to the target
size with PIL bicubic first (MagicBrush convention for the pixel metrics).
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity

from benchmark.metrics.base import Metric, MetricInput, aligned_pair

SSIM_KWARGS = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0,
                   K1=0.01, K2=0.03)


def ssim(preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-sample SSIM for NxCxHxW (or CxHxW) tensors in [0, 1]."""
    if preds.shape != targets.shape:
        raise ValueError(f"shape mismatch: {tuple(preds.shape)} vs {tuple(targets.shape)}")
    if preds.dim() == 3:
        preds, targets = preds[None], targets[None]
    scores = []
    for p, t in zip(preds, targets):
        a = p.double().permute(1, 2, 0).numpy()
        b = t.double().permute(1, 2, 0).numpy()
        scores.append(structural_similarity(a, b, channel_axis=-1, **SSIM_KWARGS))
    return torch.tensor(np.asarray(scores, dtype=np.float64))


class SSIM(Metric):
    key = "ssim"
    higher_is_better = True

    def score_one(self, item: MetricInput) -> float:
        out, tgt = aligned_pair(item.output, item.sample.target)
        return float(ssim(out, tgt)[0])
