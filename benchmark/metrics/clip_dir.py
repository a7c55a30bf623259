"""CLIP directional similarity: cos(img_out - img_src, txt_goal - txt_input), higher is better.

Convention (InstructPix2Pix ``metrics/clip_similarity.py``, ``ClipSimilarity``, default
``ViT-L/14``): images as [0, 1] tensors resized to 224x224 with
``F.interpolate(mode="bicubic", align_corners=False)`` (no crop, no antialiasing), CLIP mean/std,
``encode_image`` then divided by its L2 norm; captions through ``clip.tokenize(truncate=True)``
(longer captions are cut, as there), ``encode_text`` divided by its norm; the score is
``F.cosine_similarity(img_out - img_src, txt_goal - txt_input)`` (float32, eps 1e-8: an output
identical to its source, or identical captions, score 0). Needs input and goal captions.

Backbone role ``clip-large`` (``clip-vit-l-14``, or ``synth-clip`` on the synth backbones).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from benchmark.metrics.base import MetricInput
from benchmark.metrics.features import LearnedMetric


def clip_directional_similarity(src_img: torch.Tensor, out_img: torch.Tensor, src_txt: torch.Tensor,
                                goal_txt: torch.Tensor) -> torch.Tensor:
    """Per-sample directional similarity of NxD raw (unnormalised) CLIP embeddings."""
    n = lambda f: f / f.norm(dim=1, keepdim=True)  # noqa: E731
    return F.cosine_similarity(n(out_img) - n(src_img), n(goal_txt) - n(src_txt))


class CLIPDirectional(LearnedMetric):
    key = "clip_dir"
    higher_is_better = True
    requires = ("input_caption", "goal_caption")
    role = "clip-large"
    view = "ip2p"

    def score_applicable(self, items: Sequence[MetricInput]) -> list[float]:
        bb = self.model
        src = self.cache.image_vectors(bb, self.view, [it.sample.source for it in items], dataset_side=True)
        out = self.cache.image_vectors(bb, self.view, [it.output for it in items])
        t_in = self.cache.text_vectors(bb, [it.sample.input_caption for it in items], truncate=True)
        t_goal = self.cache.text_vectors(bb, [it.sample.goal_caption for it in items], truncate=True)
        return clip_directional_similarity(src, out, t_in, t_goal).tolist()
