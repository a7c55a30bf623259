"""CTS (CLIP-T): CLIP similarity of the goal caption and the output image, x100, higher is better.

Convention (MagicBrush ``evaluation/image_eval.py``, ``eval_clip_t``): OpenAI CLIP ViT-B/32, the
output through CLIP's own preprocessing (short side 224 bicubic, centre crop 224, CLIP mean/std),
the caption through ``clip.tokenize`` (77 tokens, *no* truncation: a longer caption is a per-sample
error, as there), ``1 - scipy.spatial.distance.cosine(image, text)``. Reported as 100 x cosine so
it reads like the MGIE paper's CLIP-T (~30). Which caption is the goal caption (MagicBrush's local
or global descriptions, see MagicBrush issue #17) is the dataset option ``captions`` of the task;
the synth suite has one global caption per image. Deviation: the cosine is taken in float64.

Backbone role ``clip`` (shared with cvs and clip_s_*: the output's embedding is computed once).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from benchmark.metrics.base import MetricInput
from benchmark.metrics.features import LearnedMetric, cosine

SCALE = 100.0


def clip_text_similarity(image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
    """Per-sample 100 x cosine (float64) of NxD image and text embeddings."""
    return SCALE * cosine(image_features, text_features)


class CTS(LearnedMetric):
    key = "cts"
    higher_is_better = True
    requires = ("goal_caption",)
    role = "clip"
    view = "clip"

    def score_applicable(self, items: Sequence[MetricInput]) -> list[float]:
        bb = self.model
        img = self.cache.image_vectors(bb, self.view, [it.output for it in items])
        txt = self.cache.text_vectors(bb, [it.sample.goal_caption for it in items], truncate=False)
        return clip_text_similarity(img, txt).tolist()
