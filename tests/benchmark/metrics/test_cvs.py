"""CVS (CLIP-I) against MagicBrush's eval_clip_i formula, on the real ViT-B/32 architecture with
random weights (the OpenAI weights are not available here)."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import spatial
from torchvision import transforms as T

from benchmark.api import EditSample
from benchmark.metrics.backbones.standard import CLIP_MEAN, CLIP_STD, random_backbone
from benchmark.metrics.base import MetricInput
from benchmark.metrics.cvs import CVS
from benchmark.metrics.features import FeatureCache, MetricContext

torch.set_num_threads(1)


def _img(seed, size=(48, 40), mode="RGB"):
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode)


def _item(out, tgt, sid="s"):
    return MetricInput(output=out, sample=EditSample(id=sid, source=tgt, instruction="x", target=tgt))


@pytest.fixture(scope="module")
def clip():
    return random_backbone("clip-vit-b-32")


def _metric(clip, cache=None):
    return CVS(MetricContext(features=cache or FeatureCache(), overrides={"clip": clip}))


def magicbrush_clip_i(model, gen: Image.Image, gt: Image.Image) -> float:
    """MagicBrush evaluation/image_eval.py eval_clip_i, written out (clip.load's transform)."""
    transform = T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224),
                           lambda im: im.convert("RGB"), T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])
    with torch.no_grad():
        a = model.encode_image(transform(gen.convert("RGB")).unsqueeze(0)).detach().float()
        b = model.encode_image(transform(gt.convert("RGB")).unsqueeze(0)).detach().float()
    return 1 - spatial.distance.cosine(a.view(a.shape[1]), b.view(b.shape[1]))


def test_cvs_equals_magicbrush_clip_i(clip):
    pairs = [(_img(1), _img(2)), (_img(3, (64, 64)), _img(4, (32, 50))), (_img(5, mode="L"), _img(6))]
    got = _metric(clip).score([_item(o, t, f"s{i}") for i, (o, t) in enumerate(pairs)])
    want = [magicbrush_clip_i(clip.model, o, t) for o, t in pairs]
    assert got == pytest.approx(want, abs=1e-6)


def test_identical_images_score_one_and_missing_target_is_nan(clip):
    a = _img(7)
    no_target = MetricInput(output=a, sample=EditSample(id="n", source=a, instruction="x"))
    vals = _metric(clip).score([_item(a.copy(), a, "same"), no_target])
    assert vals[0] == pytest.approx(1.0, abs=1e-6) and math.isnan(vals[1])
    assert CVS.higher_is_better


def test_targets_are_encoded_once_across_seeds(clip):
    cache = FeatureCache()
    metric = _metric(clip, cache)
    tgt = _img(8)
    metric.score([_item(_img(9), tgt)])
    metric.score([_item(_img(10), tgt)])
    # 3 unique images (one target, two outputs) went through the backbone, not 4
    assert sum(cache.passes.values()) == 3
    assert metric.describe()["backbone"] == "clip-vit-b-32 (random weights)"
