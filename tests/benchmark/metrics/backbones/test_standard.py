"""Standard backbones: one clear error when weights are missing, file search, the weights command."""

import hashlib
import io

import pytest
import torch

from benchmark.metrics.backbones import MissingWeightsError, resolve, standard
from benchmark.metrics.backbones.standard import STANDARD_NAMES, WEIGHTS, find_weight


@pytest.fixture
def no_caches(tmp_path, monkeypatch):
    """Point every library cache at an empty folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("EDITBENCH_WEIGHTS_DIR", raising=False)
    standard.load_standard.cache_clear()
    yield tmp_path
    standard.load_standard.cache_clear()


@pytest.mark.parametrize("name", STANDARD_NAMES)
def test_missing_weights_name_the_file_and_the_command(no_caches, name):
    with pytest.raises(MissingWeightsError) as err:
        standard.load_standard(name, str(no_caches / "weights"))
    msg = str(err.value)
    first = next(iter(WEIGHTS[name].values())).names[0]
    assert first in msg and f"editbench weights download {name}" in msg
    assert str(no_caches / "weights") in msg and "--backbones synth" in msg
    assert "\n" not in msg


def test_standard_mode_refuses_and_auto_falls_back_to_synth(no_caches):
    with pytest.raises(MissingWeightsError, match="ViT-B-32.pt"):
        resolve("clip", "standard")
    assert not standard.available("clip-vit-b-32")
    with pytest.raises(ValueError, match="unknown backbones mode"):
        resolve("clip", "fast")
    with pytest.raises(ValueError, match="unknown backbone role"):
        resolve("vgg", "auto")


def test_files_are_found_in_weights_dir_env_and_library_cache(no_caches, monkeypatch):
    wdir = no_caches / "w"
    wdir.mkdir()
    (wdir / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"x")  # pytorch-fid's name
    assert find_weight("inception-v3-fid", "model", wdir).name == "pt_inception-2015-12-05-6726825d.pth"
    monkeypatch.setenv("EDITBENCH_WEIGHTS_DIR", str(wdir))
    assert standard.available("inception-v3-fid")
    hub = no_caches / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "alexnet-owt-7be5be79.pth").write_bytes(b"x")
    assert find_weight("lpips-alex-v0.1", "alexnet") == hub / "alexnet-owt-7be5be79.pth"


def test_a_damaged_weights_file_is_one_clear_error(no_caches):
    wdir = no_caches / "w"
    wdir.mkdir()
    (wdir / "dino_deitsmall16_pretrain.pth").write_bytes(b"garbage")
    with pytest.raises(MissingWeightsError, match="could not be loaded.*weights download dino-vits16"):
        standard.load_standard("dino-vits16", str(wdir))


def test_dino_and_inception_load_their_files(no_caches):
    """Loading goes through the real code path with files written from random weights."""
    wdir = no_caches / "w"
    wdir.mkdir()
    dino = standard.random_backbone("dino-vits16")
    torch.save(dino.model.state_dict(), wdir / "dino_deitsmall16_pretrain.pth")
    loaded = standard.load_standard("dino-vits16", str(wdir))
    assert loaded.name == "dino-vits16" and loaded.origin == "standard"
    assert loaded.sha256 == hashlib.sha256((wdir / "dino_deitsmall16_pretrain.pth").read_bytes()).hexdigest()
    x = torch.randn(1, 3, 224, 224)
    assert torch.equal(loaded.forward_images(x, "dino"), dino.forward_images(x, "dino"))
    assert loaded.describe() == {"backbone": "dino-vits16", "backbone_sha256": loaded.sha256}


def test_weights_download_and_list(no_caches, capsys):
    payload = b"fake alexnet weights"

    def opener(url):
        assert url.endswith("alexnet-owt-7be5be79.pth")
        return io.BytesIO(payload)

    with pytest.raises(RuntimeError, match="does not match"):
        standard.download("lpips-alex-v0.1", no_caches / "w", opener=opener)
    assert not list((no_caches / "w").iterdir())
    # a publisher digest that matches is accepted and the file lands under its public name
    wf = WEIGHTS["lpips-alex-v0.1"]["alexnet"]
    good = standard.WeightFile(wf.names, wf.url, wf.default_dir, hashlib.sha256(payload).hexdigest()[:8])
    orig = WEIGHTS["lpips-alex-v0.1"]
    WEIGHTS["lpips-alex-v0.1"] = {"alexnet": good}
    try:
        (path,) = standard.download("lpips-alex-v0.1", no_caches / "w", opener=opener)
        assert path.name == "alexnet-owt-7be5be79.pth" and path.read_bytes() == payload
    finally:
        WEIGHTS["lpips-alex-v0.1"] = orig
    import argparse

    sub = argparse.ArgumentParser().add_subparsers()
    standard.add_cli(sub)
    args = sub.choices["weights"].parse_args(["list", "--weights-dir", str(no_caches / "w")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "lpips-alex-v0.1    present" in out and "clip-vit-b-32      missing" in out


def test_cpu_batch_size_only_on_cpu():
    from benchmark.metrics.backbones.base import Backbone

    class Small(Backbone):
        cpu_batch_size = 4

    assert Small("cpu").batch_size == 4
    assert Small("cuda").batch_size == Backbone.batch_size == 32  # device objects need no GPU
    assert Backbone("cpu").batch_size == 32  # no CPU figure: the default stands


def test_feature_values_do_not_depend_on_the_cpu_batch():
    """Features computed in CPU batches of 4 equal those of one batch of 9 (float32 rounding)."""
    import numpy as np
    from PIL import Image

    from benchmark.metrics.backbones.standard import random_backbone
    from benchmark.metrics.features import FeatureCache

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(9)]
    b = random_backbone("dino-vits16", seed=0)
    assert b.batch_size == 4
    small = FeatureCache().image_features(b, "dino", images)
    b.batch_size = 9
    whole = FeatureCache().image_features(b, "dino", images)
    for x, y in zip(small, whole):
        assert torch.allclose(x, y, rtol=1e-5, atol=1e-6)
