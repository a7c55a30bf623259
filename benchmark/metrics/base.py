"""What every metric shares: the per-sample input, the stateful class, pixel conversion.

Following torchmetrics, each metric module has a functional core (pure tensor -> tensor of
per-sample scores) and a class with ``update``/``compute``/``reset`` and ``higher_is_better``.
The runner needs per-sample scores (for seeds, categories and CIs), so the class also exposes
``score(items)`` which returns one float per item (NaN when the item lacks what the metric needs,
e.g. no mask).

Pixel convention (MagicBrush ``evaluation/image_eval.py``): both images as
``torchvision.transforms.ToTensor()`` would give them (float32 in [0, 1], CxHxW); when the output
size differs from the target's, the output is resized to the target size with PIL bicubic first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from PIL import Image

from benchmark.api import EditSample

__all__ = ["MetricInput", "Metric", "to_tensor", "aligned_pair"]


@dataclass(frozen=True)
class MetricInput:
    """One scored edit: the model output, the sample it answers, and the model's expressive text."""

    output: Image.Image
    sample: EditSample
    expressive: str | None = None


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> float32 CxHxW in [0, 1], exactly as ``torchvision.transforms.ToTensor``."""
    arr = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255.0)


def aligned_pair(output: Image.Image, target: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
    """Output and target tensors at the target's size (MagicBrush: ``gen.resize(gt.size)``)."""
    if output.size != target.size:
        output = output.resize(target.size, Image.BICUBIC)
    return to_tensor(output), to_tensor(target)


class Metric:
    """Base class. Subclasses set ``key``, ``higher_is_better``, ``requires`` and ``score_one``.

    Set-level metrics (``set_level = True``, e.g. FID) compare the distribution of a seed's outputs
    with that of the targets: ``score(items)`` gives every applicable item the one value of the
    whole set, so the per-seed mean is that value; the runner never scores such a metric on a
    subset to find a failing sample, and per-category breakdowns leave it out.

    Learned metrics (``benchmark.metrics.features.LearnedMetric``) get the run's backbone choice
    and feature cache through ``bind(context)``; for other metrics ``bind`` does nothing.
    """

    key: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False
    requires: ClassVar[tuple[str, ...]] = ("target",)
    backbone: ClassVar[str | None] = None
    backbone_sha256: ClassVar[str | None] = None
    set_level: ClassVar[bool] = False

    def __init__(self) -> None:
        self.reset()

    def bind(self, context: object) -> None:
        """Receive the run's shared metric context (backbones, feature cache); no-op here."""

    def reset(self) -> None:
        self._scores: list[float] = []

    def applicable(self, sample: EditSample) -> bool:
        return all(getattr(sample, field) is not None for field in self.requires)

    def score_one(self, item: MetricInput) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, items: Sequence[MetricInput]) -> list[float]:
        return [self.score_one(it) if self.applicable(it.sample) else math.nan for it in items]

    def update(self, items: Sequence[MetricInput]) -> None:
        self._scores.extend(self.score(items))

    def compute(self) -> float:
        vals = [v for v in self._scores if not math.isnan(v)]
        return float(np.mean(vals)) if vals else math.nan

    def describe(self) -> dict:
        info = {"higher_is_better": self.higher_is_better, "backbone": self.backbone,
                "backbone_sha256": self.backbone_sha256}
        if self.set_level:
            info["set_level"] = True
        return info
