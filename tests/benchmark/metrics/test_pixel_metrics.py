"""l1, l2, psnr, ssim against their reference implementations."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import ToTensor

from benchmark.api import EditSample
from benchmark.metrics.base import MetricInput, aligned_pair
from benchmark.metrics.l1 import L1, l1_distance
from benchmark.metrics.l2 import L2, l2_distance
from benchmark.metrics.psnr import PSNR, psnr
from benchmark.metrics.ssim import SSIM, ssim


def _pair(seed, size=(48, 40), out_size=None):
    rng = np.random.default_rng(seed)
    tgt = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    noisy = np.clip(np.asarray(tgt, dtype=int) + rng.integers(-40, 41, (size[1], size[0], 3)), 0, 255)
    out = Image.fromarray(noisy.astype(np.uint8))
    if out_size:
        out = out.resize(out_size)
    return out, tgt


def _item(out, tgt):
    return MetricInput(output=out, sample=EditSample(id="x", source=tgt, target=tgt, instruction="i"))


@pytest.mark.parametrize("out_size", [None, (64, 64)])
def test_l1_l2_match_magicbrush_eval_distance(out_size):
    # MagicBrush evaluation/image_eval.py: gen.resize(gt.size); ToTensor; nn.L1Loss / nn.MSELoss
    out, tgt = _pair(1, out_size=out_size)
    gen = out.resize(tgt.size) if out.size != tgt.size else out
    ref_l1 = torch.nn.L1Loss()(ToTensor()(gen), ToTensor()(tgt)).item()
    ref_l2 = torch.nn.MSELoss()(ToTensor()(gen), ToTensor()(tgt)).item()
    assert L1().score([_item(out, tgt)])[0] == pytest.approx(ref_l1, abs=1e-7)
    assert L2().score([_item(out, tgt)])[0] == pytest.approx(ref_l2, abs=1e-7)


def test_to_tensor_matches_torchvision():
    out, tgt = _pair(2)
    a, b = aligned_pair(out, tgt)
    assert torch.equal(a, ToTensor()(out)) and torch.equal(b, ToTensor()(tgt))


def test_psnr_matches_torchmetrics_and_is_capped_for_identical_images():
    from torchmetrics.functional.image import peak_signal_noise_ratio

    out, tgt = _pair(3)
    a, b = aligned_pair(out, tgt)
    ref = peak_signal_noise_ratio(a[None].double(), b[None].double(), data_range=1.0).item()
    assert PSNR().score([_item(out, tgt)])[0] == pytest.approx(ref, abs=1e-6)
    assert float(psnr(b, b)[0]) == pytest.approx(100.0)


def test_ssim_matches_torchmetrics_up_to_border_handling():
    from torchmetrics.functional.image import structural_similarity_index_measure

    out, tgt = _pair(4, size=(64, 64))
    a, b = aligned_pair(out, tgt)
    ours = SSIM().score([_item(out, tgt)])[0]
    ref = structural_similarity_index_measure(a[None].double(), b[None].double(), data_range=1.0).item()
    # same Gaussian 11x11/1.5 window and constants; skimage averages the map without a 5-px
    # border, torchmetrics with its own padding/crop, which moves the score by < 2e-3 here
    assert abs(ours - ref) < 2e-3
    assert 0.0 < ours < 0.99
    assert float(ssim(b, b)[0]) == pytest.approx(1.0)


def test_batched_functional_cores_agree_with_per_sample():
    g = torch.Generator().manual_seed(0)
    p, t = torch.rand(3, 3, 16, 16, generator=g), torch.rand(3, 3, 16, 16, generator=g)
    for fn in (l1_distance, l2_distance, psnr, ssim):
        batched = fn(p, t)
        single = torch.cat([fn(p[i], t[i]) for i in range(3)])
        assert torch.allclose(batched, single)
    with pytest.raises(ValueError):
        l1_distance(p, t[:, :, :8])


def test_metric_without_target_is_nan_and_stateful_class_accumulates():
    out, tgt = _pair(5)
    no_target = MetricInput(output=out, sample=EditSample(id="y", source=tgt, instruction="i"))
    m = L1()
    assert math.isnan(m.score([no_target])[0])
    m.update([_item(out, tgt), no_target, _item(tgt, tgt)])
    assert m.compute() == pytest.approx(L1().score([_item(out, tgt)])[0] / 2)
    m.reset()
    assert math.isnan(m.compute())
