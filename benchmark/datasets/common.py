"""What the benchmark loaders share: strict reading, schema checks, path containment, COCO RLE,
the protocols' resizing, parquet/hub row access, and per-sample decoding on a small thread pool.

Error policy (every loader follows it):

* a problem with the dataset as a whole (missing folder or annotation file, wrong JSON shape,
  missing parquet columns) raises one ``FileNotFoundError`` / ``ValueError`` whose message says
  what was expected and what was found;
* a problem with one item (missing or truncated image, mask of another size, a path that leaves
  the data folder, a session with a gap) becomes a ``FailedSample`` with a one-line reason, so
  the runner records it for every seed and a split is never silently shortened.

Images are decoded when the sample list is built ("lazily" = per sample, with its errors caught
per sample), on ``workers`` threads (loader option ``workers``; default ``EDITBENCH_LOAD_WORKERS``
or min(4, cores)); PIL releases the GIL while decoding JPEG and part of PNG.
"""

from __future__ import annotations

import bisect
import io
import json
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from benchmark.api import EditSample, FailedSample
from benchmark.files import ImageError, normalise_rgb

__all__ = [
    "Item", "Key", "PathEscapeError", "Resize", "Task", "ParquetRows", "HubRows",
    "one_line", "contained", "load_json", "expect_type", "check_keys", "check_columns",
    "check_options", "rle_decode", "rle_counts_from_string", "decode_image", "decode_mask",
    "image_from_cell", "mask_from_cell", "check_mask_size", "find_parquet", "hub_offline",
    "load_hub", "run_tasks", "default_workers", "failed", "pair_task", "unique_id",
]

Item = EditSample | FailedSample


class PathEscapeError(ValueError):
    """A path in an annotation that points outside the data folder."""


def one_line(exc: BaseException | str) -> str:
    """Exception type and the first line of its message (ImageError: the message alone)."""
    if isinstance(exc, str):
        text = exc
    else:
        lines = str(exc).strip().splitlines()
        msg = lines[0] if lines else ""
        if isinstance(exc, (ImageError, PathEscapeError)) and msg:
            text = msg
        else:
            text = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def default_workers() -> int:
    env = os.environ.get("EDITBENCH_LOAD_WORKERS")
    if env and env.strip().isdigit():
        return max(1, int(env))
    return max(1, min(4, os.cpu_count() or 1))


def failed(sample_id: str, reason: BaseException | str, *, session_id: str | None = None,
           turn: int = 1, category: str = "uncategorised") -> FailedSample:
    return FailedSample(id=sample_id, error=one_line(reason), session_id=session_id, turn=turn,
                        category=category)


# --------------------------------------------------------------------------- files and schema
def contained(root: Path, relative: Any, what: str = "path") -> Path:
    """``root / relative``, refusing absolute paths and ``..`` that climb out of ``root``.

    The check is lexical on purpose: a data folder whose ``images/`` is a symlink to another disk
    is fine; an annotation that names ``../../etc/passwd`` or ``/abs/path`` is not.
    """
    if not isinstance(relative, str) or not relative.strip():
        raise ValueError(f"{what}: expected a file name, found {relative!r}")
    if os.path.isabs(relative) or relative.startswith(("/", "\\")):
        raise PathEscapeError(f"{what} {relative!r} is an absolute path; annotation paths must "
                              f"stay inside the data folder {root}")
    norm = os.path.normpath(relative)
    if norm == ".." or norm.startswith(".." + os.sep) or norm.startswith("../"):
        raise PathEscapeError(f"{what} {relative!r} escapes the data folder {root}")
    return root / norm


def load_json(path: Path, what: str, hint: str = "") -> Any:
    """A JSON file, or one clear error (missing file, invalid JSON). ``NaN`` is accepted, as
    Python's json module does (GIER's split files contain it)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}" + (f"; {hint}" if hint else ""))
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} {path} is not valid JSON ({exc.msg} at line {exc.lineno}, "
                         f"column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} {path} is not UTF-8 text ({exc.reason})") from None


_TYPE_NAMES = {dict: "mapping", list: "list", str: "string", int: "integer"}


def expect_type(obj: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(obj, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        expected = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        found = _TYPE_NAMES.get(type(obj), type(obj).__name__)
        raise ValueError(f"{what}: expected a {expected}, found a {found}")
    return obj


def check_keys(record: Any, required: Iterable[str], what: str) -> Mapping[str, Any]:
    """``record`` as a mapping holding every required key, or ValueError naming expected/found."""
    expect_type(record, dict, what)
    required = list(required)
    missing = [k for k in required if k not in record]
    if missing:
        raise ValueError(f"{what}: missing key(s) {', '.join(missing)}; expected keys "
                         f"{', '.join(required)}, found {', '.join(map(str, record)) or 'none'}")
    return record


def check_columns(found: Sequence[str], required: Iterable[str], what: str) -> None:
    required = list(required)
    missing = [c for c in required if c not in found]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(missing)}; expected columns "
                         f"{', '.join(required)}, found {', '.join(found) or 'none'}")


def check_options(options: Mapping[str, Any], known: Iterable[str], dataset: str) -> None:
    known = sorted(known)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"{dataset} loader: unknown option(s) {', '.join(unknown)}; known options: "
                         f"{', '.join(known) or 'none'}")


# --------------------------------------------------------------------------- COCO RLE
def folder_dataset_args(name: str, display: str, *, data_dir: str | None, split: str,
                        limit: int | None, options: Mapping[str, Any], known: Iterable[str],
                        splits: Iterable[str], aliases: Mapping[str, str], hint: str) -> tuple[str, Path]:
    """Validate the arguments of a folder-only loader; returns (canonical split, data folder)."""
    check_options(options, known, name)
    split = aliases.get(split, split)
    splits = tuple(splits)
    if split not in splits:
        raise ValueError(f"{name}: unknown split {split!r}; expected one of {', '.join(splits)}")
    if limit is not None and limit < 1:
        raise ValueError(f"{name}: limit must be at least 1")
    if data_dir is None:
        raise FileNotFoundError(f"{display} is not on a hub: no --data-dir given; {hint}")
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{display} data folder not found: {root}; {hint}")
    return split, root


def rle_counts_from_string(text: str | bytes) -> list[int]:
    """Run lengths from COCO's compressed RLE string (pycocotools ``rleFrString``).

    Each count is written in 5-bit groups, least significant first, as characters offset by 48;
    bit 0x20 says another group follows and bit 0x10 of the last group is the sign. From the
    fourth count on, the stored value is the difference to the count two places earlier.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii")
    counts: list[int] = []
    pos = 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(text):
                raise ValueError("RLE string ends in the middle of a count")
            c = ord(text[pos]) - 48
            if c < 0 or c > 63:
                raise ValueError(f"RLE string has an invalid character {text[pos]!r}")
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and (c & 0x10):
                value |= -1 << (5 * shift)  # sign-extend the last group
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def rle_decode(rle: Any, what: str = "RLE mask") -> np.ndarray:
    """A COCO RLE ``{"size": [h, w], "counts": str | list[int]}`` as a bool array (h, w).

    Runs alternate background/foreground starting with background and walk the image
    column by column (Fortran order), as pycocotools stores them.
    """
    check_keys(rle, ("size", "counts"), what)
    size = rle["size"]
    if (not isinstance(size, (list, tuple)) or len(size) != 2
            or not all(isinstance(v, int) and v >= 0 for v in size)):
        raise ValueError(f"{what}: size must be [height, width], found {size!r}")
    h, w = int(size[0]), int(size[1])
    counts = rle["counts"]
    if isinstance(counts, (str, bytes)):
        counts = rle_counts_from_string(counts)
    elif isinstance(counts, list) and all(isinstance(c, int) for c in counts):
        counts = list(counts)
    else:
        raise ValueError(f"{what}: counts must be a string or a list of integers")
    if any(c < 0 for c in counts):
        raise ValueError(f"{what}: negative run length")
    if sum(counts) != h * w:
        raise ValueError(f"{what}: run lengths sum to {sum(counts)}, expected {h}x{w} = {h * w}")
    values = (np.arange(len(counts)) % 2).astype(bool)
    flat = np.repeat(values, counts)
    return flat.reshape(w, h).T


# --------------------------------------------------------------------------- image decoding
def _open_bytes(data: bytes, role: str, where: str) -> Image.Image:
    try:
        im = Image.open(io.BytesIO(data))
        im.load()  # decodes everything now (a truncated file fails here); no file handle is held
        return im
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else "corrupt"
        raise ImageError(f"{role} image {where} cannot be decoded ({type(exc).__name__}: {first})") from None


def decode_image(data: bytes, role: str, where: str) -> Image.Image:
    """Encoded bytes -> 8-bit RGB, with the same strictness as ``benchmark.files.read_image``."""
    return normalise_rgb(_open_bytes(data, role, where), role, where)


_LUT_WHITE = [255 if v > 127 else 0 for v in range(256)]
_LUT_BLACK = [255 if v == 0 else 0 for v in range(256)]


def decode_mask(data: bytes | Image.Image, role: str, where: str, rule: str = "white") -> Image.Image:
    """Encoded bytes (or an opened image) -> mode L mask, 255 = edit region.

    Rules: ``white`` grey > 127 is the edit region (MagicBrush; same as ``read_mask``),
    ``black`` grey == 0 after dropping alpha is the edit region (HumanEdit's ``mask_convert.py``),
    ``alpha`` alpha > 127 is the edit region, ``auto`` = ``alpha`` when the image has a
    non-uniform alpha channel, else ``black``. (Lookup tables in PIL: no per-pixel Python.)
    """
    if rule not in ("white", "black", "alpha", "auto"):
        raise ValueError(f"unknown mask rule {rule!r}; expected white, black, alpha or auto")
    im = data if isinstance(data, Image.Image) else _open_bytes(data, role, where)
    if im.mode.startswith("I") or im.mode == "F":
        raise ImageError(f"{role} image {where} is {im.mode}; masks must be 8-bit")
    alpha = None
    if rule in ("auto", "alpha"):
        if im.mode in ("RGBA", "LA"):
            alpha = im.getchannel("A")
        elif im.mode == "PA" or (im.mode == "P" and "transparency" in im.info):
            alpha = im.convert("RGBA").getchannel("A")
        if rule == "auto":
            varies = alpha is not None and alpha.getextrema()[0] != alpha.getextrema()[1]
            rule = "alpha" if varies else "black"
    if rule == "alpha":
        if alpha is None:  # no alpha channel: every pixel is opaque
            return Image.new("L", im.size, 255)
        return alpha.point(_LUT_WHITE)
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA")
    # PIL's conversion to L weighs R, G and B and ignores alpha, i.e. alpha is dropped first
    grey = im if im.mode == "L" else im.convert("L")
    return grey.point(_LUT_WHITE if rule == "white" else _LUT_BLACK)


def _cell_bytes(cell: Any, role: str, where: str, root: Path | None) -> bytes | Image.Image:
    """Bytes of an image cell as ``datasets`` writes it: {"bytes", "path"}, raw bytes, or PIL."""
    if cell is None:
        raise ImageError(f"{role} image missing ({where}: empty cell)")
    if isinstance(cell, Image.Image):
        return cell
    if isinstance(cell, (bytes, bytearray, memoryview)):
        return bytes(cell)
    if isinstance(cell, dict):
        data = cell.get("bytes")
        if data:
            return bytes(data)
        path = cell.get("path")
        if path and root is not None:
            full = contained(root, path, f"{role} image path")
            if not full.is_file():
                raise ImageError(f"{role} image missing: {full}")
            return full.read_bytes()
        raise ImageError(f"{role} image missing ({where}: cell has no bytes"
                         + (f", path {path!r}" if path else "") + ")")
    raise ImageError(f"{role} image {where}: unsupported cell type {type(cell).__name__}")


def image_from_cell(cell: Any, role: str, where: str, root: Path | None = None) -> Image.Image:
    data = _cell_bytes(cell, role, where, root)
    if isinstance(data, Image.Image):
        data.load()
        return normalise_rgb(data, role, where)
    return decode_image(data, role, where)


def mask_from_cell(cell: Any, role: str, where: str, root: Path | None = None,
                   rule: str = "white") -> Image.Image:
    return decode_mask(_cell_bytes(cell, role, where, root), role, where, rule)


def check_mask_size(mask: Image.Image | None, source: Image.Image, what: str = "mask") -> None:
    if mask is not None and mask.size != source.size:
        raise ImageError(f"{what} size {mask.size[0]}x{mask.size[1]} does not match source size "
                         f"{source.size[0]}x{source.size[1]}")


# --------------------------------------------------------------------------- protocol resizing
@dataclass(frozen=True)
class Resize:
    """How a protocol brings source, target and mask to one size.

    ``none``: native sizes (the runner fails a sample whose target size differs).
    ``short:N``: source resized so its short side is N (rounded, as T2ONet's
    ``load_infer_img_short_size_bounded``); target resized to the source's new size (T2ONet's
    ``load_infer_img(output, (h, w))``); bilinear (T2ONet uses cv2 INTER_LINEAR, which does not
    antialias when shrinking; PIL's bilinear does - a documented deviation). Mask: nearest.
    ``square:N``: centre square crop then N x N, bicubic (MGIE ``process_data.ipynb``
    ``crop_resize``, PIL's default filter); mask: the same crop, nearest.
    """

    mode: str = "none"
    size: int = 0

    @classmethod
    def parse(cls, spec: str | None) -> "Resize":
        if spec is None or spec == "none":
            return cls("none", 0)
        text = str(spec)
        mode, sep, num = text.partition(":")
        if mode in ("short", "square") and sep and num.isdigit() and int(num) > 0:
            return cls(mode, int(num))
        raise ValueError(f"resize {spec!r} not understood; expected none, short:N or square:N")

    def __str__(self) -> str:
        return "none" if self.mode == "none" else f"{self.mode}:{self.size}"

    @staticmethod
    def _crop_box(size: tuple[int, int]) -> tuple[int, int, int, int]:
        w, h = size
        if w > h:
            p = (w - h) // 2
            return (p, 0, p + h, h)
        p = (h - w) // 2
        return (0, p, w, p + w)

    def apply(self, source: Image.Image, target: Image.Image | None,
              mask: Image.Image | None) -> tuple[Image.Image, Image.Image | None, Image.Image | None]:
        if self.mode == "none":
            return source, target, mask
        if self.mode == "short":
            w, h = source.size
            ratio = self.size / min(w, h)
            new = (max(1, int(round(w * ratio))), max(1, int(round(h * ratio))))
            src = source if new == source.size else source.resize(new, Image.BILINEAR)
            tgt = None if target is None else (
                target if target.size == new else target.resize(new, Image.BILINEAR))
            msk = None if mask is None else (
                mask if mask.size == new else mask.resize(new, Image.NEAREST))
            return src, tgt, msk
        n = (self.size, self.size)

        def square(im: Image.Image, resample: int) -> Image.Image:
            im = im.crop(self._crop_box(im.size)) if im.size[0] != im.size[1] else im
            return im if im.size == n else im.resize(n, resample)

        return (square(source, Image.BICUBIC),
                None if target is None else square(target, Image.BICUBIC),
                None if mask is None else square(mask, Image.NEAREST))


# --------------------------------------------------------------------------- parquet and hub
def find_parquet(root: Path, patterns: Sequence[str], what: str, hint: str) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{what}: data folder not found: {root}")
    for pattern in patterns:
        files = sorted(p for p in root.glob(pattern) if p.is_file())
        if files:
            return files
    raise FileNotFoundError(f"{what}: no parquet file under {root} (looked for "
                            f"{', '.join(patterns)}); {hint}")


class ParquetRows:
    """Rows of local parquet files, read one row group at a time with pyarrow (the ``datasets``
    library's own storage layer): a 25 GB split is never loaded whole and nothing is copied into
    a cache. Image columns come back as ``datasets`` stores them: ``{"bytes", "path"}``."""

    def __init__(self, files: Sequence[Path], what: str):
        import pyarrow.parquet as pq

        self.what = what
        self.files = [Path(f) for f in files]
        self._files = []
        for path in self.files:
            try:
                self._files.append(pq.ParquetFile(path))
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
                raise ValueError(f"{what}: {path} is not a readable parquet file "
                                 f"({one_line(exc)})") from None
        names = [pf.schema_arrow.names for pf in self._files]
        self.columns: list[str] = list(names[0]) if names else []
        for path, cols in zip(self.files, names):
            if set(cols) != set(self.columns):
                raise ValueError(f"{what}: {path.name} has columns {', '.join(cols)}, but "
                                 f"{self.files[0].name} has {', '.join(self.columns)}")
        self._groups: list[tuple[int, int]] = []  # (file index, row group index)
        self._starts: list[int] = []
        total = 0
        for fi, pf in enumerate(self._files):
            for gi in range(pf.num_row_groups):
                self._groups.append((fi, gi))
                self._starts.append(total)
                total += pf.metadata.row_group(gi).num_rows
        self.num_rows = total
        self._cache: dict[tuple[int, tuple[str, ...]], Any] = {}

    def __len__(self) -> int:
        return self.num_rows

    def column(self, name: str) -> list[Any]:
        out: list[Any] = []
        for pf in self._files:
            out.extend(pf.read(columns=[name]).column(0).to_pylist())
        return out

    def dtypes(self) -> dict[str, str]:
        return {f.name: str(f.type) for f in self._files[0].schema_arrow} if self._files else {}

    def _group(self, g: int, columns: tuple[str, ...]):
        key = (g, columns)
        if key not in self._cache:
            if len(self._cache) >= 2:  # rows are asked for in order; keep memory to two groups
                self._cache.pop(next(iter(self._cache)))
            fi, gi = self._groups[g]
            self._cache[key] = self._files[fi].read_row_group(gi, columns=list(columns))
        return self._cache[key]

    def row(self, index: int, columns: Sequence[str]) -> dict[str, Any]:
        g = bisect.bisect_right(self._starts, index) - 1
        table = self._group(g, tuple(columns))
        offset = index - self._starts[g]
        return {c: table.column(c)[offset].as_py() for c in columns}


class HubRows:
    """The same interface over a ``datasets.Dataset`` (hub data), image columns undecoded."""

    def __init__(self, dataset: Any, image_columns: Sequence[str]):
        import datasets

        self.what = "hub dataset"
        for col in image_columns:
            if col in dataset.column_names:
                dataset = dataset.cast_column(col, datasets.Image(decode=False))
        self.dataset = dataset
        self.columns = list(dataset.column_names)
        self.num_rows = len(dataset)

    def __len__(self) -> int:
        return self.num_rows

    def column(self, name: str) -> list[Any]:
        return list(self.dataset[name])

    def dtypes(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.dataset.features.items()}

    def row(self, index: int, columns: Sequence[str]) -> dict[str, Any]:
        item = self.dataset[int(index)]
        return {c: item[c] for c in columns}


_TRUE = ("1", "true", "yes", "on")


def hub_offline() -> bool:
    """True when the environment says not to reach the hub (the usual HF switches)."""
    return any(os.environ.get(k, "").strip().lower() in _TRUE
               for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "EDITBENCH_OFFLINE"))


def load_hub(name: str, split: str, hint: str, display: str | None = None, **kwargs: Any) -> Any:
    """``datasets.load_dataset(name, split=split)`` or one FileNotFoundError saying how to get it."""
    display = display or name
    if hub_offline():
        raise FileNotFoundError(f"{display}: no --data-dir given and the hub is switched off "
                                f"(HF_HUB_OFFLINE/HF_DATASETS_OFFLINE); {hint}")
    try:
        import datasets

        return datasets.load_dataset(name, split=split, **kwargs)
    except Exception as exc:  # noqa: BLE001 - network, auth and format errors all end here
        raise FileNotFoundError(f"could not load {display} (split {split}) from the hub: "
                                f"{one_line(exc)}; {hint}") from None


# --------------------------------------------------------------------------- per-sample decoding
@dataclass(frozen=True)
class Key:
    id: str
    session_id: str | None = None
    turn: int = 1
    category: str = "uncategorised"


@dataclass
class Task:
    """Work that yields the samples named by ``keys``; if ``run`` raises, each of them fails
    with the one-line reason (the safety net behind each loader's own per-sample handling)."""

    keys: list[Key]
    run: Callable[[], list[Item]]

    def safe(self) -> list[Item]:
        try:
            return self.run()
        except Exception as exc:  # noqa: BLE001 - a bad item must not end the load
            return [failed(k.id, exc, session_id=k.session_id, turn=k.turn, category=k.category)
                    for k in self.keys]


def run_tasks(tasks: Iterable[Task], workers: int | None = None) -> Iterator[Item]:
    """Run tasks on a thread pool, yielding their samples in task order, with at most a few
    tasks in flight (so raw bytes read ahead stay bounded)."""
    workers = default_workers() if workers is None else max(1, int(workers))
    if workers == 1:
        for task in tasks:
            yield from task.safe()
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="editbench-load") as pool:
        pending: deque = deque()
        for task in tasks:
            pending.append(pool.submit(task.safe))
            if len(pending) >= 4 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()


# --------------------------------------------------------------------------- folder pairs
def pair_task(entries: Sequence[tuple[Key, Any, Mapping[str, Any]]],
              paths: Callable[[], tuple[Path, Path]], resize: Resize,
              mask: Callable[[Image.Image], Image.Image | None] | None = None) -> Task:
    """One source/target pair on disk shared by several instructions (``entries``: key, text,
    meta). The images are decoded once; an unreadable image fails every entry of the pair.
    ``mask(source)`` is called with the source at its native size and must match it."""
    from benchmark.files import read_image

    keys = [e[0] for e in entries]

    def run() -> list[Item]:
        src_path, tgt_path = paths()
        source = read_image(src_path, "source")
        target = read_image(tgt_path, "target")
        m = mask(source) if mask is not None else None
        check_mask_size(m, source)
        source, target, m = resize.apply(source, target, m)
        out: list[Item] = []
        for key, text, meta in entries:
            if not isinstance(text, str) or not text.strip():
                out.append(failed(key.id, f"instruction is {text!r}, not text",
                                  session_id=key.session_id, turn=key.turn, category=key.category))
                continue
            out.append(EditSample(id=key.id, source=source, instruction=text, target=target,
                                  mask=m, category=key.category, session_id=key.session_id,
                                  turn=key.turn, meta=dict(meta)))
        return out

    return Task(keys, run)


def unique_id(base: str, seen: set[str], index: int) -> str:
    """``base``, or ``base-<index>`` when an earlier record already used it."""
    sid = base if base not in seen else f"{base}-{index}"
    seen.add(sid)
    return sid
