"""Test-only models and datasets (importable as `_helpers`, also from subprocesses)."""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.api import BaseEditModel, EditResult, EditSample, FailedSample

# GPU tests run on a machine with CUDA (the GPU sessions); CI has none, so they skip there
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class NoiseEditor(BaseEditModel):
    """Adds seeded noise to the source: stochastic, so it exposes any batch or order dependence."""

    name = "noise"

    def __init__(self, preset=None, device="cpu", **_):
        self.preset = preset or "default"
        self.device = device

    def config(self):
        return {"name": self.name, "preset": self.preset, "amplitude": 0.2}

    def edit(self, requests):
        delay = float(os.environ.get("EDITBENCH_TEST_SLEEP", "0"))
        out = []
        for req in requests:
            src = torch.from_numpy(np.asarray(req.sample.source, dtype=np.float32) / 255.0)
            noise = torch.randn(src.shape, generator=req.generator())
            out.append(EditResult(image=(src + 0.2 * noise).clamp(0, 1).numpy(),
                                  expressive=f"noise for {req.sample.instruction}"))
        if delay:
            time.sleep(delay * len(requests))
        return out


class FlakyEditor(NoiseEditor):
    """Raises on instructions containing 'explode', returns NaN for 'nan', wrong shape for 'shape'."""

    name = "flaky"

    def edit(self, requests):
        if any("explode" in r.sample.instruction for r in requests):
            raise RuntimeError("boom on purpose\nsecond line that must not appear")
        results = super().edit(requests)
        for req, res in zip(requests, results):
            if "nan" in req.sample.instruction:
                res.image = np.full((16, 16, 3), np.nan, dtype=np.float32)
            if "shape" in req.sample.instruction:
                res.image = np.zeros((16, 16), dtype=np.float32)
        return results


def _img(value, size=16):
    rng = np.random.default_rng(value)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), mode="RGB")


def tiny_dataset(limit=None, n=8, size=16):
    """n plain samples plus deliberately broken ones."""
    items = []
    for i in range(n):
        items.append(EditSample(id=f"s{i:02d}", source=_img(i, size), target=_img(100 + i, size),
                                instruction=f"edit number {i}", category="even" if i % 2 == 0 else "odd"))
    items.append(FailedSample(id="corrupt", error="source image cannot be decoded (corrupt)"))
    items.append(EditSample(id="empty", source=_img(1, size), target=_img(2, size), instruction="  "))
    items.append(EditSample(id="mismatch", source=_img(1, size), target=_img(2, size * 2),
                            instruction="sizes differ"))
    items.append(EditSample(id="explodes", source=_img(3, size), target=_img(4, size),
                            instruction="please explode"))
    items.append(EditSample(id="nans", source=_img(5, size), target=_img(6, size),
                            instruction="return nan"))
    items.append(EditSample(id="badshape", source=_img(7, size), target=_img(8, size),
                            instruction="wrong shape"))
    return items[:limit] if limit else items


def plain_dataset(limit=None, n=12, size=16):
    items = [EditSample(id=f"p{i:02d}", source=_img(i, size), target=_img(50 + i, size),
                        instruction=f"plain {i}", category="plain") for i in range(n)]
    return items[:limit] if limit else items


def tiny_sd_folder(root, texts):
    """A diffusers Stable-Diffusion folder (unet/ vae/ text_encoder/ tokenizer/ scheduler/) with
    tiny random weights: what `--preset sd15` training reads from runwayml/stable-diffusion-v1-5."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    from benchmark.diffusion.text import tiny_clip_text_config, train_tokenizer

    torch.manual_seed(0)
    tok = train_tokenizer(texts, vocab_size=300)
    tok.model_max_length = 16
    UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                         down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                         up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), layers_per_block=1,
                         cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
                         ).save_pretrained(root / "unet")
    AutoencoderKL(block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8,
                  sample_size=16).save_pretrained(root / "vae")
    CLIPTextModel(tiny_clip_text_config(len(tok), tok, 32)).save_pretrained(root / "text_encoder")
    tok.save_pretrained(root / "tokenizer")
    DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                  prediction_type="epsilon").save_pretrained(root / "scheduler")
    return root


def import_script(name: str):
    """The module of ``scripts/<name>.py`` (scripts/ is not a package; it is on sys.path only
    while importing, as when the script runs)."""
    scripts = str(Path(__file__).resolve().parents[1] / "scripts")
    sys.path.insert(0, scripts)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(scripts)
