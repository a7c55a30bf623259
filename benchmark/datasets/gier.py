"""GIER: the Global-and-local Image Editing Request dataset of "A Benchmark and Baseline for
Language-Driven Image Editing" (Shi, Xu, Dernoncourt, Lin, Bui & Xu, ACCV 2020).

Format, as checked against its source (repository jshi31/T2ONet, folder ``data/GIER``):

* ``README.md``: ``images/<name>`` (a name with ``/`` is found by replacing ``/`` with ``_``),
  ``masks/<input stem>_mask.json`` = a list of non-overlapping masks of the input image, each a
  COCO RLE; records with ``input``, ``output``, ``request``, ``detailed_request``, ``dataset``,
  ``operator`` ({name: {local, ids}} - ids index the mask list, empty when not local),
  ``expert_summary`` and ``amateur_summary`` (lists of requests).
* ``splits/{train,val,test}_sess_3.json`` (``define_split.py``: a seeded 80/10/10 split of the
  pairs) - lists of those records; the files contain ``NaN`` for missing detailed requests.
* ``GIER.py``: one (input, request, output) triple per summary, expert summaries then amateur
  ones; masks decoded with pycocotools (``mask.decode``), a local operator's mask = the union of
  its ``ids``, resized with nearest neighbour.
* Evaluation sizes (``GIER.py`` ``get_req_item`` + ``utils/visual_utils.py``): the input is
  resized so its short side is 600 (``load_infer_img_short_size_bounded``), the output to the
  input's new size (``load_infer_img(output, (h, w))``). That is ``resize: short:600``, the
  default here (bilinear; cv2's bilinear does not antialias, PIL's does - a small deviation).

Our choices: the mask is the union of every operator's ids when all operators of the pair are
local (white = edit region), and None as soon as one operator is global (the whole image may
then change); a mask whose RLE size differs from the input image's size fails the sample.
Category: the operator's name when the pair has one, ``multiple`` otherwise (all names in
``meta["operators"]``). 29.9K triples in total (issue text; per-split numbers not published).

Sample ids ``<input stem>-<k>`` (k from 1 over expert then amateur summaries); ``limit`` counts
triples.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmark.datasets.common import (Item, Key, Resize, Task, check_keys,
                                       folder_dataset_args,
                                       contained, expect_type, load_json, pair_task, rle_decode,
                                       run_tasks, unique_id)
from benchmark.files import ImageError

__all__ = ["load", "iterate", "SPLITS", "PUBLISHED_TOTAL", "union_mask"]

SPLITS = ("train", "val", "test")
ALIASES = {"valid": "val", "dev": "val", "validation": "val"}
PUBLISHED_TOTAL = 29900  # "29.9K" triples over the three splits
SESSION = 3
KEYS = ("input", "output", "operator", "expert_summary", "amateur_summary")
HINT = ("get splits/ from https://github.com/jshi31/T2ONet (data/GIER) and the images and masks "
        "from the GIER release, and pass --data-dir <the folder holding splits/, images/, masks/>")
_OPTIONS = ("resize", "workers")


def load(*, data_dir: str | None = None, split: str = "test", limit: int | None = None,
         **options: Any) -> list[Item]:
    """GIER triples of ``split``; options ``resize`` (short:600 | square:N | none), ``workers``."""
    return list(iterate(data_dir=data_dir, split=split, limit=limit, **options))


def iterate(*, data_dir: str | None = None, split: str = "test", limit: int | None = None,
            **options: Any) -> Iterator[Item]:
    split, root = folder_dataset_args("gier", "GIER", data_dir=data_dir, split=split,
                                      limit=limit, options=options, known=_OPTIONS, splits=SPLITS,
                                      aliases=ALIASES, hint=HINT)
    resize = Resize.parse(options.get("resize", "short:600"))
    records = _records(root, split)
    return run_tasks(_tasks(root, records, split, resize, limit), options.get("workers"))


def split_file(root: Path, split: str) -> Path:
    for path in (root / "splits" / f"{split}_sess_{SESSION}.json", root / f"{split}_sess_{SESSION}.json"):
        if path.is_file():
            return path
    raise FileNotFoundError(f"GIER {split} split: no splits/{split}_sess_{SESSION}.json under {root}; "
                            f"{HINT}")


def _records(root: Path, split: str) -> list[dict[str, Any]]:
    path = split_file(root, split)
    records = load_json(path, f"GIER {split} split", HINT)
    expect_type(records, list, f"GIER {path.name} (a list of image-pair records)")
    for i, rec in enumerate(records):
        where = f"GIER {path.name}, record {i}"
        check_keys(rec, KEYS, where)
        expect_type(rec["operator"], dict, f"{where}, operator")
        expect_type(rec["expert_summary"], list, f"{where}, expert_summary")
        expect_type(rec["amateur_summary"], list, f"{where}, amateur_summary")
    return records


def _image_name(name: Any) -> Any:
    return name.replace("/", "_") if isinstance(name, str) else name  # README: '/' -> '_'


def union_mask(mask_file: Path, ids: list[int], size: tuple[int, int]) -> Image.Image:
    """The union of the RLE masks ``ids`` of ``mask_file`` as a mode L image (255 = edit)."""
    if not mask_file.is_file():
        raise ImageError(f"mask missing: {mask_file}")
    rles = load_json(mask_file, "GIER mask file")
    expect_type(rles, list, f"GIER mask file {mask_file.name} (a list of RLE masks)")
    out: np.ndarray | None = None
    for i in ids:
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(rles):
            raise ValueError(f"mask id {i!r} is not an index into the {len(rles)} masks of "
                             f"{mask_file.name}")
        m = rle_decode(rles[i], f"{mask_file.name} mask {i}")
        if (m.shape[1], m.shape[0]) != size:
            raise ImageError(f"mask size {m.shape[1]}x{m.shape[0]} ({mask_file.name}) does not match "
                             f"source size {size[0]}x{size[1]}")
        out = m if out is None else (out | m)
    if out is None:
        raise ValueError("a local operator without mask ids")
    return Image.fromarray(np.where(out, 255, 0).astype(np.uint8), mode="L")


def _category(ops: dict[str, Any]) -> str:
    return next(iter(ops)) if len(ops) == 1 else ("multiple" if ops else "none")


def _tasks(root: Path, records: list[dict[str, Any]], split: str, resize: Resize,
           limit: int | None) -> list[Task]:
    tasks: list[Task] = []
    seen: set[str] = set()
    n = 0
    for i, rec in enumerate(records):
        if limit is not None and n >= limit:
            break
        ops = rec["operator"]
        category = _category(ops)
        texts = [("expert", t) for t in rec["expert_summary"]] + \
                [("amateur", t) for t in rec["amateur_summary"]]
        if limit is not None:
            texts = texts[: limit - n]
        if not texts:
            continue
        n += len(texts)
        stem = str(rec["input"]).rsplit("/", 1)[-1].split(".")[0]
        base = unique_id(stem, seen, i)
        local = bool(ops) and all(isinstance(v, dict) and v.get("local") is True for v in ops.values())
        ids = sorted({j for v in ops.values() if isinstance(v, dict) for j in (v.get("ids") or [])},
                     key=lambda j: (not isinstance(j, int), str(j))) if local else []
        meta = {"dataset": "gier", "split": split, "input": rec["input"], "output": rec["output"],
                "operators": sorted(ops), "local": local}
        entries = [(Key(f"{base}-{k}", None, 1, category), text, {**meta, "summary": kind})
                   for k, (kind, text) in enumerate(texts, 1)]

        def paths(rec: dict[str, Any] = rec) -> tuple[Path, Path]:
            return (contained(root, f"images/{_image_name(rec['input'])}", "input image"),
                    contained(root, f"images/{_image_name(rec['output'])}", "output image"))

        mask_fn = None
        if local:
            # GIER.py: masks/<input name up to its first dot>_mask.json
            name = str(_image_name(rec["input"])).split(".")[0] + "_mask.json"

            def mask_fn(source: Image.Image, name: str = name, ids: list[int] = ids) -> Image.Image:
                return union_mask(contained(root, f"masks/{name}", "mask file"), ids, source.size)

        tasks.append(pair_task(entries, paths, resize, mask_fn))
    return tasks
