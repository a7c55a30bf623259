"""MagicBrush (Zhang et al., NeurIPS 2023 Datasets & Benchmarks), in the formats it is published in.

Format, as checked against its sources:

* train / dev - hub ``osunlp/MagicBrush`` (dataset card README.md): parquet columns ``img_id``
  (str), ``turn_index`` (int32, from 1), ``source_img`` (the real image at turn 1, the previous
  turn's ground-truth edit after), ``mask_img`` (white region = where to edit), ``instruction``,
  ``target_img``; 8,807 / 528 rows. Local copies: the hub's ``data/{split}-*.parquet`` files.
* test - not on the hub (OSU-NLP-Group/MagicBrush README.md: a password-protected zip). Layout,
  from OSU-NLP-Group/MagicBrush ``edit_cli_single_multi_turn.py`` and ``evaluation/README.md``:
  ``test/edit_sessions.json`` maps img_id -> ordered turns ``{input, mask, output,
  instruction}``; files live in ``test/images/<img_id>/`` as ``<id>-input.png``,
  ``<id>-output{i}.png``, ``<id>-mask{i}.png``. ``test/{global,local}_descriptions.json`` map
  img_id -> {file name: caption}, indexed ``captions[img_id][file]`` as in
  ``evaluation/image_eval.py``. 1,053 turns in 535 sessions (issue text; not re-counted here).

Protocols (``evaluation/README.md``): all-turn edits every turn from the ground-truth previous
output, which is what each sample's ``source`` is: the turn's ``input`` file, as
``edit_cli_single_multi_turn.py`` reads it for independent (all-turn) editing - for turn t > 1
that is ``<id>-output{t-1}.png``, the previous turn's ground truth, decoded once and shared.
Final-turn is the runner's ``turn_protocol: final-turn`` with this same loader.

Captions for CTS: the local descriptions by default - OSU-NLP-Group/MagicBrush issue #17: the
paper's CLIP-T numbers use the local captions, the README's global file was a mistake;
``captions: global`` selects the global ones (issue #14: they describe source and target images),
``captions: none`` skips them. For each turn the input caption is the caption of its input file
and the goal caption that of its output file (None where the caption file has no entry).

Sample ids ``<img_id>-t<turn>``, session id ``img_id``; ``limit`` counts sessions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmark.api import EditSample
from benchmark.datasets.common import (HubRows, Item, Key, ParquetRows, Task, check_columns,
                                       check_keys, check_mask_size, check_options, contained,
                                       expect_type, failed, find_parquet, image_from_cell,
                                       load_hub, load_json, mask_from_cell, run_tasks)
from benchmark.files import read_image, read_mask

__all__ = ["load", "iterate", "HUB_NAME", "SPLITS", "PUBLISHED", "PUBLISHED_SESSIONS"]

HUB_NAME = "osunlp/MagicBrush"
SPLITS = ("train", "dev", "test")
PUBLISHED = {"train": 8807, "dev": 528, "test": 1053}
PUBLISHED_SESSIONS = {"test": 535}
CATEGORY = "magicbrush"
COLUMNS = ("img_id", "turn_index", "source_img", "mask_img", "instruction", "target_img")
TURN_KEYS = ("input", "mask", "output", "instruction")
CAPTION_FILES = {"local": "local_descriptions.json", "global": "global_descriptions.json"}
TEST_HINT = ("the MagicBrush test split is not on the hub: download the zip linked from "
             "https://github.com/OSU-NLP-Group/MagicBrush (password MagicBrush), unzip it and pass "
             "--data-dir <the folder holding test/> (or test/ itself)")
HUB_HINT = (f"download data/{{train,dev}}-*.parquet from https://huggingface.co/datasets/{HUB_NAME} "
            "and pass --data-dir <that folder>")
_OPTIONS = ("captions", "workers")
_OUTPUT_NUMBER = re.compile(r"-output(\d+)\.[A-Za-z0-9]+$")


def load(*, data_dir: str | None = None, split: str = "test", limit: int | None = None,
         **options: Any) -> list[Item]:
    """MagicBrush samples of ``split`` (see the module docstring); options ``captions``
    (local | global | none, test split only) and ``workers`` (decoding threads)."""
    return list(iterate(data_dir=data_dir, split=split, limit=limit, **options))


def iterate(*, data_dir: str | None = None, split: str = "test", limit: int | None = None,
            **options: Any) -> Iterator[Item]:
    """As ``load`` but yields samples as they are decoded (schema errors raise before)."""
    check_options(options, _OPTIONS, "magicbrush")
    captions = options.get("captions", "local")
    if captions not in ("local", "global", "none"):
        raise ValueError(f"magicbrush: captions {captions!r}; expected local, global or none")
    if split not in SPLITS:
        raise ValueError(f"magicbrush: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if limit is not None and limit < 1:
        raise ValueError("magicbrush: limit must be at least 1")
    workers = options.get("workers")
    if split == "test":
        if data_dir is None:
            raise FileNotFoundError(f"MagicBrush test split: no --data-dir given; {TEST_HINT}")
        return run_tasks(_test_tasks(Path(data_dir), captions, limit), workers)
    return run_tasks(_parquet_tasks(data_dir, split, limit), workers)


# --------------------------------------------------------------------------- test split (folder)
def test_root(data_dir: Path) -> Path:
    """The folder holding ``edit_sessions.json``: ``data_dir/test`` or ``data_dir`` itself."""
    if not data_dir.is_dir():
        raise FileNotFoundError(f"MagicBrush data folder not found: {data_dir}; {TEST_HINT}")
    for candidate in (data_dir / "test", data_dir):
        if (candidate / "edit_sessions.json").is_file():
            return candidate
    raise FileNotFoundError(f"MagicBrush test split: no edit_sessions.json in {data_dir / 'test'} "
                            f"or {data_dir}; {TEST_HINT}")


def _gap(img_id: str, turns: list[dict[str, Any]]) -> str | None:
    """Why a session's turn numbering (from the ``-output{i}`` names) is broken, or None."""
    numbers = []
    for turn in turns:
        m = _OUTPUT_NUMBER.search(str(turn["output"]))
        if m is None:
            return None  # names that do not follow the pattern: the list order is the turn order
        numbers.append(int(m.group(1)))
    return _turn_problem(img_id, numbers)


def _turn_problem(img_id: str, numbers: list[Any]) -> str | None:
    bad = [n for n in numbers if not isinstance(n, int) or isinstance(n, bool)]
    if bad:
        return f"session {img_id}: turn_index {bad[0]!r} is not an integer"
    if numbers == list(range(1, len(numbers) + 1)):
        return None
    seen = sorted(numbers)
    dups = sorted({n for n in seen if seen.count(n) > 1})
    if dups:
        return f"session {img_id}: turn {dups[0]} appears {seen.count(dups[0])} times"
    missing = [t for t in range(1, max(seen) + 1) if t not in seen]
    if missing:
        return (f"session {img_id} has turns {', '.join(map(str, seen))}: turn "
                f"{', '.join(map(str, missing))} is missing")
    return f"session {img_id}: turns out of order ({', '.join(map(str, numbers))})"


def _test_tasks(data_dir: Path, captions: str, limit: int | None) -> list[Task]:
    root = test_root(data_dir)
    sessions = load_json(root / "edit_sessions.json", "MagicBrush edit_sessions.json", TEST_HINT)
    expect_type(sessions, dict, "MagicBrush edit_sessions.json (img_id -> list of turns)")
    caps: dict[str, Any] = {}
    if captions != "none":
        name = CAPTION_FILES[captions]
        caps = load_json(root / name, f"MagicBrush {captions} captions",
                         "the test zip ships it next to edit_sessions.json; set `captions: none` "
                         "in the task's dataset options to run without captions")
        expect_type(caps, dict, f"MagicBrush {name} (img_id -> {{file name: caption}})")
    tasks: list[Task] = []
    for img_id, turns in sessions.items():
        if limit is not None and len(tasks) >= limit:
            break
        where = f"MagicBrush edit_sessions.json, session {img_id}"
        expect_type(turns, list, where)
        for k, turn in enumerate(turns, 1):
            check_keys(turn, TURN_KEYS, f"{where}, turn {k}")
        if not turns:
            continue
        session_caps = caps.get(img_id) or {}
        expect_type(session_caps, dict, f"MagicBrush {captions} captions, session {img_id}")
        tasks.append(_session_task(root, str(img_id), turns, session_caps))
    return tasks


def _file(root: Path, img_id: str, name: Any, what: str) -> Path:
    return contained(root, f"images/{img_id}/{name}", f"{what} file")


def _session_task(root: Path, img_id: str, turns: list[dict[str, Any]],
                  caps: dict[str, Any]) -> Task:
    keys = [Key(f"{img_id}-t{t}", img_id, t, CATEGORY) for t in range(1, len(turns) + 1)]
    gap = _gap(img_id, turns)

    def run() -> list[Item]:
        out: list[Item] = []
        prev_target = None
        for t, (key, turn) in enumerate(zip(keys, turns), 1):
            if gap:
                out.append(failed(key.id, gap, session_id=img_id, turn=t, category=CATEGORY))
                continue
            target, target_error = None, None
            try:
                target = read_image(_file(root, img_id, turn["output"], "output"), "target")
            except Exception as exc:  # noqa: BLE001 - reported below, after the source
                target_error = exc
            try:
                if t > 1 and prev_target is not None and turn["input"] == turns[t - 2]["output"]:
                    source = prev_target  # the previous turn's ground truth, already decoded
                else:
                    # what the official all-turn script reads: the turn's own `input` file
                    source = read_image(_file(root, img_id, turn["input"], "input"), "source")
                if target is None:
                    raise target_error  # type: ignore[misc]
                mask = read_mask(_file(root, img_id, turn["mask"], "mask"), "mask")
                check_mask_size(mask, source)
                instruction = turn["instruction"]
                if not isinstance(instruction, str):
                    raise ValueError(f"instruction is a {type(instruction).__name__}, not text")
                out.append(EditSample(
                    id=key.id, source=source, instruction=instruction, target=target, mask=mask,
                    input_caption=_caption(caps, turn["input"]),
                    goal_caption=_caption(caps, turn["output"]),
                    category=CATEGORY, session_id=img_id, turn=t,
                    meta={"dataset": "magicbrush", "split": "test", "img_id": img_id,
                          "input_file": turn["input"], "output_file": turn["output"],
                          "mask_file": turn["mask"]}))
            except Exception as exc:  # noqa: BLE001 - one bad turn fails alone
                out.append(failed(key.id, exc, session_id=img_id, turn=t, category=CATEGORY))
            prev_target = target
        return out

    return Task(keys, run)


def _caption(caps: dict[str, Any], name: Any) -> str | None:
    value = caps.get(name) if isinstance(name, str) else None
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------- train / dev (parquet)
def _rows(data_dir: str | None, split: str) -> HubRows | ParquetRows:
    if data_dir is None:
        return HubRows(load_hub(HUB_NAME, split, HUB_HINT), ("source_img", "mask_img", "target_img"))
    files = find_parquet(Path(data_dir), (f"data/{split}-*.parquet", f"{split}-*.parquet",
                                          f"**/{split}-*.parquet"),
                         f"MagicBrush {split} split", HUB_HINT)
    return ParquetRows(files, f"MagicBrush {split} split")


def _parquet_tasks(data_dir: str | None, split: str, limit: int | None) -> Iterator[Task]:
    rows = _rows(data_dir, split)
    check_columns(rows.columns, COLUMNS, f"MagicBrush {split} parquet")
    sessions: dict[str, list[tuple[Any, int]]] = {}
    for index, (img_id, turn) in enumerate(zip(rows.column("img_id"), rows.column("turn_index"))):
        sessions.setdefault(str(img_id), []).append((turn, index))
    chosen = list(sessions.items())[:limit] if limit is not None else list(sessions.items())
    return _parquet_task_iter(rows, split, chosen)


def _parquet_task_iter(rows: HubRows | ParquetRows, split: str,
                       chosen: list[tuple[str, list[tuple[Any, int]]]]) -> Iterator[Task]:
    for img_id, entries in chosen:
        turns = [t for t, _ in entries]
        problem = _turn_problem(img_id, turns)
        if problem is None:
            ordered = sorted(entries)
        else:
            ordered = sorted(entries, key=lambda e: (not isinstance(e[0], int), str(e[0]), e[1]))
        keys, seen = [], set()
        for turn, index in ordered:
            base = f"{img_id}-t{turn}"
            sid = base if base not in seen else f"{base}-row{index}"
            seen.add(base)
            keys.append(Key(sid, img_id, turn if isinstance(turn, int) else 0, CATEGORY))
        if problem is not None:
            yield Task(keys, _fail_all(keys, problem))
            continue
        # rows are read here, in the loading thread; decoding happens on the pool
        data = [rows.row(index, COLUMNS) for _, index in ordered]
        yield Task(keys, _decode_rows(keys, data, split))


def _fail_all(keys: list[Key], reason: str):
    def run() -> list[Item]:
        return [failed(k.id, reason, session_id=k.session_id, turn=k.turn, category=k.category)
                for k in keys]
    return run


def _decode_rows(keys: list[Key], data: list[dict[str, Any]], split: str):
    def run() -> list[Item]:
        out: list[Item] = []
        prev_bytes, prev_target = None, None
        for key, row in zip(keys, data):
            where = f"{split} {key.id}"
            try:
                src_cell, tgt_cell = row["source_img"], row["target_img"]
                src_bytes = src_cell.get("bytes") if isinstance(src_cell, dict) else None
                if src_bytes and prev_target is not None and src_bytes == prev_bytes:
                    source = prev_target  # turn t's source is turn t-1's target: decode it once
                else:
                    source = image_from_cell(src_cell, "source", where)
                prev_bytes, prev_target = None, None
                target = image_from_cell(tgt_cell, "target", where)
                if isinstance(tgt_cell, dict) and tgt_cell.get("bytes"):
                    prev_bytes, prev_target = tgt_cell["bytes"], target
                mask = None
                if row["mask_img"] is not None:
                    mask = mask_from_cell(row["mask_img"], "mask", where, rule="white")
                    check_mask_size(mask, source)
                instruction = row["instruction"]
                if not isinstance(instruction, str):
                    raise ValueError(f"instruction is a {type(instruction).__name__}, not text")
                out.append(EditSample(
                    id=key.id, source=source, instruction=instruction, target=target, mask=mask,
                    category=CATEGORY, session_id=key.session_id, turn=key.turn,
                    meta={"dataset": "magicbrush", "split": split, "img_id": key.session_id}))
            except Exception as exc:  # noqa: BLE001 - one bad row fails alone
                out.append(failed(key.id, exc, session_id=key.session_id, turn=key.turn,
                                  category=CATEGORY))
        return out
    return run
