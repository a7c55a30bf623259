"""HumanEdit (Bai et al., 2024, arXiv:2412.04280): human-annotated instruction edits with masks.

Format, as checked against its sources:

* hub ``BryanW/HumanEdit`` (dataset card README.md): one ``train`` split of 5,751 rows in
  ``data/train-*.parquet``; columns ``IMAGE_ID``, ``EDITING_TYPE`` (Action, Add, Counting,
  Relation, Remove, Replace - repository viiika/HumanEdit README.md), ``CORE`` and ``MASK``
  (int32 flags), ``EDITING_INSTRUCTION``, ``OUTPUT_DESCRIPTION``, ``INPUT_CAPTION_BY_LLAMA``,
  ``OUTPUT_CAPTION_BY_LLAMA``, ``INPUT_IMG``, ``MASK_IMG``, ``OUTPUT_IMG``. The card warns that
  the mask "may need to adjust", pointing at viiika/HumanEdit ``mask_convert.py``, which turns a
  mask into white = edit region by taking pixels that are pure black after dropping alpha.
* Masks (option ``mask_rule``): ``auto`` (default) reads an image whose alpha channel varies as
  brush strokes on a transparent layer (alpha > 127 = edit) and otherwise applies
  ``mask_convert.py``'s rule (black = edit); ``black``, ``white`` and ``alpha`` force one rule.
  Unverified: which of these the hub's MASK_IMG actually needs (we could not read a row here).

Split: MIND-Edit (Wang et al., 2025) trains on 5,244 and tests on 500 HumanEdit pairs without
publishing the split. We reproduce a 500-pair test split deterministically: every row is keyed by
``IMAGE_ID`` and ``EDITING_INSTRUCTION``, ranked by sha256(``"humanedit-split-v1" + key``), and the
500 lowest ranks form ``test``; ``train`` is the rest (5,251 of the hub's 5,751 rows, i.e. 7
more than MIND-Edit's count, which we cannot explain from what is published); ``all`` is every
row. The split does not depend on row order or sharding. Option ``test_size`` changes the 500.

Captions (option ``captions``): ``llama`` (default) input = INPUT_CAPTION_BY_LLAMA, goal =
OUTPUT_CAPTION_BY_LLAMA; ``description``: goal = OUTPUT_DESCRIPTION (human-written).
Sample ids = ``IMAGE_ID`` (``-2``, ``-3``... for repeated ids, in (id, instruction) order);
category = ``EDITING_TYPE``; ``limit`` counts rows, in file order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmark.api import EditSample
from benchmark.datasets.common import (HubRows, Item, Key, ParquetRows, Task, check_columns,
                                       check_mask_size, check_options, failed, find_parquet,
                                       image_from_cell, load_hub, mask_from_cell, run_tasks)

__all__ = ["load", "iterate", "HUB_NAME", "SPLITS", "PUBLISHED", "split_of"]

HUB_NAME = "BryanW/HumanEdit"
SPLITS = ("test", "train", "all")
PUBLISHED_TOTAL = 5751
TEST_SIZE = 500
PUBLISHED = {"test": TEST_SIZE, "train": PUBLISHED_TOTAL - TEST_SIZE, "all": PUBLISHED_TOTAL}
REQUIRED = ("IMAGE_ID", "EDITING_TYPE", "EDITING_INSTRUCTION", "INPUT_CAPTION_BY_LLAMA",
            "OUTPUT_CAPTION_BY_LLAMA", "INPUT_IMG", "MASK_IMG", "OUTPUT_IMG")
OPTIONAL = ("CORE", "MASK", "OUTPUT_DESCRIPTION")
IMAGES = ("INPUT_IMG", "MASK_IMG", "OUTPUT_IMG")
SPLIT_SALT = "humanedit-split-v1"
HINT = (f"download data/train-*.parquet from https://huggingface.co/datasets/{HUB_NAME} and pass "
        "--data-dir <that folder>")
_OPTIONS = ("captions", "mask_rule", "test_size", "workers")


def load(*, data_dir: str | None = None, split: str = "test", limit: int | None = None,
         **options: Any) -> list[Item]:
    """HumanEdit rows of ``split`` (test | train | all); options ``captions`` (llama |
    description), ``mask_rule`` (auto | black | white | alpha), ``test_size`` and ``workers``."""
    return list(iterate(data_dir=data_dir, split=split, limit=limit, **options))


def _key(image_id: Any, instruction: Any) -> str:
    return f"{image_id}\x1f{instruction if instruction is not None else ''}"


def split_of(keys: list[str], test_size: int = TEST_SIZE) -> list[str]:
    """``"test"`` or ``"train"`` for each row key (see the module docstring)."""
    rank = sorted(range(len(keys)), key=lambda i: (
        hashlib.sha256(f"{SPLIT_SALT}\x1f{keys[i]}".encode("utf-8")).hexdigest(), keys[i], i))
    test = set(rank[:test_size])
    return ["test" if i in test else "train" for i in range(len(keys))]


def iterate(*, data_dir: str | None = None, split: str = "test", limit: int | None = None,
            **options: Any) -> Iterator[Item]:
    check_options(options, _OPTIONS, "humanedit")
    if split not in SPLITS:
        raise ValueError(f"humanedit: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    captions = options.get("captions", "llama")
    if captions not in ("llama", "description"):
        raise ValueError(f"humanedit: captions {captions!r}; expected llama or description")
    rule = options.get("mask_rule", "auto")
    if rule not in ("auto", "black", "white", "alpha"):
        raise ValueError(f"humanedit: mask_rule {rule!r}; expected auto, black, white or alpha")
    test_size = int(options.get("test_size", TEST_SIZE))
    if test_size < 0:
        raise ValueError("humanedit: test_size must be >= 0")
    if limit is not None and limit < 1:
        raise ValueError("humanedit: limit must be at least 1")
    if data_dir is None:
        rows: HubRows | ParquetRows = HubRows(load_hub(HUB_NAME, "train", HINT), IMAGES)
    else:
        files = find_parquet(Path(data_dir), ("data/train-*.parquet", "train-*.parquet", "**/*.parquet"),
                             "HumanEdit", HINT)
        rows = ParquetRows(files, "HumanEdit")
    check_columns(rows.columns, REQUIRED, "HumanEdit parquet")
    image_ids = rows.column("IMAGE_ID")
    instructions = rows.column("EDITING_INSTRUCTION")
    keys = [_key(a, b) for a, b in zip(image_ids, instructions)]
    assigned = split_of(keys, test_size)
    ids = _sample_ids(image_ids, keys)
    chosen = [i for i in range(len(keys)) if split == "all" or assigned[i] == split]
    if limit is not None:
        chosen = chosen[:limit]
    columns = REQUIRED + tuple(c for c in OPTIONAL if c in rows.columns)
    return run_tasks(_tasks(rows, chosen, ids, columns, captions, rule, split),
                     options.get("workers"))


def _sample_ids(image_ids: list[Any], keys: list[str]) -> list[str]:
    order = sorted(range(len(keys)), key=lambda i: (keys[i], i))
    count: dict[str, int] = {}
    out = [""] * len(keys)
    for i in order:
        base = str(image_ids[i])
        count[base] = count.get(base, 0) + 1
        out[i] = base if count[base] == 1 else f"{base}-{count[base]}"
    return out


def _tasks(rows: HubRows | ParquetRows, chosen: list[int], ids: list[str], columns: tuple[str, ...],
           captions: str, rule: str, split: str) -> Iterator[Task]:
    for index in chosen:
        row = rows.row(index, columns)  # read here, decoded on the pool
        category = str(row["EDITING_TYPE"]) if row["EDITING_TYPE"] else "uncategorised"
        key = Key(ids[index], None, 1, category)
        yield Task([key], _decode(key, row, captions, rule, split))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _decode(key: Key, row: dict[str, Any], captions: str, rule: str, split: str):
    def run() -> list[Item]:
        try:
            source = image_from_cell(row["INPUT_IMG"], "source", key.id)
            target = image_from_cell(row["OUTPUT_IMG"], "target", key.id)
            mask = None
            if row["MASK_IMG"] is not None:
                mask = mask_from_cell(row["MASK_IMG"], "mask", key.id, rule=rule)
                check_mask_size(mask, source)
            instruction = row["EDITING_INSTRUCTION"]
            if not isinstance(instruction, str):
                raise ValueError(f"instruction is a {type(instruction).__name__}, not text")
            goal = _text(row.get("OUTPUT_DESCRIPTION")) if captions == "description" \
                else _text(row["OUTPUT_CAPTION_BY_LLAMA"])
            meta = {"dataset": "humanedit", "split": split, "image_id": row["IMAGE_ID"],
                    "editing_type": row["EDITING_TYPE"]}
            for extra in ("CORE", "MASK", "OUTPUT_DESCRIPTION"):
                if extra in row:
                    meta[extra.lower()] = row[extra]
            return [EditSample(id=key.id, source=source, instruction=instruction, target=target,
                               mask=mask, input_caption=_text(row["INPUT_CAPTION_BY_LLAMA"]),
                               goal_caption=goal, category=key.category, meta=meta)]
        except Exception as exc:  # noqa: BLE001 - one bad row fails alone
            return [failed(key.id, exc, category=key.category)]
    return run
