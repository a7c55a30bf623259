"""CVS (CLIP-I): cosine similarity of CLIP image embeddings of output and target, higher is better.

Convention (MagicBrush ``evaluation/image_eval.py``, ``eval_clip_i``): OpenAI CLIP ViT-B/32, each
image through CLIP's own preprocessing (``clip.load``'s transform: RGB, resize the short side to 224
with bicubic, centre crop 224, CLIP mean/std), ``encode_image`` without normalisation, then
``1 - scipy.spatial.distance.cosine(out, tgt)``. No resizing of the output to the target size is
needed (each image is preprocessed on its own). Deviation: the cosine is taken in float64 on the
float32 embeddings (scipy on the float32 vectors agrees within ~1e-7).

Backbone role ``clip`` (``clip-vit-b-32``, or ``synth-clip`` on the synth backbones).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from benchmark.metrics.base import MetricInput
from benchmark.metrics.features import LearnedMetric, cosine


def clip_image_similarity(output_features: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
    """Per-sample cosine (float64) of NxD image embeddings."""
    return cosine(output_features, target_features)


class CVS(LearnedMetric):
    key = "cvs"
    higher_is_better = True
    requires = ("target",)
    role = "clip"
    view = "clip"

    def score_applicable(self, items: Sequence[MetricInput]) -> list[float]:
        bb = self.model
        out = self.cache.image_vectors(bb, self.view, [it.output for it in items])
        tgt = self.cache.image_vectors(bb, self.view, [it.sample.target for it in items], dataset_side=True)
        return clip_image_similarity(out, tgt).tolist()
