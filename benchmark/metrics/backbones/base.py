"""What a metric backbone is to the metrics and the feature cache.

A backbone maps images (and, for CLIP, texts) to features under named *views*: a view is one
preprocessing convention (CLIP's own resize-and-crop for CLIP-I, InstructPix2Pix's plain bicubic
resize for directional similarity, ...). Features are keyed by (backbone key, view, content hash),
so every metric that needs the same backbone under the same view reads the same cached features.

Every backbone has a public ``name`` and the ``sha256`` of its weights, recorded with each number.
A backbone built with random weights (reference tests, ``editbench perf metrics``) has
``sha256 = None`` and a key that says so, so its features never mix with real ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmark.api import MissingWeightsError  # noqa: F401 - part of this module's interface

__all__ = ["Backbone", "MissingWeightsError", "sha256_file", "rgb", "combine_sha256"]


def rgb(image: Image.Image) -> Image.Image:
    """PIL ``convert("RGB")`` (grayscale is replicated, alpha is dropped), as the reference
    scripts do before every transform; RGB images pass through untouched."""
    return image if image.mode == "RGB" else image.convert("RGB")


_SHA_MEMO: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | Path, sidecar: bool = True) -> str:
    """sha256 of a file, memoised per (path, size, mtime) in this process and in a
    ``<file>.sha256`` sidecar where the folder is writable (weights files are large)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _SHA_MEMO:
        return _SHA_MEMO[key]
    side = path.with_name(path.name + ".sha256")
    try:
        if not sidecar:
            raise OSError
        data = json.loads(side.read_text())
        if data.get("size") == st.st_size and data.get("mtime_ns") == st.st_mtime_ns:
            _SHA_MEMO[key] = data["sha256"]
            return data["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    digest = h.hexdigest()
    _SHA_MEMO[key] = digest
    try:
        if not sidecar:
            raise OSError
        side.write_text(json.dumps({"sha256": digest, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))
    except OSError:
        pass
    return digest


def combine_sha256(parts: dict[str, str]) -> str:
    """One sha256 for a backbone made of several files: sha256 of the sorted ``name:sha256`` lines."""
    text = "".join(f"{k}:{v}\n" for k, v in sorted(parts.items()))
    return hashlib.sha256(text.encode()).hexdigest()


class Backbone:
    """Base class: subclasses set ``name``, ``sha256``, ``views`` and implement ``preprocess`` and
    ``forward_images`` (and ``tokenize``/``forward_texts`` when ``has_text``)."""

    name: str = ""
    sha256: str | None = None
    origin: str = "standard"  # "standard", "synth" or "random"
    views: tuple[str, ...] = ()
    has_text: bool = False
    batch_size: int = 32
    # On a CPU, large batches run slower per image once their activations leave the core's cache:
    # standard backbones set the batch their 2-core CPU timing found fastest (``cpu_batch_size``).
    cpu_batch_size: int | None = None
    # views whose features are spatial maps (large): kept in memory for dataset-side images only,
    # never written to disk
    spatial_views: tuple[str, ...] = ()
    context_length: int = 0

    def __init__(self, device: str | torch.device = "cpu", random_tag: str | None = None):
        self.device = torch.device(device)
        self._random_tag = random_tag
        if self.device.type == "cpu" and self.cpu_batch_size:
            self.batch_size = self.cpu_batch_size
        if random_tag is not None:
            self.origin = "random"
            self.sha256 = None

    @property
    def key(self) -> str:
        """Identity of the weights for cache keys (name + sha256, or the random tag)."""
        if self._random_tag is not None:
            return f"{self.name}@random-{self._random_tag}"
        return f"{self.name}@{self.sha256}"

    def describe(self) -> dict[str, Any]:
        return {"backbone": self.name if self._random_tag is None else f"{self.name} (random weights)",
                "backbone_sha256": self.sha256}

    def check_view(self, view: str) -> None:
        if view not in self.views:
            raise ValueError(f"backbone {self.name} has no view {view!r} (views: {', '.join(self.views)})")

    # images -----------------------------------------------------------------------------
    def preprocess(self, image: Image.Image, view: str) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward_images(self, batch: torch.Tensor, view: str) -> torch.Tensor | list[torch.Tensor]:
        raise NotImplementedError  # pragma: no cover

    # texts ------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], truncate: bool) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward_texts(self, tokens: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


def image_to_uint8_tensor(image: Image.Image) -> torch.Tensor:
    """PIL -> uint8 CxHxW (RGB)."""
    return torch.from_numpy(np.asarray(rgb(image), dtype=np.uint8).copy()).permute(2, 0, 1)


def env_weights_dir() -> str | None:
    return os.environ.get("EDITBENCH_WEIGHTS_DIR") or None
