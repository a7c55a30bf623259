"""MA5k-Req (a.k.a. FiveK-Req / TextFiveK): MIT-Adobe FiveK retouches with language requests, from
"Learning by Planning: Language-Guided Global Image Editing" (Shi, Xu, Dernoncourt, Lin, Bui &
Xu, CVPR 2021).

Format, as checked against its source (repository jshi31/T2ONet, folder ``data/FiveK``):

* ``README.md``: ``FiveK.json`` = a list of ``{input, output, request}`` (e.g. ``0001O.jpg`` ->
  ``0001A.jpg``), images in ``images/``.
* ``annotations/{train,val,test}_sess_1.json``: the same records split, plus ``request_idx``
  (tokenised request); repository README: 17,325 / 2,475 / 4,950 = 7:1:2 of 4,950 x 5 pairs.
* ``FiveK.py`` ``define_split``: the split is over unique input images - ``np.unique`` of the
  inputs, ``np.random.seed(0)`` then ``np.random.shuffle``, the first ``int(0.7 n)`` train, the
  next ``int(0.1 n)`` val, the rest test; each split keeps FiveK.json's record order. When only
  ``FiveK.json`` is present this loader rebuilds the split the same way (NumPy's legacy
  RandomState stream is stable across versions).
* ``datasets/FiveKdataset.py``: at test time input and output are resized so their short side is
  600 (``load_infer_img_short_size_bounded``) - ``resize: short:600``, the default here (the
  target is resized to the source's new size, identical for same-aspect pairs).

Sample ids ``<index>-<output stem>`` (index = position in the split file, 5 digits), category
``ma5k``; ``limit`` counts triples.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.datasets.common import (Item, Key, Resize, Task, check_keys,
                                       folder_dataset_args,
                                       contained, expect_type, load_json, pair_task, run_tasks)

__all__ = ["load", "iterate", "SPLITS", "PUBLISHED", "derive_splits"]

SPLITS = ("train", "val", "test")
ALIASES = {"valid": "val", "dev": "val", "validation": "val"}
PUBLISHED = {"train": 17325, "val": 2475, "test": 4950}
CATEGORY = "ma5k"
SESSION = 1
KEYS = ("input", "output", "request")
RATIOS = (0.7, 0.1, 0.2)
HINT = ("get FiveK.json and annotations/ from https://github.com/jshi31/T2ONet (data/FiveK) and the "
        "MIT-Adobe FiveK images named as there, and pass --data-dir <the folder holding them and images/>")
_OPTIONS = ("resize", "workers")


def load(*, data_dir: str | None = None, split: str = "test", limit: int | None = None,
         **options: Any) -> list[Item]:
    """MA5k-Req triples of ``split``; options ``resize`` (short:600 | square:N | none), ``workers``."""
    return list(iterate(data_dir=data_dir, split=split, limit=limit, **options))


def iterate(*, data_dir: str | None = None, split: str = "test", limit: int | None = None,
            **options: Any) -> Iterator[Item]:
    split, root = folder_dataset_args("ma5k", "MA5k-Req", data_dir=data_dir, split=split,
                                      limit=limit, options=options, known=_OPTIONS, splits=SPLITS,
                                      aliases=ALIASES, hint=HINT)
    resize = Resize.parse(options.get("resize", "short:600"))
    records = split_records(root, split)
    return run_tasks(_tasks(root, records, split, resize, limit), options.get("workers"))


def derive_splits(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """FiveK.py's ``define_split`` on the records of FiveK.json."""
    inputs = np.unique([str(r["input"]) for r in records])
    total = len(inputs)
    n_train, n_val = int(total * RATIOS[0]), int(total * RATIOS[1])
    rng = np.random.RandomState(0)  # what np.random.seed(0) seeds
    rng.shuffle(inputs)
    groups = {"train": set(inputs[:n_train]), "val": set(inputs[n_train:n_train + n_val]),
              "test": set(inputs[n_train + n_val:])}
    return {name: [r for r in records if str(r["input"]) in members]
            for name, members in groups.items()}


def split_records(root: Path, split: str) -> list[dict[str, Any]]:
    name = f"{split}_sess_{SESSION}.json"
    for path in (root / "annotations" / name, root / "splits" / name, root / name):
        if path.is_file():
            records = load_json(path, f"MA5k-Req {split} annotations", HINT)
            return _check(records, path.name)
    fivek = root / "FiveK.json"
    if fivek.is_file():
        records = _check(load_json(fivek, "MA5k-Req FiveK.json", HINT), fivek.name)
        return derive_splits(records)[split]
    raise FileNotFoundError(f"MA5k-Req {split} split: neither annotations/{name} nor FiveK.json "
                            f"under {root}; {HINT}")


def _check(records: Any, name: str) -> list[dict[str, Any]]:
    expect_type(records, list, f"MA5k-Req {name} (a list of {{input, output, request}} records)")
    for i, rec in enumerate(records):
        check_keys(rec, KEYS, f"MA5k-Req {name}, record {i}")
    return records


def _tasks(root: Path, records: list[dict[str, Any]], split: str, resize: Resize,
           limit: int | None) -> list[Task]:
    tasks: list[Task] = []
    for i, rec in enumerate(records[:limit] if limit is not None else records):
        out_stem = str(rec["output"]).rsplit("/", 1)[-1].split(".")[0]
        key = Key(f"{i:05d}-{out_stem}", None, 1, CATEGORY)
        meta = {"dataset": "ma5k", "split": split, "input": rec["input"], "output": rec["output"]}

        def paths(rec: dict[str, Any] = rec) -> tuple[Path, Path]:
            return (contained(root, f"images/{rec['input']}", "input image"),
                    contained(root, f"images/{rec['output']}", "output image"))

        tasks.append(pair_task([(key, rec["request"], meta)], paths, resize))
    return tasks
