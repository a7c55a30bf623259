"""FID (and KID) between a seed's outputs and the targets of the same samples, lower is better.

Set-level metrics: per seed, one number over the set of that seed's outputs vs the set of the
scored samples' targets; the result's per-seed values are those numbers (every sample carries its
seed's value, so the runner's per-seed mean is the set value).

FID convention (TTUR ``fid.py``, torch-fidelity, clean-fid ``mode="legacy_tensorflow"``): features
are the 2048-d pool3 activations of the TF Inception-v3 graph with the 2015-12-05 weights, on uint8
RGB images resized to 299x299 with TensorFlow 1.x's bilinear resize (torch-fidelity's
``interpolate_bilinear_2d_like_tensorflow1x``; the resize clean-fid's legacy mode leaves to the TF
graph) and scaled to ``(x - 128) / 128``; statistics in float64: ``mu`` = mean, ``sigma`` =
``np.cov(rowvar=False)`` (ddof 1); ``FID = |mu1 - mu2|^2 + tr(s1) + tr(s2) - 2 tr(sqrtm(s1 s2))``
with ``scipy.linalg.sqrtm`` (TTUR: if the product is singular, offset both covariances by 1e-6 I;
the imaginary part is dropped; for sets smaller than the feature dimension the same trace is
computed exactly through an n x n eigenproblem, see ``frechet_distance_low_rank``). This matches clean-fid's ``legacy_tensorflow`` mode and
torch-fidelity by construction (same weights, resize, normalisation and formula); it does *not*
match clean-fid's default ``clean`` mode (PIL bicubic antialiased resize) nor torchmetrics'
antialiased resizing, which give different numbers. Deviation: outputs of another size are not
resized to the target size first (FID compares distributions; each image is resized to 299).
Small sets make FID biased upwards (use at least a few hundred images for published numbers).

KID (torch-fidelity's defaults): unbiased MMD^2 with the cubic polynomial kernel
``k(x, y) = (x.y / d + 1)^3`` on the same features; with more than 1000 samples, the mean over
100 random subsets of 1000 (numpy ``RandomState(2020)``), otherwise one estimate on the full sets
(what every subset would be).

Backbone role ``inception`` (``inception-v3-fid``, or ``synth-classifier``'s penultimate features).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from scipy import linalg

from benchmark.metrics.base import MetricInput
from benchmark.metrics.features import LearnedMetric

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_SEED = 2020


def fid_statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) in float64 of an NxD feature matrix."""
    f = np.asarray(features.numpy() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrtm(a: np.ndarray) -> np.ndarray:
    """``scipy.linalg.sqrtm`` without its singular-matrix warning (expected for sets smaller than
    the feature dimension); works with SciPy versions that return (root, error) or the root."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = linalg.sqrtm(a)
    return root[0] if isinstance(root, tuple) else root


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """TTUR's Frechet distance of two Gaussians (scipy ``sqrtm``)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("feature statistics have different dimensions")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _as64(features) -> np.ndarray:
    return np.asarray(features.numpy() if isinstance(features, torch.Tensor) else features, dtype=np.float64)


def frechet_distance_low_rank(a: np.ndarray, b: np.ndarray) -> float:
    """The same Frechet distance for sets smaller than the feature dimension, exactly, without a
    DxD square root: with ``A`` the centred features of the first set, ``s1 = A^T A / (n - 1)``,
    and the non-zero eigenvalues of ``s1 s2`` are those of the small symmetric PSD matrix
    ``A s2 A^T / (n - 1)``; ``tr(sqrtm(s1 s2))`` is the sum of their square roots."""
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    ca = a - mu1
    s2 = np.cov(b, rowvar=False)
    small = ca @ s2 @ ca.T / (len(a) - 1)
    eig = np.linalg.eigvalsh((small + small.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu1 - mu2
    tr1 = float((ca * ca).sum() / (len(a) - 1))
    return float(diff.dot(diff) + tr1 + np.trace(s2) - 2 * tr_covmean)


def fid_from_features(features_a, features_b) -> float:
    """FID of two feature sets: TTUR's ``sqrtm`` form when the first set has more samples than
    dimensions (the published setting); otherwise the exact low-rank form (``scipy.linalg.sqrtm``
    of a singular DxD product is slow and, as scipy warns, inaccurate there)."""
    a, b = _as64(features_a), _as64(features_b)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if len(a) - 1 < a.shape[1]:
        return frechet_distance_low_rank(a, b)
    return frechet_distance(*fid_statistics(a), *fid_statistics(b))


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    m = x.shape[0]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    a = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(a - 2 * kxy.sum() / (m * m))


def kid_from_features(features_a, features_b, subsets: int = KID_SUBSETS,
                      subset_size: int = KID_SUBSET_SIZE, seed: int = KID_SEED) -> float:
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    m = min(len(a), len(b), subset_size)
    if m < 2:
        return math.nan
    if len(a) == m and len(b) == m:
        return _mmd2_unbiased(a, b)
    rng = np.random.RandomState(seed)
    vals = [_mmd2_unbiased(a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)])
            for _ in range(subsets)]
    return float(np.mean(vals))


class _SetMetric(LearnedMetric):
    higher_is_better = False
    requires = ("target",)
    role = "inception"
    view = "fid"
    set_level = True

    def compare(self, out: torch.Tensor, tgt: torch.Tensor) -> float:  # pragma: no cover
        raise NotImplementedError

    def score_applicable(self, items: Sequence[MetricInput]) -> list[float]:
        bb = self.model
        out = self.cache.image_vectors(bb, self.view, [it.output for it in items])
        tgt = self.cache.image_vectors(bb, self.view, [it.sample.target for it in items], dataset_side=True)
        value = self.compare(out, tgt)
        return [value] * len(items)


class FID(_SetMetric):
    key = "fid"

    def compare(self, out: torch.Tensor, tgt: torch.Tensor) -> float:
        return fid_from_features(out, tgt)


class KID(_SetMetric):
    key = "kid"

    def compare(self, out: torch.Tensor, tgt: torch.Tensor) -> float:
        return kid_from_features(out.numpy(), tgt.numpy())
