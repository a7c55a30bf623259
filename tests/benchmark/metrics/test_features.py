"""The feature cache: one pass per unique image, disk persistence of dataset-side features only,
recovery from damaged files, partial failures."""

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.metrics.backbones.base import Backbone
from benchmark.metrics.features import FeatureCache, FeatureError, image_hash


class Toy(Backbone):
    """Mean colour as the feature; texts -> their length; counts forward passes."""

    name = "toy"
    views = ("v", "maps")
    spatial_views = ("maps",)
    has_text = True
    batch_size = 2

    def __init__(self, sha="ab" * 32, random_tag=None):
        self.sha256 = sha
        super().__init__("cpu", random_tag)
        self.calls = 0

    def preprocess(self, image, view):
        if image.size[0] == 1:
            raise ValueError("too small")
        return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32)).permute(2, 0, 1)

    def forward_images(self, batch, view):
        self.calls += 1
        if view == "maps":
            return [batch, batch * 2]
        return batch.mean(dim=(2, 3))

    def tokenize(self, texts, truncate):
        if len(texts[0]) > 20 and not truncate:
            raise ValueError("text too long")
        return torch.tensor([[len(t)] for t in texts])

    def forward_texts(self, tokens):
        return tokens.float().repeat(1, 3)


def _img(v, size=(4, 4)):
    return Image.new("RGB", size, (v, 2 * v % 256, 3))


def test_each_unique_image_goes_through_the_backbone_once():
    bb, cache = Toy(), FeatureCache()
    a, b = _img(10), _img(20)
    f1 = cache.image_vectors(bb, "v", [a, b, a.copy(), a])
    assert torch.equal(f1[0], f1[2]) and bb.calls == 1  # 2 unique images in one batch of 2
    cache.image_vectors(bb, "v", [b, _img(10)], dataset_side=True)
    assert cache.passes[(bb.key, "v")] == 2 and bb.calls == 1
    assert image_hash(a) == image_hash(a.copy()) != image_hash(b)


def test_dataset_side_features_persist_on_disk_and_outputs_do_not(tmp_path):
    bb = Toy()
    first = FeatureCache(tmp_path)
    first.image_vectors(bb, "v", [_img(1)], dataset_side=True)
    first.image_vectors(bb, "v", [_img(2)])                      # an output: memory only
    first.text_vectors(bb, ["a caption"], truncate=False)         # dataset side by default
    files = sorted(p.relative_to(tmp_path).parts[:2] for p in tmp_path.rglob("*.npy"))
    assert files == [("toy-abababababababab", "text-strict"), ("toy-abababababababab", "v")]
    second, bb2 = FeatureCache(tmp_path), Toy()
    got = second.image_vectors(bb2, "v", [_img(1)], dataset_side=True)
    second.text_vectors(bb2, ["a caption"], truncate=False)
    assert bb2.calls == 0 and second.stats["disk_hits"] == 2
    assert torch.equal(got[0], torch.tensor([1.0, 2.0, 3.0]))
    second.image_vectors(bb2, "v", [_img(2)], dataset_side=True)  # not on disk: computed
    assert bb2.calls == 1


def test_random_weights_and_spatial_features_are_never_written(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.image_vectors(Toy(random_tag="t"), "v", [_img(3)], dataset_side=True)
    maps = cache.image_features(Toy(), "maps", [_img(4)], dataset_side=True)
    assert not list(tmp_path.rglob("*.npy"))
    assert len(maps[0]) == 2 and maps[0][1].shape == (3, 4, 4)


def test_a_damaged_file_is_recomputed(tmp_path):
    bb = Toy()
    FeatureCache(tmp_path).image_vectors(bb, "v", [_img(5)], dataset_side=True)
    (path,) = tmp_path.rglob("*.npy")
    path.write_bytes(b"not a numpy file")
    got = FeatureCache(tmp_path).image_vectors(bb, "v", [_img(5)], dataset_side=True)
    assert torch.equal(got[0], torch.tensor([5.0, 10.0, 3.0])) and bb.calls == 2


def test_bad_inputs_fail_after_the_good_ones_are_cached():
    bb, cache = Toy(), FeatureCache()
    with pytest.raises(FeatureError, match="too small"):
        cache.image_vectors(bb, "v", [_img(6), _img(7, (1, 1))])
    assert bb.calls == 1
    cache.image_vectors(bb, "v", [_img(6)])
    assert bb.calls == 1  # the good image was cached before the error
    with pytest.raises(FeatureError, match="text too long"):
        cache.text_vectors(bb, ["short", "x" * 30], truncate=False)
    assert cache.text_vectors(bb, ["x" * 30], truncate=True).shape == (1, 3)
    with pytest.raises(FeatureError, match="empty text"):
        cache.text_vectors(bb, ["  "], truncate=True)
    with pytest.raises(ValueError, match="no view"):
        cache.image_vectors(bb, "nope", [_img(6)])


def test_a_dataset_image_first_seen_as_an_output_still_reaches_the_disk(tmp_path):
    bb, cache = Toy(), FeatureCache(tmp_path)
    cache.image_vectors(bb, "v", [_img(11)])                     # an output (e.g. the oracle's)
    assert not list(tmp_path.rglob("*.npy"))
    cache.image_vectors(bb, "v", [_img(11)], dataset_side=True)  # the same picture as a target
    assert len(list(tmp_path.rglob("*.npy"))) == 1 and bb.calls == 1
