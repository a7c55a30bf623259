"""PSNR in dB between output and target, higher is better.

Convention: per sample, ``10 * log10(data_range^2 / MSE)`` with data range 1.0 on ToTensor
images in [0, 1] (same as ``torchmetrics.functional.peak_signal_noise_ratio(data_range=1.0)``
per image), then averaged over samples. Deviation: identical images have infinite PSNR, which
cannot be averaged or written to JSON; we floor the MSE at 1e-10, so the maximum is 100 dB.
"""

from __future__ import annotations

import torch

from benchmark.metrics.base import Metric, MetricInput, aligned_pair
from benchmark.metrics.l2 import l2_distance

MSE_FLOOR = 1e-10


def psnr(preds: torch.Tensor, targets: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    mse = l2_distance(preds, targets).clamp_min(MSE_FLOOR)
    return 10.0 * torch.log10(torch.tensor(data_range, dtype=torch.float64) ** 2 / mse)


class PSNR(Metric):
    key = "psnr"
    higher_is_better = True

    def score_one(self, item: MetricInput) -> float:
        out, tgt = aligned_pair(item.output, item.sample.target)
        return float(psnr(out, tgt)[0])
