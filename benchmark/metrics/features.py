"""The feature cache every learned metric reads through, and what learned metrics share.

Within a run, each backbone sees each unique image (by content hash) once per view, and each
unique text once per tokenisation mode: every metric that needs CLIP ViT-B/32 features of a
target reads the same cached vector. Features of dataset-side inputs (sources, targets,
captions) are also written under ``<cache dir>/features/`` and reused across seeds, models and
runs. Model outputs are kept in memory only (a different model or seed gives different images).

Keys: ``(backbone name + weights sha256, view, sha256 of the image's mode, size and pixels)``;
texts: ``(backbone, "text-truncate" or "text-strict", sha256 of the UTF-8 text)``. Backbones with
random weights (tests, timing) are never written to disk. Spatial features (LPIPS taps) are kept
in memory for dataset-side images only and never written to disk (they are large).

On disk: ``features/<backbone>-<sha256[:16]>/<view>/<hash[:2]>/<hash>.npy`` (float32), each
written atomically; an unreadable file is recomputed.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
import weakref
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from benchmark.metrics.backbones import Backbone, resolve
from benchmark.metrics.base import Metric, MetricInput

__all__ = ["FeatureCache", "MetricContext", "LearnedMetric", "default_context", "image_hash",
           "text_hash", "FeatureError", "cosine"]


class FeatureError(ValueError):
    """Some inputs of a batch could not be featurised (the others were computed and cached)."""


# --------------------------------------------------------------------------- hashing
_HASH_MEMO: dict[int, tuple[Any, str]] = {}
_MEMO_LOCK = threading.Lock()


def image_hash(image: Image.Image) -> str:
    """sha256 of an image's mode, size and pixel bytes (memoised per live image object)."""
    memo = _HASH_MEMO.get(id(image))
    if memo is not None and memo[0]() is image:
        return memo[1]
    h = hashlib.sha256(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    h.update(image.tobytes())
    digest = h.hexdigest()
    try:
        ref = weakref.ref(image, lambda _r, k=id(image): _HASH_MEMO.pop(k, None))
        with _MEMO_LOCK:
            _HASH_MEMO[id(image)] = (ref, digest)
    except TypeError:  # pragma: no cover - objects without weakref support are simply not memoised
        pass
    return digest


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity in float64 (``1 - scipy.spatial.distance.cosine``)."""
    a, b = a.double(), b.double()
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


# --------------------------------------------------------------------------- cache
class FeatureCache:
    """In-memory (per run) and on-disk (dataset-side inputs) features, keyed by content."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else None
        self._mem: dict[tuple[str, str, str], Any] = {}
        self._on_disk: set[tuple[str, str, str]] = set()
        self.stats: Counter = Counter()
        # images/texts that went through each backbone, per backbone key (for the perf check)
        self.passes: Counter = Counter()

    # -- disk
    def _path(self, backbone: Backbone, view: str, digest: str) -> Path | None:
        if self.root is None or backbone.sha256 is None or view in backbone.spatial_views:
            return None
        folder = f"{backbone.name}-{backbone.sha256[:16]}"
        return self.root / folder / view / digest[:2] / f"{digest}.npy"

    def _load(self, path: Path | None) -> torch.Tensor | None:
        if path is None or not path.is_file():
            return None
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if arr.dtype != np.float32 or arr.ndim != 1:
            return None
        return torch.from_numpy(arr)

    @staticmethod
    def _save(path: Path | None, value: torch.Tensor) -> None:
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.save(f, value.detach().cpu().float().numpy(), allow_pickle=False)
            os.replace(tmp, path)
        except OSError:  # a read-only cache folder costs speed, never correctness
            pass

    # -- lookup
    def _get(self, key: tuple[str, str, str], path: Path | None, persist: bool = False):
        """Memory, then disk; ``persist``: the caller is dataset-side, so make sure a feature first
        computed for an identical model output also reaches the disk."""
        if key in self._mem:
            self.stats["memory_hits"] += 1
            value = self._mem[key]
            if persist and path is not None and key not in self._on_disk:
                self._save(path, value)
                self._on_disk.add(key)
            return value
        value = self._load(path)
        if value is not None:
            self.stats["disk_hits"] += 1
            self._mem[key] = value
            self._on_disk.add(key)
        return value

    def image_features(self, backbone: Backbone, view: str, images: Sequence[Image.Image],
                       dataset_side: bool | Sequence[bool] = False) -> list[Any]:
        """Features of ``images`` under ``view``, one per image, in order.

        ``dataset_side``: the images belong to the dataset (sources, targets): their features
        persist on disk (vector views) and stay in memory (all views). Outputs' vector features
        stay in memory for the run; outputs' spatial features are not kept.
        Raises ``FeatureError`` after computing and caching every image that could be processed.
        """
        backbone.check_view(view)
        flags = [dataset_side] * len(images) if isinstance(dataset_side, bool) else list(dataset_side)
        spatial = view in backbone.spatial_views
        digests = [image_hash(im) for im in images]
        found: dict[str, Any] = {}
        todo: dict[str, tuple[Image.Image, bool]] = {}
        for im, d, side in zip(images, digests, flags):
            if d in found or d in todo:
                if side and d in todo:
                    todo[d] = (im, True)
                continue
            # outputs are looked up on disk too (an output may be a dataset image, e.g. an unedited
            # source), but only dataset-side features are ever written
            value = self._get((backbone.key, view, d), self._path(backbone, view, d), persist=side)
            if value is not None:
                found[d] = value
            else:
                todo[d] = (im, side)
        errors: dict[str, str] = {}
        if todo:
            prepared: dict[tuple, list[tuple[str, torch.Tensor, bool]]] = {}
            for d, (im, side) in todo.items():
                try:
                    x = backbone.preprocess(im, view)
                    if not torch.isfinite(x).all():
                        raise ValueError("image has NaN or infinite values after preprocessing")
                except Exception as exc:  # noqa: BLE001 - reported per image below
                    errors[d] = f"{type(exc).__name__}: {exc}"
                    continue
                prepared.setdefault(tuple(x.shape), []).append((d, x, side))
            for group in prepared.values():
                for i in range(0, len(group), backbone.batch_size):
                    chunk = group[i:i + backbone.batch_size]
                    out = backbone.forward_images(torch.stack([x for _, x, _ in chunk]), view)
                    self.passes[(backbone.key, view)] += len(chunk)
                    self.stats["computed"] += len(chunk)
                    for j, (d, _, side) in enumerate(chunk):
                        value = [t[j] for t in out] if spatial else out[j].clone()
                        found[d] = value
                        if side or not spatial:
                            self._mem[(backbone.key, view, d)] = value
                        if side and not spatial:
                            path = self._path(backbone, view, d)
                            self._save(path, value)
                            if path is not None:
                                self._on_disk.add((backbone.key, view, d))
        if errors:
            first = next(iter(errors.values()))
            raise FeatureError(f"{len(errors)} image(s) could not be featurised by "
                               f"{backbone.name}: {first}")
        return [found[d] for d in digests]

    def image_vectors(self, backbone: Backbone, view: str, images: Sequence[Image.Image],
                      dataset_side: bool | Sequence[bool] = False) -> torch.Tensor:
        feats = self.image_features(backbone, view, images, dataset_side)
        if not feats:
            return torch.zeros(0, 0)
        return torch.stack(feats)

    def text_vectors(self, backbone: Backbone, texts: Sequence[str], truncate: bool,
                     dataset_side: bool = True) -> torch.Tensor:
        """Text embeddings; ``truncate=False`` makes a text over the tokenizer limit an error
        (raised as ``FeatureError`` after the other texts were computed and cached)."""
        if not backbone.has_text:
            raise ValueError(f"backbone {backbone.name} has no text tower")
        view = "text-truncate" if truncate else "text-strict"
        digests = [text_hash(t) for t in texts]
        found: dict[str, torch.Tensor] = {}
        todo: dict[str, str] = {}
        for t, d in zip(texts, digests):
            if d in found or d in todo:
                continue
            value = self._get((backbone.key, view, d), self._text_path(backbone, view, d),
                              persist=dataset_side)
            if value is not None:
                found[d] = value
            else:
                todo[d] = t
        errors: list[str] = []
        valid: list[tuple[str, torch.Tensor]] = []
        for d, t in todo.items():
            if not isinstance(t, str) or not t.strip():
                errors.append("empty text")
                continue
            try:
                valid.append((d, backbone.tokenize([t], truncate)[0]))
            except ValueError as exc:
                errors.append(str(exc))
        for i in range(0, len(valid), backbone.batch_size):
            chunk = valid[i:i + backbone.batch_size]
            out = backbone.forward_texts(torch.stack([tok for _, tok in chunk]))
            self.passes[(backbone.key, view)] += len(chunk)
            self.stats["computed_texts"] += len(chunk)
            for j, (d, _) in enumerate(chunk):
                value = out[j].clone()
                found[d] = value
                self._mem[(backbone.key, view, d)] = value
                if dataset_side:
                    path = self._text_path(backbone, view, d)
                    self._save(path, value)
                    if path is not None:
                        self._on_disk.add((backbone.key, view, d))
        if errors:
            raise FeatureError(f"{len(errors)} text(s) could not be encoded by {backbone.name}: "
                               f"{errors[0]}")
        return torch.stack([found[d] for d in digests]) if digests else torch.zeros(0, 0)

    def _text_path(self, backbone: Backbone, view: str, digest: str) -> Path | None:
        if self.root is None or backbone.sha256 is None:
            return None
        return self.root / f"{backbone.name}-{backbone.sha256[:16]}" / view / digest[:2] / f"{digest}.npy"

    def summary(self) -> dict[str, int]:
        return {k: int(v) for k, v in sorted(self.stats.items())}


# --------------------------------------------------------------------------- context
@dataclass
class MetricContext:
    """What learned metrics of one run share: backbone choice, weights folder, device, cache.

    ``overrides`` maps a role to a ready backbone (reference tests and ``perf metrics`` pass
    random-weight standard architectures this way)."""

    backbones: str = "auto"
    weights_dir: str | None = None
    device: str = "cpu"
    features: FeatureCache = field(default_factory=FeatureCache)
    overrides: dict[str, Backbone] = field(default_factory=dict)

    def backbone(self, role: str) -> Backbone:
        if role in self.overrides:
            return self.overrides[role]
        return resolve(role, self.backbones, self.weights_dir, self.device)


_DEFAULT: MetricContext | None = None


def default_context() -> MetricContext:
    """The process-wide context of metrics built without one (``backbones="auto"``, no disk cache)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = MetricContext()
    return _DEFAULT


class LearnedMetric(Metric):
    """A metric computed on backbone features read through the shared ``FeatureCache``.

    Subclasses set ``role`` (see ``benchmark.metrics.backbones``) and implement
    ``score_applicable(items)`` for the items whose sample has the fields in ``requires``.
    """

    role: ClassVar[str] = ""

    def __init__(self, context: MetricContext | None = None):
        self.context = context if context is not None else default_context()
        super().__init__()

    def bind(self, context: MetricContext) -> None:
        """Use ``context`` and resolve the backbone now, so missing weights fail before any work."""
        self.context = context
        _ = self.model

    @property
    def model(self) -> Backbone:
        return self.context.backbone(self.role)

    @property
    def cache(self) -> FeatureCache:
        return self.context.features

    def item_applicable(self, item: MetricInput) -> bool:
        return self.applicable(item.sample)

    def score(self, items: Sequence[MetricInput]) -> list[float]:
        use = [i for i, it in enumerate(items) if self.item_applicable(it)]
        out = [math.nan] * len(items)
        if use:
            values = self.score_applicable([items[i] for i in use])
            for i, v in zip(use, values):
                out[i] = float(v)
        return out

    def score_applicable(self, items: Sequence[MetricInput]) -> list[float]:  # pragma: no cover
        raise NotImplementedError

    def score_one(self, item: MetricInput) -> float:
        return self.score([item])[0]

    def describe(self) -> dict:
        info = super().describe()
        info.update(self.model.describe())
        return info
