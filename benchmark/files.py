"""Files: atomic writes, lossless PNG, strict image reading and model-output validation.

Every write goes to a temporary file in the destination folder, is flushed to disk, then
renamed over the destination (``os.replace`` is atomic on POSIX), so a reader never sees half a
file, even after ``kill -9``.

Image reading is strict on purpose: the harness scores 8-bit RGB. Modes that convert without
loss (L, P without transparency, RGBA/LA that are fully opaque) are converted; modes whose
conversion would change what is scored (transparent pixels, 16-bit or float data, CMYK whose
RGB depends on a colour profile) are refused with a one-line reason, so the sample is recorded
as a failure rather than scored on pixels nobody chose.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "ImageError",
    "atomic_write_bytes",
    "atomic_write_json",
    "png_bytes",
    "read_image",
    "read_mask",
    "to_rgb_image",
    "sha256_bytes",
    "sha256_file",
]


class ImageError(ValueError):
    """An image that cannot be scored; the message is the one-line reason."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))


def png_bytes(image: Image.Image) -> bytes:
    """Lossless PNG bytes; fixed settings so the same pixels give the same bytes."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _open(path: str | os.PathLike, role: str) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{role} image missing: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return im.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{role} image {path} cannot be decoded ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'corrupt'})") from None


def normalise_rgb(im: Image.Image, role: str = "image", where: str = "") -> Image.Image:
    """8-bit RGB without loss, or an ImageError saying why that is impossible."""
    where = f" {where}" if where else ""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("L", "1"):
        return im.convert("RGB")
    if mode == "P":
        if "transparency" in im.info:
            im = im.convert("RGBA")
            mode = "RGBA"
        else:
            return im.convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(im.getchannel("A"))
        n = int((alpha < 255).sum())
        if n:
            raise ImageError(f"{role} image{where} has transparency ({n} pixels with alpha < 255); "
                             "flatten it onto a background first")
        return im.convert("RGB")
    if mode == "CMYK":
        raise ImageError(f"{role} image{where} is CMYK; its RGB depends on a colour profile, "
                         "convert it to RGB first")
    if mode.startswith("I") or mode == "F":
        raise ImageError(f"{role} image{where} is {mode} (16-bit/32-bit); the harness scores 8-bit "
                         "RGB, convert it first")
    raise ImageError(f"{role} image{where} has unsupported mode {mode}")


def read_image(path: str | os.PathLike, role: str = "image") -> Image.Image:
    """Read an 8-bit RGB image strictly (see module docstring)."""
    return normalise_rgb(_open(path, role), role, str(path))


def read_mask(path: str | os.PathLike, role: str = "mask") -> Image.Image:
    """Read a mask as mode L with values {0, 255}: white (> 127) = edit region (MagicBrush)."""
    im = _open(path, role)
    if im.mode.startswith("I") or im.mode == "F":
        raise ImageError(f"{role} image {path} is {im.mode}; masks must be 8-bit")
    if im.mode in ("RGBA", "LA", "P", "PA"):
        im = im.convert("RGBA").convert("RGB")
    grey = np.asarray(im.convert("L"))
    return Image.fromarray(np.where(grey > 127, 255, 0).astype(np.uint8), mode="L")


def to_rgb_image(image: Any) -> Image.Image:
    """Validate and convert a model's output to an 8-bit RGB PIL image.

    Accepts a PIL image, a uint8 HxWx3 array, or a float array/tensor in [0, 1] laid out HWC or
    CHW (values are clipped to [0, 1] and rounded, as diffusers' image processor does).
    NaN or infinite values raise ImageError.
    """
    if isinstance(image, Image.Image):
        return normalise_rgb(image, "output")
    if hasattr(image, "detach"):  # torch tensor, without importing torch here
        image = image.detach().cpu().float().numpy()
    arr = np.asarray(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3:
        raise ImageError(f"output has shape {arr.shape}; expected HxWx3 or 3xHxW")
    if arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.shape[-1] != 3:
        raise ImageError(f"output has shape {arr.shape}; expected 3 channels")
    if arr.dtype == np.uint8:
        return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ImageError(f"output has dtype {arr.dtype}; expected uint8 or float in [0, 1]")
    bad = int((~np.isfinite(arr)).sum())
    if bad:
        raise ImageError(f"output contains {bad} NaN/inf values")
    arr = np.round(np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr), mode="RGB")
