"""LPIPS against the lpips package (v0.1, alex) on the same random AlexNet and the real v0.1 lin
layers (shipped inside the lpips package)."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import to_tensor

from benchmark.api import EditSample
from benchmark.metrics.backbones.lpips_net import AlexTaps, LinLayers
from benchmark.metrics.backbones.standard import LPIPSBackbone, lpips_lin_file, random_backbone
from benchmark.metrics.base import MetricInput
from benchmark.metrics.features import FeatureCache, MetricContext
from benchmark.metrics.lpips import LPIPS

lpips = pytest.importorskip("lpips")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
torch.set_num_threads(1)


def _img(seed, size=(64, 48)):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    ref = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False).eval()
    layers = [getattr(ref.net, f"slice{k}")._modules for k in range(1, 6)]
    features = torch.nn.Sequential(*[m for mods in layers for m in mods.values()])
    ours = LPIPSBackbone(AlexTaps(features), LinLayers.from_lpips_file(lpips_lin_file()),
                         "lpips-alex-v0.1", None, random_tag="test")
    return ref, ours


def test_lpips_equals_the_lpips_package(pair):
    ref, ours = pair
    outs = [_img(1), _img(2), _img(3, (32, 32))]   # the last is resized to its target's size
    tgts = [_img(4), _img(5), _img(6)]
    items = [MetricInput(output=o, sample=EditSample(id=f"s{i}", source=t, instruction="x", target=t))
             for i, (o, t) in enumerate(zip(outs, tgts))]
    got = LPIPS(MetricContext(features=FeatureCache(), overrides={"lpips": ours})).score(items)
    want = []
    for o, t in zip(outs, tgts):
        if o.size != t.size:
            o = o.resize(t.size, Image.BICUBIC)
        with torch.no_grad():
            want.append(float(ref(to_tensor(o)[None] * 2 - 1, to_tensor(t)[None] * 2 - 1)))
    assert got == pytest.approx(want, abs=1e-6)
    same = LPIPS(MetricContext(features=FeatureCache(), overrides={"lpips": ours})).score(
        [MetricInput(output=tgts[0].copy(), sample=items[0].sample)])
    assert same == [0.0] and not LPIPS.higher_is_better


def test_random_standard_lpips_uses_the_v01_lin_weights():
    bb = random_backbone("lpips-alex-v0.1")
    state = torch.load(lpips_lin_file(), map_location="cpu", weights_only=True)
    assert torch.equal(bb.lin.weights[0], state["lin0.model.1.weight"])
    assert [w.shape[1] for w in bb.lin.weights] == [64, 192, 384, 256, 256]
