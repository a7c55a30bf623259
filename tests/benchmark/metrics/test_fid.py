"""FID/KID from the same features against torchmetrics, scipy's sqrtm (TTUR) and torch-fidelity's
eigenvalue form; the TF Inception graph (random weights) and TF1-style resize."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import linalg

from benchmark.api import EditSample
from benchmark.metrics.backbones.base import Backbone
from benchmark.metrics.backbones.inception import FIDInceptionV3, resize_bilinear_tf1
from benchmark.metrics.backbones.standard import random_backbone
from benchmark.metrics.base import MetricInput
from benchmark.metrics.features import FeatureCache, MetricContext
from benchmark.metrics.fid import FID, KID, fid_from_features, fid_statistics, kid_from_features

torch.set_num_threads(1)


def _features(seed, n=40, d=16, shift=0.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * 0.3 + shift).astype(np.float32)


class _Given(torch.nn.Module):
    """A 'feature extractor' for torchmetrics that returns the features it is given."""

    def __init__(self, d):
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x


def ttur_fid(a, b):
    """TTUR fid.py calculate_frechet_distance on float64 statistics, written out."""
    mu1, mu2 = a.astype(np.float64).mean(0), b.astype(np.float64).mean(0)
    s1, s2 = np.cov(a.astype(np.float64), rowvar=False), np.cov(b.astype(np.float64), rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2))
    diff = mu1 - mu2
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real)


def test_fid_equals_ttur_torchmetrics_and_eigenvalue_form():
    from torchmetrics.image.fid import FrechetInceptionDistance

    a, b = _features(1), _features(2, shift=0.5)
    ours = fid_from_features(torch.from_numpy(a), torch.from_numpy(b))
    assert ours == pytest.approx(ttur_fid(a, b), rel=1e-9)
    tm = FrechetInceptionDistance(feature=_Given(a.shape[1]))
    tm.update(torch.from_numpy(b), real=True)
    tm.update(torch.from_numpy(a), real=False)
    assert ours == pytest.approx(float(tm.compute()), abs=1e-6, rel=1e-6)
    # torch-fidelity's fid_statistics_to_metric: trace of sqrtm through eigenvalues
    (m1, s1), (m2, s2) = fid_statistics(a), fid_statistics(b)
    eig = np.sum(np.sqrt(np.linalg.eigvals(s1.dot(s2))).real)
    assert ours == pytest.approx((m1 - m2).dot(m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * eig, rel=1e-6)
    assert fid_from_features(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(fid_from_features(torch.from_numpy(a[:1]), torch.from_numpy(b)))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_low_rank_form_equals_sqrtm_for_small_sets():
    from benchmark.metrics.fid import frechet_distance, frechet_distance_low_rank

    a, b = _features(11, n=12, d=40).astype(np.float64), _features(12, n=15, d=40, shift=0.1).astype(np.float64)
    low = frechet_distance_low_rank(a, b)
    full = frechet_distance(*fid_statistics(a), *fid_statistics(b))
    assert low == pytest.approx(full, rel=1e-6)
    assert fid_from_features(a, b) == low  # n < d: the low-rank route
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_kid_equals_torchmetrics_on_full_subsets():
    from torchmetrics.image.kid import KernelInceptionDistance

    a, b = _features(3, n=30), _features(4, n=30, shift=0.3)
    tm = KernelInceptionDistance(feature=_Given(a.shape[1]), subsets=3, subset_size=30)
    tm.update(torch.from_numpy(b), real=True)
    tm.update(torch.from_numpy(a), real=False)
    mean, _ = tm.compute()
    assert kid_from_features(a, b) == pytest.approx(float(mean), abs=1e-6)
    # more samples than a subset: the mean over seeded subsets, deterministic
    big_a, big_b = _features(5, n=60), _features(6, n=60)
    assert kid_from_features(big_a, big_b, subsets=4, subset_size=20) == kid_from_features(
        big_a, big_b, subsets=4, subset_size=20)


def test_against_torch_fidelity_when_installed():
    tf = pytest.importorskip("torch_fidelity")
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    x = torch.rand(2, 3, 37, 53) * 255
    assert torch.equal(resize_bilinear_tf1(x, (299, 299)),
                       interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False))
    a, b = _features(7), _features(8, shift=0.2)
    want = fid_statistics_to_metric(fid_features_to_statistics(torch.from_numpy(a)),
                                    fid_features_to_statistics(torch.from_numpy(b)), False)
    assert fid_from_features(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        want["frechet_inception_distance"], rel=1e-5)
    assert tf is not None


def test_tf1_bilinear_resize_by_hand():
    x = torch.tensor([[[[0.0, 10.0], [20.0, 30.0]]]])
    # TF1 align_corners=False: source = dst * in / out, no half-pixel offset, edge clamped
    got = resize_bilinear_tf1(x, (4, 4))[0, 0]
    want = torch.tensor([[0.0, 5.0, 10.0, 10.0], [10.0, 15.0, 20.0, 20.0],
                         [20.0, 25.0, 30.0, 30.0], [20.0, 25.0, 30.0, 30.0]])
    assert torch.equal(got, want)
    assert torch.equal(resize_bilinear_tf1(x, (2, 2)), x)


def test_inception_graph_names_shapes_and_metric():
    net = FIDInceptionV3()
    keys = set(net.state_dict())
    # the layout of torch-fidelity's / pytorch-fid's converted 2015-12-05 weights
    for k in ("Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.running_var", "Mixed_5b.branch_pool.conv.weight",
              "Mixed_7c.branch3x3dbl_3b.bn.bias", "fc.weight", "fc.bias"):
        assert k in keys
    assert net.fc.out_features == 1008 and net.Mixed_7c.max_pool and not net.Mixed_7b.max_pool
    bb = random_backbone("inception-v3-fid")
    imgs = [Image.fromarray(np.random.default_rng(i).integers(0, 256, (40, 30, 3), dtype=np.uint8))
            for i in range(3)]
    feats = FeatureCache().image_vectors(bb, "fid", imgs)
    assert feats.shape == (3, 2048) and torch.isfinite(feats).all()


def test_fid_and_kid_are_set_level():
    feats = {f"s{i}": torch.from_numpy(_features(9 + i, n=1, d=8)[0]) for i in range(4)}

    class Fixed(Backbone):  # features given per image
        name, sha256, views = "fixed", "0" * 64, ("fid",)

        def preprocess(self, image, view):
            return feats[image.info["id"]]

        def forward_images(self, batch, view):
            return batch

    imgs = []
    for sid in feats:
        im = Image.new("RGB", (4, 4), (int(sid[1:]) * 40, 0, 0))
        im.info["id"] = sid
        imgs.append(im)
    items = [MetricInput(output=imgs[(i + 1) % 4], sample=EditSample(id=f"s{i}", source=im, instruction="x",
                                                                     target=im)) for i, im in enumerate(imgs)]
    ctx = MetricContext(features=FeatureCache(), overrides={"inception": Fixed()})
    fid, kid = FID(ctx).score(items), KID(ctx).score(items)
    assert len(set(fid)) == 1 and fid[0] == pytest.approx(0.0, abs=1e-6)  # the same set, permuted
    assert len(set(kid)) == 1 and not math.isnan(kid[0])
    assert FID.set_level and KID.set_level and FID(ctx).describe()["set_level"]
