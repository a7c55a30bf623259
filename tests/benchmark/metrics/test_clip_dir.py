"""CLIP directional similarity and CLIP image similarity to the input against InstructPix2Pix's
ClipSimilarity formulas, written out.

The metric's standard backbone is ViT-L/14; the formula does not depend on the size of the model,
so the fast test runs it on the ViT-B/32 architecture (random weights) and the slow test on
ViT-L/14 (random weights)."""

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.functional import to_tensor

from benchmark.api import EditSample
from benchmark.metrics.backbones.standard import CLIP_MEAN, CLIP_STD, random_backbone
from benchmark.metrics.base import MetricInput
from benchmark.metrics.clip_dir import CLIPDirectional, CLIPImageInput
from benchmark.metrics.features import FeatureCache, MetricContext

torch.set_num_threads(1)


def _img(seed, size=(40, 40)):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def ip2p_similarities(model, image_0, image_1, text_0, text_1) -> tuple[torch.Tensor, torch.Tensor]:
    """instruct-pix2pix metrics/clip_similarity.py ClipSimilarity.forward -> (sim_direction,
    sim_image)."""
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)

    def encode_image(image):
        image = F.interpolate(image.float(), size=224, mode="bicubic", align_corners=False)
        f = model.encode_image((image - mean) / std)
        return f / f.norm(dim=1, keepdim=True)

    def encode_text(text):
        f = model.encode_text(open_clip.tokenize(text))  # = clip.tokenize(truncate=True)
        return f / f.norm(dim=1, keepdim=True)

    with torch.no_grad():
        i0, i1 = encode_image(image_0), encode_image(image_1)
        t0, t1 = encode_text(text_0), encode_text(text_1)
        return F.cosine_similarity(i1 - i0, t1 - t0), F.cosine_similarity(i0, i1)


def _check(backbone):
    srcs, outs = [_img(1), _img(2)], [_img(3), _img(4)]
    caps_in = ["a red circle on a white background", "a blue star " * 30]
    caps_goal = ["a green circle on a white background", "a blue square " * 30]
    items = [MetricInput(output=o, sample=EditSample(id=f"s{i}", source=s, instruction="x",
                                                      input_caption=ci, goal_caption=cg))
             for i, (s, o, ci, cg) in enumerate(zip(srcs, outs, caps_in, caps_goal))]
    ctx = MetricContext(features=FeatureCache(), overrides={"clip-large": backbone})
    got_dir = CLIPDirectional(ctx).score(items)
    got_img = CLIPImageInput(ctx).score(items)
    want_dir, want_img = ip2p_similarities(
        backbone.model, torch.stack([to_tensor(s) for s in srcs]),
        torch.stack([to_tensor(o) for o in outs]), caps_in, caps_goal)
    assert got_dir == pytest.approx(want_dir.tolist(), abs=1e-6)
    assert got_img == pytest.approx(want_img.tolist(), abs=1e-6)


def test_clip_dir_equals_ip2p_formula():
    _check(random_backbone("clip-vit-b-32"))


def test_output_equal_to_source_scores_zero():
    src = _img(5)
    item = MetricInput(output=src.copy(), sample=EditSample(id="s", source=src, instruction="x",
                                                            input_caption="a", goal_caption="b"))
    m = CLIPDirectional(MetricContext(features=FeatureCache(),
                                      overrides={"clip-large": random_backbone("clip-vit-b-32")}))
    assert m.score([item]) == [0.0]
    assert m.requires == ("input_caption", "goal_caption") and m.role == "clip-large"


@pytest.mark.slow
def test_clip_dir_equals_ip2p_formula_on_vit_l_14():
    _check(random_backbone("clip-vit-l-14"))


def test_clip_img_input_is_one_for_an_unchanged_image_and_needs_no_captions():
    src = _img(6)
    item = MetricInput(output=src.copy(), sample=EditSample(id="s", source=src, instruction="x"))
    m = CLIPImageInput(MetricContext(features=FeatureCache(),
                                     overrides={"clip-large": random_backbone("clip-vit-b-32")}))
    assert m.requires == () and m.role == "clip-large" and m.higher_is_better
    assert m.score([item]) == pytest.approx([1.0], abs=1e-6)
    assert m.score([MetricInput(output=_img(7), sample=item.sample)])[0] < 1 - 1e-3
