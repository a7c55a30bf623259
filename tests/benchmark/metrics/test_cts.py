"""CTS (CLIP-T) against MagicBrush's eval_clip_t formula (x100) on the real ViT-B/32 architecture
with random weights; captions over CLIP's 77 tokens are a per-sample error."""

import math

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from scipy import spatial
from torchvision import transforms as T

from benchmark.api import EditSample
from benchmark.metrics.backbones.standard import CLIP_MEAN, CLIP_STD, random_backbone
from benchmark.metrics.base import MetricInput
from benchmark.metrics.cts import CTS
from benchmark.metrics.features import FeatureCache, MetricContext
from benchmark.runner import Failure, score_all

torch.set_num_threads(1)
LONG = "a red circle " * 30


def _img(seed, size=(40, 40)):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def clip():
    return random_backbone("clip-vit-b-32")


def _sample(sid, caption):
    src = _img(100)
    return EditSample(id=sid, source=src, instruction="x", target=src, goal_caption=caption)


def magicbrush_clip_t(model, gen, caption) -> float:
    transform = T.Compose([T.Resize(224, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224),
                           T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])
    with torch.no_grad():
        img = model.encode_image(transform(gen.convert("RGB")).unsqueeze(0)).float()
        txt = model.encode_text(open_clip.tokenize([caption])).float()  # short captions: no truncation
    return 1 - spatial.distance.cosine(img.view(img.shape[1]), txt.view(txt.shape[1]))


def test_tokenizer_matches_clip_and_refuses_long_captions(clip):
    text = "A small Blue circle, at the top-left; on a red background!"
    assert torch.equal(clip.tokenize([text], truncate=False), open_clip.tokenize([text]))
    assert torch.equal(clip.tokenize([LONG], truncate=True), open_clip.tokenize([LONG]))
    with pytest.raises(ValueError, match="over the limit of 77"):
        clip.tokenize([LONG], truncate=False)


def test_cts_is_100_times_magicbrush_clip_t(clip):
    caps = ["a large green star in the centre on a white background", "a blue square"]
    outs = [_img(1), _img(2, (64, 30))]
    items = [MetricInput(output=o, sample=_sample(f"s{i}", c)) for i, (o, c) in enumerate(zip(outs, caps))]
    got = CTS(MetricContext(features=FeatureCache(), overrides={"clip": clip})).score(items)
    want = [100 * magicbrush_clip_t(clip.model, o, c) for o, c in zip(outs, caps)]
    assert got == pytest.approx(want, abs=1e-4)  # 100 x a cosine agreeing to 1e-6
    assert CTS.higher_is_better


def test_a_too_long_caption_fails_only_its_sample(clip):
    metric = CTS(MetricContext(features=FeatureCache(), overrides={"clip": clip}))
    samples = {"ok": _sample("ok", "a red circle"), "long": _sample("long", LONG),
               "none": _sample("none", None)}
    failures: list[Failure] = []
    scores = score_all({"cts": metric}, samples, ["ok", "long", "none"], [0],
                       lambda seed, sid: (_img(5), None), failures)
    assert not math.isnan(scores["cts"][0]["ok"])
    assert math.isnan(scores["cts"][0]["long"]) and math.isnan(scores["cts"][0]["none"])
    assert [(f.sample_id, "77" in f.error) for f in failures] == [("long", True)]
