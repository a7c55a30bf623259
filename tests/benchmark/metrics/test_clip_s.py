"""CLIP-S of the expressive instruction vs input/goal image: torchmetrics' CLIPScore formula,
max(100 * cos, 0), written out, on the real ViT-B/32 architecture with random weights."""

import math

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from benchmark.api import EditSample
from benchmark.metrics.backbones.standard import CLIP_MEAN, CLIP_STD, random_backbone
from benchmark.metrics.base import MetricInput
from benchmark.metrics.clip_s import CLIPScoreGoal, CLIPScoreInput
from benchmark.metrics.features import FeatureCache, MetricContext

torch.set_num_threads(1)


def _img(seed, size=(40, 40)):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def clip():
    return random_backbone("clip-vit-b-32")


def clipscore(model, image, text) -> float:
    """torchmetrics CLIPScore: 100 * cos of normalised embeddings, floored at 0."""
    transform = T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224),
                           T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])
    with torch.no_grad():
        i = model.encode_image(transform(image).unsqueeze(0)).float()
        t = model.encode_text(open_clip.tokenize([text])).float()
    i, t = i / i.norm(dim=-1, keepdim=True), t / t.norm(dim=-1, keepdim=True)
    return max(100 * float((i * t).sum()), 0.0)


def test_clip_s_input_and_goal_follow_clipscore(clip):
    src, tgt = _img(1), _img(2, (50, 30))
    sample = EditSample(id="s", source=src, instruction="x", target=tgt)
    texts = ["make the red circle blue " * 20, "turn the star green"]  # the first is truncated
    items = [MetricInput(output=_img(3), sample=sample, expressive=t) for t in texts]
    items.append(MetricInput(output=_img(3), sample=sample, expressive=None))
    ctx = MetricContext(features=FeatureCache(), overrides={"clip": clip})
    got_in = CLIPScoreInput(ctx).score(items)
    got_goal = CLIPScoreGoal(ctx).score(items)
    assert got_in[:2] == pytest.approx([clipscore(clip.model, src, t) for t in texts], abs=1e-4)
    assert got_goal[:2] == pytest.approx([clipscore(clip.model, tgt, t) for t in texts], abs=1e-4)
    assert math.isnan(got_in[2]) and math.isnan(got_goal[2])  # no expressive instruction: NaN
    # the source and target were encoded once for both metrics
    assert sum(ctx.features.passes[k] for k in ctx.features.passes if k[1] == "clip") == 2
