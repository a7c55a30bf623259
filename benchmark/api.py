"""The small, stable core every dataset, model and metric speaks.

Conventions
-----------
* Images are ``PIL.Image.Image`` in mode ``"RGB"`` (8 bit per channel). Masks are mode ``"L"``
  with 255 marking the region an edit may change (MagicBrush: white = edit region).
* Turn indices start at 1, as in MagicBrush's ``turn_index``.
* Randomness: a model never seeds a global RNG. It draws noise from ``request.generator()``,
  a ``torch.Generator`` seeded from ``(seed, sample id)`` alone, so an edit does not depend on
  the batch it was run in, nor on the order of the batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

__all__ = [
    "MissingWeightsError",
    "EditSample",
    "FailedSample",
    "EditRequest",
    "EditResult",
    "EditModel",
    "BaseEditModel",
    "derive_seed",
    "stable_hash",
]


class MissingWeightsError(FileNotFoundError):
    """Weights that are not on this machine (a backbone, a model, a base model to train from);
    the message names what is missing and how to get it."""


def stable_hash(obj: Any) -> str:
    """sha256 hex digest of the canonical JSON form of ``obj`` (sorted keys, no whitespace)."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def public_config(obj: Any) -> Any:
    """``obj`` with every mapping key that starts with ``_`` dropped, recursively."""
    if isinstance(obj, dict):
        return {k: public_config(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [public_config(v) for v in obj]
    return obj


def derive_seed(seed: int, sample_id: str) -> int:
    """63-bit seed for one edit, a function of the protocol seed and the sample id only."""
    digest = hashlib.sha256(f"editbench:{int(seed)}:{sample_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@dataclass(frozen=True)
class EditSample:
    """One edit to make: a source image and an instruction, with whatever ground truth exists."""

    id: str
    source: Image.Image
    instruction: str
    target: Image.Image | None = None
    mask: Image.Image | None = None
    input_caption: str | None = None
    goal_caption: str | None = None
    expressive: str | None = None
    category: str = "uncategorised"
    session_id: str | None = None
    turn: int = 1
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def captions(self) -> dict[str, str | None]:
        return {"input": self.input_caption, "goal": self.goal_caption}

    def replace(self, **changes: Any) -> "EditSample":
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description without the pixels (for ``sample.json`` files)."""
        return {
            "id": self.id,
            "instruction": self.instruction,
            "input_caption": self.input_caption,
            "goal_caption": self.goal_caption,
            "expressive": self.expressive,
            "category": self.category,
            "session_id": self.session_id,
            "turn": self.turn,
            "size": list(self.source.size),
            "has_target": self.target is not None,
            "has_mask": self.mask is not None,
            "meta": dict(self.meta),
        }


@dataclass(frozen=True)
class FailedSample:
    """A dataset item that could not be loaded (missing/corrupt file, bad mode, ...).

    Loaders return it in place of the ``EditSample`` so the runner records the one-line
    ``error`` for every seed and carries on with the other samples.
    """

    id: str
    error: str
    session_id: str | None = None
    turn: int = 1
    category: str = "uncategorised"


@dataclass(frozen=True)
class EditRequest:
    """A sample to edit under one protocol seed with the task's generation settings."""

    sample: EditSample
    seed: int
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def edit_seed(self) -> int:
        return derive_seed(self.seed, self.sample.id)

    def generator(self, device: str | Any = "cpu"):
        """A fresh ``torch.Generator`` on ``device`` seeded from (seed, sample id)."""
        import torch

        return torch.Generator(device=device).manual_seed(self.edit_seed)


@dataclass
class EditResult:
    """What a model returns for one request.

    ``image`` may be a PIL image, a uint8 HWC array, or a float array/tensor in [0, 1]
    (HWC or CHW); the runner validates and converts it (NaN/inf is a per-sample failure).
    """

    image: Any
    expressive: str | None = None
    seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class EditModel(Protocol):
    """What the runner needs of an editor. ``edit`` is batched and returns one result per request,
    in order; raising fails the batch, which the runner then retries one request at a time."""

    name: str
    preset: str

    @property
    def config_hash(self) -> str: ...

    @property
    def weights_sha256(self) -> str | None: ...

    def edit(self, requests: Sequence[EditRequest]) -> list[EditResult]: ...


class BaseEditModel:
    """Convenience base: subclasses set ``name``, ``preset`` and implement ``config()`` and ``edit``."""

    name: str = "unnamed"
    preset: str = "default"
    device: str = "cpu"

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "preset": self.preset}

    @property
    def config_hash(self) -> str:
        """``stable_hash`` of ``config()`` without underscore keys: diffusers/transformers configs
        carry bookkeeping such as ``_use_default_values``, a list built from a set, whose order
        changed from process to process and with it the hash (and so every output-store key)."""
        return stable_hash(public_config(self.config()))

    @property
    def weights_sha256(self) -> str | None:
        return None

    @property
    def variant(self) -> str | None:
        """A non-default way of running the same weights (e.g. ``"bfloat16"``), or None: recorded
        in the result, and its leaderboard rows stay apart from the default mode's."""
        return None

    def edit(self, requests: Sequence[EditRequest]) -> list[EditResult]:  # pragma: no cover
        raise NotImplementedError
