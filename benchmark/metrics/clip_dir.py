"""CLIP directional similarity: cos(img_out - img_src, txt_goal - txt_input), higher is better;
and its companion from the same reference, ``clip_img_input``: cos(img_src, img_out), how much of
the input an edit keeps (the y axis of InstructPix2Pix's Fig. 7 and MGIE's Fig. 3 trade-off plots,
``editbench sweep``), higher is better.

Convention (InstructPix2Pix ``metrics/clip_similarity.py``, ``ClipSimilarity``, default
``ViT-L/14``): images as [0, 1] tensors resized to 224x224 with
``F.interpolate(mode="bicubic", align_corners=False)`` (no crop, no antialiasing), CLIP mean/std,
``encode_image`` then divided by its L2 norm; captions through ``clip.tokenize(truncate=True)``
(longer captions are cut, as there), ``encode_text`` divided by its norm; the score is
``F.cosine_similarity(img_out - img_src, txt_goal - txt_input)`` (float32, eps 1e-8: an output
identical to its source, or identical captions, score 0). Needs input and goal captions.
``clip_img_input`` is that reference's ``sim_image``: ``F.cosine_similarity`` of the two
normalised image embeddings (the same features, so it costs nothing once ``clip_dir`` has run);
needs no captions.

Backbone role ``clip-large`` (``clip-vit-l-14``, or ``synth-clip`` on the synth backbones).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from benchmark.metrics.base import MetricInput
from benchmark.metrics.features import LearnedMetric


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f / f.norm(dim=1, keepdim=True)


def clip_directional_similarity(src_img: torch.Tensor, out_img: torch.Tensor, src_txt: torch.Tensor,
                                goal_txt: torch.Tensor) -> torch.Tensor:
    """Per-sample directional similarity of NxD raw (unnormalised) CLIP embeddings."""
    return F.cosine_similarity(_unit(out_img) - _unit(src_img), _unit(goal_txt) - _unit(src_txt))


def clip_image_similarity(src_img: torch.Tensor, out_img: torch.Tensor) -> torch.Tensor:
    """Per-sample cos(img_src, img_out) of NxD raw CLIP embeddings (InstructPix2Pix's sim_image;
    its features are normalised before the cosine, so they are here too)."""
    return F.cosine_similarity(_unit(src_img), _unit(out_img))


class _IP2PClipMetric(LearnedMetric):
    """Shared by the two metrics of InstructPix2Pix's ClipSimilarity: its backbone, its image view,
    and the source / output embeddings (the source's are dataset-side, cached across seeds)."""

    role = "clip-large"
    view = "ip2p"
    higher_is_better = True

    def _source_and_output(self, items: Sequence[MetricInput]) -> tuple[torch.Tensor, torch.Tensor]:
        src = self.cache.image_vectors(self.model, self.view, [it.sample.source for it in items],
                                       dataset_side=True)
        return src, self.cache.image_vectors(self.model, self.view, [it.output for it in items])


class CLIPDirectional(_IP2PClipMetric):
    key = "clip_dir"
    requires = ("input_caption", "goal_caption")

    def score_applicable(self, items: Sequence[MetricInput]) -> list[float]:
        src, out = self._source_and_output(items)
        t_in = self.cache.text_vectors(self.model, [it.sample.input_caption for it in items], truncate=True)
        t_goal = self.cache.text_vectors(self.model, [it.sample.goal_caption for it in items], truncate=True)
        return clip_directional_similarity(src, out, t_in, t_goal).tolist()


class CLIPImageInput(_IP2PClipMetric):
    key = "clip_img_input"
    requires = ()

    def score_applicable(self, items: Sequence[MetricInput]) -> list[float]:
        return clip_image_similarity(*self._source_and_output(items)).tolist()
