"""DINO against MagicBrush's DINO formula, on the real DINO ViT-S/16 architecture (timm) with
random weights."""

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import spatial
from torchvision import transforms as T

from benchmark.api import EditSample
from benchmark.metrics.backbones.standard import random_backbone
from benchmark.metrics.base import MetricInput
from benchmark.metrics.dino import DINO
from benchmark.metrics.features import FeatureCache, MetricContext

torch.set_num_threads(1)


def _img(seed, size=(48, 40)):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def dino():
    return random_backbone("dino-vits16")


def magicbrush_dino(model, gen, gt) -> float:
    """MagicBrush evaluation/image_eval.py, metric 'dino', written out."""
    transform = T.Compose([T.Resize(256, interpolation=3), T.CenterCrop(224), T.ToTensor(),
                           T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    with torch.no_grad():
        a = model(transform(gen.convert("RGB")).unsqueeze(0)).detach().float()
        b = model(transform(gt.convert("RGB")).unsqueeze(0)).detach().float()
    return 1 - spatial.distance.cosine(a.view(a.shape[1]), b.view(b.shape[1]))


def test_dino_equals_magicbrush_formula(dino):
    pairs = [(_img(1), _img(2)), (_img(3, (70, 30)), _img(4, (64, 64)))]
    items = [MetricInput(output=o, sample=EditSample(id=f"s{i}", source=t, instruction="x", target=t))
             for i, (o, t) in enumerate(pairs)]
    got = DINO(MetricContext(features=FeatureCache(), overrides={"dino": dino})).score(items)
    assert got == pytest.approx([magicbrush_dino(dino.model, o, t) for o, t in pairs], abs=1e-6)
    same = DINO(MetricContext(features=FeatureCache(), overrides={"dino": dino})).score(
        [MetricInput(output=pairs[0][1].copy(), sample=items[0].sample)])
    assert same[0] == pytest.approx(1.0, abs=1e-6)


def test_feature_is_the_final_layer_normed_cls_token(dino):
    x = torch.randn(2, 3, 224, 224)
    m = dino.model
    with torch.no_grad():
        tokens = m.patch_embed(x)
        tokens = torch.cat([m.cls_token.expand(2, -1, -1), tokens], dim=1) + m.pos_embed
        for blk in m.blocks:
            tokens = blk(tokens)
        want = m.norm(tokens)[:, 0]
    assert torch.allclose(dino.forward_images(x, "dino"), want, atol=1e-5)
    assert dino.forward_images(x, "dino").shape == (2, 384)
