"""ComplexMultistepImageEditing (hub ``NilanE/ComplexMultistepImageEditing``): about 120 complex,
multi-step instruction edits without masks, used by MIND-Edit as its hard benchmark.

What could be checked: the hub file listing (one ``reasoning.parquet``, 77.8 MB, plus
``create_dataset.py`` and ``to_hf.py``; Apache-2.0) and MIND-Edit's description (120 examples,
no masks). What could not: the parquet's column names - neither the dataset card nor the
scripts were readable from here. So the loader reads the schema and maps the columns it can
identify by name (case-insensitive; the first candidate present wins):

* source image: source_image, input_image, original_image, source_img, input_img, src_img,
  image, input, source, original, before
* target image: edited_image, target_image, output_image, final_image, target_img, output_img,
  edited_img, edited, output, target, result, after
* instruction: instruction, instructions, edit_instruction, prompt, edit_prompt, edit, request,
  task, steps, text
* id (optional): id, uid, image_id, idx, index

An image column may hold one image or a list of them (the last one is taken as the final
result); an instruction column may hold a list of steps (joined with spaces). When a role
cannot be identified the load fails with the list of columns found; the task's dataset option
``columns: {source: ..., target: ..., instruction: ..., id: ...}`` names them explicitly.

Split: the file is one evaluation set, ``test``. Sample ids from the id column, else
``row<index>``; category ``complex-multistep``; ``limit`` counts rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from benchmark.api import EditSample
from benchmark.datasets.common import (HubRows, Item, Key, ParquetRows, Task, check_options,
                                       failed, find_parquet, image_from_cell, load_hub, run_tasks,
                                       unique_id)

__all__ = ["load", "iterate", "HUB_NAME", "SPLITS", "PUBLISHED_APPROX", "identify_columns"]

HUB_NAME = "NilanE/ComplexMultistepImageEditing"
SPLITS = ("test",)
PUBLISHED_APPROX = {"test": 120}
CATEGORY = "complex-multistep"
CANDIDATES: dict[str, tuple[str, ...]] = {
    "source": ("source_image", "input_image", "original_image", "source_img", "input_img",
               "src_img", "image", "input", "source", "original", "before"),
    "target": ("edited_image", "target_image", "output_image", "final_image", "target_img",
               "output_img", "edited_img", "edited", "output", "target", "result", "after"),
    "instruction": ("instruction", "instructions", "edit_instruction", "prompt", "edit_prompt",
                    "edit", "request", "task", "steps", "text"),
    "id": ("id", "uid", "image_id", "idx", "index"),
}
REQUIRED_ROLES = ("source", "target", "instruction")
HINT = (f"download reasoning.parquet from https://huggingface.co/datasets/{HUB_NAME} and pass "
        "--data-dir <the folder holding it>")
_OPTIONS = ("columns", "workers")


def load(*, data_dir: str | None = None, split: str = "test", limit: int | None = None,
         **options: Any) -> list[Item]:
    """ComplexMultistepImageEditing rows; options ``columns`` (role -> column name), ``workers``."""
    return list(iterate(data_dir=data_dir, split=split, limit=limit, **options))


def _is_image_type(dtype: str) -> bool:
    return "binary" in dtype or ("bytes" in dtype and "struct" in dtype) or dtype.startswith("Image")


def identify_columns(columns: list[str], dtypes: Mapping[str, str],
                     explicit: Mapping[str, str] | None = None) -> dict[str, str]:
    """role -> column; ValueError listing the columns found when a needed role is unknown."""
    explicit = dict(explicit or {})
    unknown_roles = sorted(set(explicit) - set(CANDIDATES))
    if unknown_roles:
        raise ValueError(f"complex-multistep: unknown role(s) {', '.join(unknown_roles)} in "
                         f"`columns`; roles are {', '.join(CANDIDATES)}")
    lower = {c.lower(): c for c in columns}
    found: dict[str, str] = {}
    for role, name in explicit.items():
        if name not in columns:
            raise ValueError(f"complex-multistep: column {name!r} (given for {role}) not found; "
                             f"columns found: {_describe(columns, dtypes)}")
        found[role] = name
    for role, names in CANDIDATES.items():
        if role in found:
            continue
        for cand in names:
            col = lower.get(cand)
            if col is None or col in found.values():
                continue
            is_image = _is_image_type(dtypes.get(col, ""))
            if (role in ("source", "target")) != is_image:
                continue  # an image role needs an image column and a text role a text column
            found[role] = col
            break
    missing = [r for r in REQUIRED_ROLES if r not in found]
    if missing:
        raise ValueError(f"ComplexMultistepImageEditing: cannot identify the {', '.join(missing)} "
                         f"column(s); columns found: {_describe(columns, dtypes)}; name them with "
                         "the dataset option `columns: {source: ..., target: ..., instruction: ...}`")
    return found


def _describe(columns: list[str], dtypes: Mapping[str, str]) -> str:
    return ", ".join(f"{c} ({dtypes.get(c, '?')})" for c in columns) or "none"


def iterate(*, data_dir: str | None = None, split: str = "test", limit: int | None = None,
            **options: Any) -> Iterator[Item]:
    check_options(options, _OPTIONS, "complex-multistep")
    if split not in SPLITS:
        raise ValueError(f"complex-multistep: unknown split {split!r}; the file is one evaluation "
                         "set, split test")
    if limit is not None and limit < 1:
        raise ValueError("complex-multistep: limit must be at least 1")
    if data_dir is None:
        ds = load_hub("parquet", "train", HINT, display=HUB_NAME,
                      data_files=f"hf://datasets/{HUB_NAME}/reasoning.parquet")
        rows: HubRows | ParquetRows = HubRows(ds, ())
    else:
        files = find_parquet(Path(data_dir), ("reasoning.parquet", "*.parquet", "**/*.parquet"),
                             "ComplexMultistepImageEditing", HINT)
        rows = ParquetRows(files, "ComplexMultistepImageEditing")
    roles = identify_columns(rows.columns, rows.dtypes(), options.get("columns"))
    n = len(rows) if limit is None else min(limit, len(rows))
    return run_tasks(_tasks(rows, roles, n), options.get("workers"))


def _tasks(rows: HubRows | ParquetRows, roles: dict[str, str], n: int) -> Iterator[Task]:
    seen: set[str] = set()
    cols = list(dict.fromkeys(roles.values()))
    for index in range(n):
        row = rows.row(index, cols)
        raw_id = row.get(roles["id"]) if "id" in roles else None
        base = str(raw_id) if raw_id not in (None, "") else f"row{index:04d}"
        key = Key(unique_id(base, seen, index), None, 1, CATEGORY)
        yield Task([key], _decode(key, row, roles, index))


def _last(cell: Any) -> Any:
    return cell[-1] if isinstance(cell, list) and cell else cell


def _decode(key: Key, row: dict[str, Any], roles: dict[str, str], index: int):
    def run() -> list[Item]:
        try:
            source = image_from_cell(_last(row[roles["source"]]), "source", key.id)
            target = image_from_cell(_last(row[roles["target"]]), "target", key.id)
            text = row[roles["instruction"]]
            if isinstance(text, list):
                text = " ".join(str(t).strip() for t in text if str(t).strip())
            if not isinstance(text, str):
                raise ValueError(f"instruction is a {type(text).__name__}, not text")
            steps = len(row[roles["target"]]) if isinstance(row[roles["target"]], list) else 1
            return [EditSample(id=key.id, source=source, instruction=text, target=target,
                               category=CATEGORY,
                               meta={"dataset": "complex-multistep", "split": "test", "row": index,
                                     "columns": dict(roles), "target_images": steps})]
        except Exception as exc:  # noqa: BLE001 - one bad row fails alone
            return [failed(key.id, exc, category=CATEGORY)]
    return run
