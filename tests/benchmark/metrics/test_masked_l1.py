import math

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.api import EditSample
from benchmark.metrics.base import MetricInput
from benchmark.metrics.masked_l1 import L1InMask, L1OutMask, masked_l1


def test_masked_l1_against_numpy():
    rng = np.random.default_rng(0)
    src = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    tgt = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    mask = np.zeros((20, 24), dtype=np.uint8)
    mask[5:12, 3:9] = 255
    sample = EditSample(id="m", source=Image.fromarray(src), target=Image.fromarray(tgt),
                        mask=Image.fromarray(mask, mode="L"), instruction="x")
    item = MetricInput(output=Image.fromarray(src), sample=sample)
    diff = np.abs(src.astype(float) - tgt.astype(float)).mean(axis=2) / 255.0
    assert L1InMask().score([item])[0] == pytest.approx(diff[mask > 0].mean(), abs=1e-6)  # ToTensor is float32
    assert L1OutMask().score([item])[0] == pytest.approx(diff[mask == 0].mean(), abs=1e-6)  # ToTensor is float32


def test_no_mask_or_empty_region_is_nan():
    img = Image.new("RGB", (8, 8))
    no_mask = MetricInput(output=img, sample=EditSample(id="a", source=img, target=img, instruction="x"))
    assert math.isnan(L1InMask().score([no_mask])[0])
    empty = torch.zeros(8, 8, dtype=torch.bool)
    assert math.isnan(float(masked_l1(torch.zeros(3, 8, 8), torch.ones(3, 8, 8), empty)[0]))
