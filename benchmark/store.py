"""The on-disk per-sample output store that makes runs resumable.

Layout under ``--cache-dir`` (default ``.editbench-cache/``)::

    outputs/<task>-<task store hash[:12]>/<model>-<preset>-<config hash[:12]>-<weights[:12]>/
        seed<k>/<sample id>.png    the edit, lossless
        seed<k>/<sample id>.json   its record: full key, png sha256, seconds, expressive text

The key is (task store hash, model config hash, weights sha256, seed, sample id). The task store
hash covers the dataset, turn protocol, settings and version but not the seed list or metric set,
so adding a seed or a metric reuses every edit already made.

The JSON is written after the PNG and is the commit marker: an entry counts only when its JSON
parses, its key matches and the PNG's sha256 matches the one it records. Both writes are atomic
(temp file + rename), so ``kill -9`` at any moment leaves either a whole entry or none.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from benchmark.files import atomic_write_bytes, atomic_write_json, png_bytes, read_image, sha256_bytes

DEFAULT_CACHE_DIR = ".editbench-cache"
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(sample_id: str) -> str:
    """A filename for a sample id: itself when safe, else a cleaned form plus a short hash."""
    cleaned = _SAFE.sub("_", sample_id)
    if cleaned == sample_id and not sample_id.startswith("."):
        return sample_id
    return f"{cleaned.lstrip('.')[:80]}-{hashlib.sha256(sample_id.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class StoredOutput:
    image: Image.Image
    expressive: str | None
    seconds: float | None
    extra: dict[str, Any] = field(default_factory=dict)


class OutputStore:
    def __init__(self, root: str | Path, task_name: str, task_store_hash: str, model_name: str,
                 preset: str | None, config_hash: str, weights_sha256: str | None):
        self.root = Path(root)
        self.key = {
            "task": task_name,
            "task_store_hash": task_store_hash,
            "model": model_name,
            "preset": preset,
            "config_hash": config_hash,
            "weights_sha256": weights_sha256,
        }
        model_dir = "-".join([safe_name(model_name), safe_name(str(preset or "default")),
                              config_hash[:12], (weights_sha256 or "noweights")[:12]])
        self.dir = self.root / "outputs" / f"{safe_name(task_name)}-{task_store_hash[:12]}" / model_dir

    @classmethod
    def for_result(cls, root: str | Path, result: dict, task_store_hash: str | None = None) -> "OutputStore":
        """The store a run's result JSON was made from (its task and model keys);
        ``task_store_hash`` fills in for results that predate the key."""
        m = result["model"]
        return cls(root, result["task"]["name"], result["task"].get("store_hash") or task_store_hash or "",
                   m["name"], m["preset"], m["config_hash"], m["weights_sha256"])

    def _paths(self, seed: int, sample_id: str) -> tuple[Path, Path]:
        base = self.dir / f"seed{int(seed)}" / safe_name(sample_id)
        return base.with_name(base.name + ".png"), base.with_name(base.name + ".json")

    def get(self, seed: int, sample_id: str) -> StoredOutput | None:
        png, meta = self._paths(seed, sample_id)
        try:
            record = json.loads(meta.read_text(encoding="utf-8"))
            data = png.read_bytes()
        except (OSError, ValueError):
            return None
        if record.get("key") != {**self.key, "seed": int(seed), "sample_id": sample_id}:
            return None
        if record.get("png_sha256") != sha256_bytes(data):
            return None
        try:
            image = read_image(png, "stored output")
        except ValueError:
            return None
        return StoredOutput(image=image, expressive=record.get("expressive"),
                            seconds=record.get("seconds"), extra=record.get("extra") or {})

    def has(self, seed: int, sample_id: str) -> bool:
        return self.get(seed, sample_id) is not None

    def put(self, seed: int, sample_id: str, image: Image.Image, *, expressive: str | None,
            seconds: float | None, extra: dict[str, Any] | None = None) -> None:
        png, meta = self._paths(seed, sample_id)
        data = png_bytes(image)
        atomic_write_bytes(png, data)
        atomic_write_json(meta, {
            "key": {**self.key, "seed": int(seed), "sample_id": sample_id},
            "png_sha256": sha256_bytes(data),
            "size": list(image.size),
            "seconds": seconds,
            "expressive": expressive,
            "extra": extra or {},
        })
