"""EVR: the image-editing-request corpus of "Expressing Visual Relationships via Language"
(Tan, Dernoncourt, Lin, Bui & Bansal, ACL 2019), collected from Reddit's r/PhotoshopRequest.

Format, as checked against its source (repository airsplay/VisualRelationships):

* ``README.md``: three JSON splits, records ``{img0, img1, sents, uid}`` - img0 the image to
  edit, img1 the edited image, sents the requests ("One for training and three for valid /
  test"), uid a universal id; the image pairs are a separate Google Drive download.
* ``dataset/adobe/{train,valid,test}.json`` (``README_CODE.md``: ``dataset/<name>/{split}.json``)
  hold those records with bare file names (``Reddit.com_4wfxf2_4wfxf2.jpg``; some .png/.gif).

Where the unpacked images sit is not stated anywhere we could read: they are looked up in
``<data-dir>/images/`` and then in ``<data-dir>`` itself (option ``image_dir`` to name another
folder inside ``--data-dir``). The annotation file is looked up as ``{split}.json``,
``dataset/adobe/{split}.json``, ``data/{split}.json`` or ``adobe/{split}.json``.

Protocol (MGIE paper): one triple per sentence, i.e. 3,061 / 1,149 / 1,485 triples (issue text,
not re-counted here). Pairs often differ in size (crops), so images are brought to one size by
``resize`` (default ``square:512``: MGIE ``process_data.ipynb``'s ``crop_resize``, centre square +
512 x 512 bicubic). Unverified: that MGIE applied that function to EVR evaluation; ``resize: none``
keeps native sizes (then pairs of different size fail in the runner) and ``short:N`` is T2ONet's.

Sample ids ``<uid>-s<k>`` (k from 1), category ``evr``; ``limit`` counts triples.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmark.datasets.common import (Item, Key, Resize, Task, check_keys,
                                       folder_dataset_args,
                                       contained, expect_type, load_json, pair_task, run_tasks,
                                       unique_id)

__all__ = ["load", "iterate", "SPLITS", "PUBLISHED"]

SPLITS = ("train", "valid", "test")
ALIASES = {"val": "valid", "dev": "valid", "validation": "valid"}
PUBLISHED = {"train": 3061, "valid": 1149, "test": 1485}
CATEGORY = "evr"
KEYS = ("img0", "img1", "sents", "uid")
ANNOTATION_PLACES = ("{split}.json", "dataset/adobe/{split}.json", "data/{split}.json",
                     "adobe/{split}.json")
HINT = ("get the split files from https://github.com/airsplay/VisualRelationships "
        "(dataset/adobe/{train,valid,test}.json) and the image pairs from the Google Drive folder "
        "linked in its README, and pass --data-dir <the folder holding both>")
_OPTIONS = ("resize", "image_dir", "workers")


def load(*, data_dir: str | None = None, split: str = "test", limit: int | None = None,
         **options: Any) -> list[Item]:
    """EVR triples of ``split``; options ``resize`` (square:512 | short:N | none), ``image_dir``
    (folder inside --data-dir holding the images) and ``workers``."""
    return list(iterate(data_dir=data_dir, split=split, limit=limit, **options))


def iterate(*, data_dir: str | None = None, split: str = "test", limit: int | None = None,
            **options: Any) -> Iterator[Item]:
    split, root = folder_dataset_args("evr", "EVR", data_dir=data_dir, split=split,
                                      limit=limit, options=options, known=_OPTIONS, splits=SPLITS,
                                      aliases=ALIASES, hint=HINT)
    resize = Resize.parse(options.get("resize", "square:512"))
    records, ann = _records(root, split)
    images = _image_dir(root, options.get("image_dir"))
    return run_tasks(_tasks(records, ann, images, split, resize, limit), options.get("workers"))


def annotation_file(root: Path, split: str) -> Path:
    for pattern in ANNOTATION_PLACES:
        path = root / pattern.format(split=split)
        if path.is_file():
            return path
    looked = ", ".join(p.format(split=split) for p in ANNOTATION_PLACES)
    raise FileNotFoundError(f"EVR {split} split: no annotation file under {root} (looked for "
                            f"{looked}); {HINT}")


def _records(root: Path, split: str) -> tuple[list[dict[str, Any]], Path]:
    path = annotation_file(root, split)
    records = load_json(path, f"EVR {split} annotations", HINT)
    expect_type(records, list, f"EVR {path.name} (a list of {{img0, img1, sents, uid}} records)")
    for i, rec in enumerate(records):
        where = f"EVR {path.name}, record {i}"
        check_keys(rec, KEYS, where)
        expect_type(rec["sents"], list, f"{where}, sents")
    return records, path


def _image_dir(root: Path, option: str | None) -> Path:
    if option is not None:
        folder = contained(root, option, "image_dir")
        if not folder.is_dir():
            raise FileNotFoundError(f"EVR image folder not found: {folder}")
        return folder
    return root / "images" if (root / "images").is_dir() else root


def _tasks(records: list[dict[str, Any]], ann: Path, images: Path, split: str, resize: Resize,
           limit: int | None) -> list[Task]:
    tasks: list[Task] = []
    seen: set[str] = set()
    n = 0
    for i, rec in enumerate(records):
        if limit is not None and n >= limit:
            break
        base = unique_id(str(rec["uid"]), seen, i)
        sents = rec["sents"] if limit is None else rec["sents"][: limit - n]
        entries = [(Key(f"{base}-s{k}", None, 1, CATEGORY), text,
                    {"dataset": "evr", "split": split, "uid": rec["uid"], "sentence": k,
                     "img0": rec["img0"], "img1": rec["img1"]})
                   for k, text in enumerate(sents, 1)]
        if not entries:
            continue
        n += len(entries)

        def paths(rec: dict[str, Any] = rec) -> tuple[Path, Path]:
            return (contained(images, rec["img0"], "img0 path"),
                    contained(images, rec["img1"], "img1 path"))

        tasks.append(pair_task(entries, paths, resize))
    return tasks
