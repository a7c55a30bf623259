"""CLIP-S of the model's expressive instruction vs the input image (``clip_s_input``) and vs the
goal image (``clip_s_goal``), higher is better; MGIE's Fig. 4 measure of how well the derived
expressive instruction describes the picture before and after the edit.

Convention (CLIP-Score as ``torchmetrics.multimodal.CLIPScore`` computes it):
``max(100 * cos(image, text), 0)`` with OpenAI CLIP ViT-B/32, the image through CLIP's own
preprocessing (short side 224 bicubic, centre crop 224, CLIP mean/std), the text truncated to 77
tokens (torchmetrics truncates over-long captions, with a warning). The input image is the
sample's source, the goal image its target. NaN for samples whose model produced no expressive
instruction (only MLLM-guided editors do), and for ``clip_s_goal`` without a target.

Backbone role ``clip`` (shared with cvs and cts).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from benchmark.metrics.base import MetricInput
from benchmark.metrics.features import LearnedMetric, cosine


def clip_score(image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
    """Per-sample CLIP-Score, ``max(100 * cos, 0)`` (float64)."""
    return (100.0 * cosine(image_features, text_features)).clamp_min(0.0)


class _CLIPScoreExpressive(LearnedMetric):
    higher_is_better = True
    role = "clip"
    view = "clip"
    image_field = "source"

    def item_applicable(self, item: MetricInput) -> bool:
        return (isinstance(item.expressive, str) and bool(item.expressive.strip())
                and getattr(item.sample, self.image_field) is not None)

    def score_applicable(self, items: Sequence[MetricInput]) -> list[float]:
        bb = self.model
        img = self.cache.image_vectors(bb, self.view, [getattr(it.sample, self.image_field) for it in items],
                                       dataset_side=True)
        txt = self.cache.text_vectors(bb, [it.expressive for it in items], truncate=True,
                                      dataset_side=False)
        return clip_score(img, txt).tolist()


class CLIPScoreInput(_CLIPScoreExpressive):
    key = "clip_s_input"
    requires = ()
    image_field = "source"


class CLIPScoreGoal(_CLIPScoreExpressive):
    key = "clip_s_goal"
    requires = ("target",)
    image_field = "target"
