"""IPr2Pr: InstructPix2Pix's generated training pairs (Brooks, Holynski & Efros, CVPR 2023), in
both published layouts; MGIE trains on it.

Formats, as checked against their sources:

* hub ``timbrooks/instructpix2pix-clip-filtered`` (dataset card README.md): one ``train`` split,
  313,010 rows, columns ``original_prompt``, ``original_image``, ``edit_prompt``,
  ``edited_prompt``, ``edited_image``; local copies are its ``data/train-*.parquet``.
* the original folder layout (repository timothybrooks/instruct-pix2pix,
  ``dataset_creation/generate_img_dataset.py``, ``prepare_dataset.py``, ``edit_dataset.py``):
  ``<dir>/seeds.json`` = sorted ``[[name, [seed, ...]], ...]``; ``<dir>/<name>/prompt.json`` =
  ``{"input", "edit", "output"}`` (captions before/after and the instruction);
  ``<dir>/<name>/{seed}_0.jpg`` (before) and ``{seed}_1.jpg`` (after). ``edit_dataset.py`` splits
  the seeds.json entries 0.9 / 0.05 / 0.05 by position (``floor(fraction * n)``) into train / val
  / test; that split is reproduced here. apple/ml-mgie's ``_data/<name>/prompt.json`` samples use
  the same layout.

Every (name, seed) pair is one sample (``edit_dataset.py`` draws one seed at random per step;
a loader lists them all): id ``<name>-<seed>``; parquet rows: ``row<index>``. Captions: input =
the before caption, goal = the after caption. Category ``ipr2pr``; ``limit`` counts pairs. With
no ``--data-dir`` the hub split is streamed (the full download is ~63 GB).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmark.api import EditSample
from benchmark.datasets.common import (Item, Key, ParquetRows, Task, check_columns, check_keys,
                                       check_options, contained, expect_type, failed,
                                       find_parquet, image_from_cell, load_hub, load_json,
                                       one_line, run_tasks)
from benchmark.files import read_image

__all__ = ["load", "iterate", "pairs", "TrainingPairs", "HUB_NAME", "SPLITS", "PUBLISHED", "FRACTIONS"]

HUB_NAME = "timbrooks/instructpix2pix-clip-filtered"
SPLITS = ("train", "val", "test")
ALIASES = {"valid": "val", "dev": "val", "validation": "val"}
FRACTIONS = (0.9, 0.05, 0.05)
PUBLISHED = {"train": 313010}  # hub rows; the folder layout's counts depend on the generation
CATEGORY = "ipr2pr"
COLUMNS = ("original_prompt", "original_image", "edit_prompt", "edited_prompt", "edited_image")
HINT = (f"download data/train-*.parquet from https://huggingface.co/datasets/{HUB_NAME} (or the "
        "generated folder of https://github.com/timothybrooks/instruct-pix2pix) and pass "
        "--data-dir <that folder>")
_OPTIONS = ("workers",)


def load(*, data_dir: str | None = None, split: str = "train", limit: int | None = None,
         **options: Any) -> list[Item]:
    """IPr2Pr pairs of ``split`` (folder layout: train | val | test; hub parquet: train)."""
    return list(iterate(data_dir=data_dir, split=split, limit=limit, **options))


def iterate(*, data_dir: str | None = None, split: str = "train", limit: int | None = None,
            **options: Any) -> Iterator[Item]:
    check_options(options, _OPTIONS, "ipr2pr")
    split = ALIASES.get(split, split)
    if split not in SPLITS:
        raise ValueError(f"ipr2pr: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if limit is not None and limit < 1:
        raise ValueError("ipr2pr: limit must be at least 1")
    workers = options.get("workers")
    if data_dir is None:
        return run_tasks(_hub_tasks(split, limit), workers)
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"IPr2Pr data folder not found: {root}; {HINT}")
    if (root / "seeds.json").is_file():
        return run_tasks(_folder_tasks(root, split, limit), workers)
    if split != "train":
        raise ValueError(f"ipr2pr: the hub parquet release has only a train split, not {split!r} "
                         "(the 0.9/0.05/0.05 split applies to the folder layout with seeds.json)")
    files = find_parquet(root, ("data/train-*.parquet", "train-*.parquet", "**/*.parquet"),
                         "IPr2Pr (no seeds.json either)", HINT)
    rows = ParquetRows(files, "IPr2Pr")
    check_columns(rows.columns, COLUMNS, "IPr2Pr parquet")
    n = len(rows) if limit is None else min(limit, len(rows))
    return run_tasks((_row_task(f"row{i:07d}", rows.row(i, COLUMNS)) for i in range(n)), workers)


# --------------------------------------------------------------------------- training access
class TrainingPairs:
    """Random access to a split's pairs for training, each read when asked for: the full train
    split is 313,010 pairs (~63 GB), which ``load`` would hold decoded in memory. ``pair(i)``
    gives the sample (or a ``FailedSample``); ``instruction(i)`` and ``prompt_name(i)`` (the
    folder layout's prompt folder, else None) read no image."""

    def __init__(self, data_dir: str | None, split: str = "train"):
        split = ALIASES.get(split, split)
        if data_dir is None:
            raise ValueError(f"ipr2pr: training reads a local copy (--data-dir); {HINT}")
        root = Path(data_dir)
        if not root.is_dir():
            raise FileNotFoundError(f"IPr2Pr data folder not found: {root}; {HINT}")
        self.root, self.split = root, split
        self._prompts: dict[str, dict] = {}
        if (root / "seeds.json").is_file():
            if split not in SPLITS:
                raise ValueError(f"ipr2pr: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
            self._keys = [(str(name), str(seed)) for name, seed_list in _split_seeds(root, split)
                          for seed in seed_list]
            self._rows = None
        else:
            if split != "train":
                raise ValueError(f"ipr2pr: the hub parquet release has only a train split, not {split!r}")
            files = find_parquet(root, ("data/train-*.parquet", "train-*.parquet", "**/*.parquet"),
                                 "IPr2Pr (no seeds.json either)", HINT)
            self._rows = ParquetRows(files, "IPr2Pr")
            check_columns(self._rows.columns, COLUMNS, "IPr2Pr parquet")
            self._keys = None
            self._instructions: list[str] | None = None

    def __len__(self) -> int:
        return len(self._keys) if self._rows is None else len(self._rows)

    def prompt_name(self, i: int) -> str | None:
        return self._keys[i][0] if self._rows is None else None

    def _prompt(self, name: str) -> dict:
        if name not in self._prompts:
            prompt = load_json(contained(self.root, name, "prompt folder") / "prompt.json",
                               f"IPr2Pr {name}/prompt.json")
            check_keys(prompt, ("edit",), f"IPr2Pr {name}/prompt.json")
            self._prompts[name] = prompt
        return self._prompts[name]

    def instruction(self, i: int) -> str:
        if self._rows is None:
            return self._prompt(self._keys[i][0])["edit"]
        if self._instructions is None:
            self._instructions = [str(x) for x in self._rows.column("edit_prompt")]
        return self._instructions[i]

    def pair(self, i: int) -> Item:
        if self._rows is not None:
            return _row_task(f"row{i:07d}", self._rows.row(i, COLUMNS)).run()[0]
        name, seed = self._keys[i]
        key = Key(f"{name}-{seed}", None, 1, CATEGORY)
        try:
            return _prompt_run(self.root, name, [seed], [key], self.split)()[0]
        except Exception as exc:  # noqa: BLE001 - a bad prompt folder fails its pairs alone
            return failed(key.id, exc, category=CATEGORY)


def pairs(data_dir: str | None, split: str = "train") -> TrainingPairs:
    """``TrainingPairs`` of a local IPr2Pr copy (either layout)."""
    return TrainingPairs(data_dir, split)


# --------------------------------------------------------------------------- folder layout
def split_entries(entries: list[Any], split: str) -> list[Any]:
    """``edit_dataset.py``'s positional split of the seeds.json entries."""
    lo, hi = {"train": (0.0, FRACTIONS[0]),
              "val": (FRACTIONS[0], FRACTIONS[0] + FRACTIONS[1]),
              "test": (FRACTIONS[0] + FRACTIONS[1], 1.0)}[split]
    return entries[math.floor(lo * len(entries)):math.floor(hi * len(entries))]


def _split_seeds(root: Path, split: str) -> list[Any]:
    """The ``[name, [seed, ...]]`` entries of ``split`` in ``<root>/seeds.json``, checked."""
    seeds = load_json(root / "seeds.json", "IPr2Pr seeds.json", HINT)
    expect_type(seeds, list, "IPr2Pr seeds.json (a list of [name, [seed, ...]])")
    for i, entry in enumerate(seeds):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], list)):
            raise ValueError(f"IPr2Pr seeds.json entry {i}: expected [name, [seed, ...]], "
                             f"found {str(entry)[:80]}")
    return split_entries(seeds, split)


def _folder_tasks(root: Path, split: str, limit: int | None) -> list[Task]:
    tasks: list[Task] = []
    n = 0
    for name, seed_list in _split_seeds(root, split):
        if limit is not None and n >= limit:
            break
        chosen = seed_list if limit is None else seed_list[: limit - n]
        n += len(chosen)
        keys = [Key(f"{name}-{seed}", None, 1, CATEGORY) for seed in chosen]
        tasks.append(Task(keys, _prompt_run(root, str(name), [str(s) for s in chosen], keys, split)))
    return tasks


def _prompt_run(root: Path, name: str, seeds: list[str], keys: list[Key], split: str):
    def run() -> list[Item]:
        folder = contained(root, name, "prompt folder")
        prompt = load_json(folder / "prompt.json", f"IPr2Pr {name}/prompt.json")
        check_keys(prompt, ("edit",), f"IPr2Pr {name}/prompt.json")
        out: list[Item] = []
        for key, seed in zip(keys, seeds):
            try:
                source = read_image(contained(folder, f"{seed}_0.jpg", "image"), "source")
                target = read_image(contained(folder, f"{seed}_1.jpg", "image"), "target")
                out.append(EditSample(
                    id=key.id, source=source, instruction=prompt["edit"], target=target,
                    input_caption=_text(prompt.get("input")), goal_caption=_text(prompt.get("output")),
                    category=CATEGORY,
                    meta={"dataset": "ipr2pr", "split": split, "prompt": name, "seed": seed}))
            except Exception as exc:  # noqa: BLE001 - one bad pair fails alone
                out.append(failed(key.id, exc, category=CATEGORY))
        return out
    return run


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


# --------------------------------------------------------------------------- parquet / hub rows
def _row_task(sid: str, row: dict[str, Any]) -> Task:
    key = Key(sid, None, 1, CATEGORY)

    def run() -> list[Item]:
        try:
            return [EditSample(
                id=sid, source=image_from_cell(row["original_image"], "source", sid),
                instruction=row["edit_prompt"], target=image_from_cell(row["edited_image"], "target", sid),
                input_caption=_text(row["original_prompt"]), goal_caption=_text(row["edited_prompt"]),
                category=CATEGORY, meta={"dataset": "ipr2pr", "split": "train"})]
        except Exception as exc:  # noqa: BLE001 - one bad row fails alone
            return [failed(sid, exc, category=CATEGORY)]

    return Task([key], run)


def _hub_tasks(split: str, limit: int | None) -> Iterator[Task]:
    if split != "train":
        raise ValueError(f"ipr2pr: the hub release has only a train split, not {split!r}")
    import datasets

    ds = load_hub(HUB_NAME, "train", HINT, streaming=True)
    check_columns(list(ds.column_names or COLUMNS), COLUMNS, HUB_NAME)
    try:
        for col in ("original_image", "edited_image"):
            ds = ds.cast_column(col, datasets.Image(decode=False))
    except Exception as exc:  # noqa: BLE001 - an unexpected hub schema, said in one line
        raise ValueError(f"{HUB_NAME}: image columns cannot be read undecoded "
                         f"({one_line(exc)})") from None
    return _stream(ds, limit)


def _stream(ds: Any, limit: int | None) -> Iterator[Task]:
    for i, row in enumerate(ds):
        if limit is not None and i >= limit:
            break
        yield _row_task(f"row{i:07d}", row)
