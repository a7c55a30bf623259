"""DINO: cosine similarity of DINO ViT-S/16 features of output and target, higher is better.

Convention (MagicBrush ``evaluation/image_eval.py``, ``--metric dino``): the torch.hub
``dino_vits16`` model (its output is the final layer's layer-normed CLS token), each image RGB,
resized so the short side is 256 (bicubic), centre-cropped to 224, ImageNet mean/std; then
``1 - scipy.spatial.distance.cosine``. Deviation: the cosine is taken in float64 on the float32
features (scipy on the float32 vectors agrees within ~1e-7).

Backbone role ``dino`` (``dino-vits16``, or ``synth-dino`` on the synth backbones; synth-dino
reads edge maps, so on the synth backbones ``dino`` compares outlines and is blind to colour and
global photometric edits: see ``backbones/synth.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from benchmark.metrics.base import MetricInput
from benchmark.metrics.features import LearnedMetric, cosine


def dino_similarity(output_features: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
    """Per-sample cosine (float64) of NxD DINO features."""
    return cosine(output_features, target_features)


class DINO(LearnedMetric):
    key = "dino"
    higher_is_better = True
    requires = ("target",)
    role = "dino"
    view = "dino"

    def score_applicable(self, items: Sequence[MetricInput]) -> list[float]:
        bb = self.model
        out = self.cache.image_vectors(bb, self.view, [it.output for it in items])
        tgt = self.cache.image_vectors(bb, self.view, [it.sample.target for it in items], dataset_side=True)
        return dino_similarity(out, tgt).tolist()
