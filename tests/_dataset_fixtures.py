"""Writers that lay out small copies of each benchmark exactly as it is published (see each loader's
docstring for the source of the format). Importable as ``_dataset_fixtures`` from tests and from
``scripts/bench_loaders.py``; every writer is deterministic and returns what it wrote.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

# --------------------------------------------------------------------------- pixels
def picture(seed: int, size: int | tuple[int, int] = 32) -> Image.Image:
    """A photo-like RGB image: smooth gradients, a few shapes, a little noise."""
    w, h = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(40, 200, 3)
    slope = rng.uniform(-1, 1, (3, 2)) * 120
    chans = [base[c] + slope[c, 0] * xx / max(w, 1) + slope[c, 1] * yy / max(h, 1) for c in range(3)]
    arr = np.stack(chans, -1) + rng.normal(0, 4, (h, w, 3))
    im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(3):
        x0, y0 = int(rng.integers(0, max(1, w - 4))), int(rng.integers(0, max(1, h - 4)))
        x1, y1 = x0 + int(rng.integers(2, max(3, w // 3))), y0 + int(rng.integers(2, max(3, h // 3)))
        draw.ellipse([x0, y0, x1, y1], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return im


def box(size: tuple[int, int], seed: int) -> tuple[int, int, int, int]:
    w, h = size
    rng = np.random.default_rng(seed + 7919)
    x0 = int(rng.integers(0, w // 2))
    y0 = int(rng.integers(0, h // 2))
    return x0, y0, x0 + max(2, w // 3), y0 + max(2, h // 3)


def edit(image: Image.Image, seed: int) -> tuple[Image.Image, Image.Image]:
    """A local edit (a filled rectangle) and its mask (mode L, white = edited region)."""
    out = image.copy()
    b = box(image.size, seed)
    colour = tuple(int(v) for v in np.random.default_rng(seed).integers(0, 256, 3))
    ImageDraw.Draw(out).rectangle(b, fill=colour)
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).rectangle(b, fill=255)
    return out, mask


def retouch(image: Image.Image, seed: int) -> Image.Image:
    """A global edit (brightness/contrast change)."""
    a = np.asarray(image, dtype=np.float32)
    gain = 0.8 + 0.4 * (seed % 5) / 4
    return Image.fromarray(np.clip((a - 128) * gain + 128 + 10, 0, 255).astype(np.uint8), "RGB")


def save(im: Image.Image, path: Path, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        kw.setdefault("quality", 95)
    im.save(path, **kw)
    return path


def truncate(path: Path, keep: float = 0.5) -> None:
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: max(8, int(len(data) * keep))])


def png_bytes(im: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(im: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    return path


def write_parquet(path: Path, columns: dict[str, list[Any]], image_columns: tuple[str, ...],
                  int_columns: dict[str, str] | None = None) -> Path:
    """A parquet file as ``datasets`` writes it (image columns as {bytes, path} structs with the
    ``huggingface`` schema metadata), so it reads back exactly like a hub download."""
    import datasets

    feats = {}
    for name, values in columns.items():
        if name in image_columns:
            feats[name] = datasets.Image()
        elif int_columns and name in int_columns:
            feats[name] = datasets.Value(int_columns[name])
        elif values and isinstance(values[0], list):
            feats[name] = datasets.Sequence(datasets.Value("string"))
        else:
            feats[name] = datasets.Value("string")
    ds = datasets.Dataset.from_dict(columns, features=datasets.Features(feats))
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))
    return path


# --------------------------------------------------------------------------- COCO RLE (writer side)
def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of a bool (h, w) mask, as pycocotools ``encode`` + ``decode('ascii')``."""
    h, w = mask.shape
    flat = np.asarray(mask, dtype=bool).T.reshape(-1)  # column-major
    counts: list[int] = []
    current, run = False, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    chars = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            chars.append(chr(c + 48))
    return {"size": [h, w], "counts": "".join(chars)}


# --------------------------------------------------------------------------- MagicBrush
def write_magicbrush_test(root: Path, sessions: dict[str, int] | None = None, size: int = 32,
                          inside_test: bool = True) -> dict[str, Any]:
    """``test/edit_sessions.json``, ``test/images/<id>/...``, ``test/{local,global}_descriptions.json``."""
    sessions = sessions or {"1001": 2, "1002": 1, "1003": 3}
    test = Path(root) / "test" if inside_test else Path(root)
    edit_sessions: dict[str, list[dict[str, str]]] = {}
    local: dict[str, dict[str, str]] = {}
    glob: dict[str, dict[str, str]] = {}
    targets: dict[str, Image.Image] = {}
    for s, (img_id, n) in enumerate(sessions.items()):
        d = test / "images" / img_id
        prev = picture(1000 + s, size)
        save(prev, d / f"{img_id}-input.png")
        glob[img_id] = {f"{img_id}-input.png": f"global input {img_id}"}
        local[img_id] = {}
        turns = []
        for t in range(1, n + 1):
            out, mask = edit(prev, 100 * s + t)
            save(out, d / f"{img_id}-output{t}.png")
            save(mask, d / f"{img_id}-mask{t}.png")
            turns.append({"input": f"{img_id}-input.png" if t == 1 else f"{img_id}-output{t - 1}.png",
                          "mask": f"{img_id}-mask{t}.png", "output": f"{img_id}-output{t}.png",
                          "instruction": f"paint box {t} of {img_id}"})
            local[img_id][f"{img_id}-output{t}.png"] = f"local {img_id} turn {t}"
            glob[img_id][f"{img_id}-output{t}.png"] = f"global {img_id} turn {t}"
            targets[f"{img_id}-t{t}"] = out
            prev = out
        edit_sessions[img_id] = turns
    write_json(test / "edit_sessions.json", edit_sessions)
    write_json(test / "local_descriptions.json", local)
    write_json(test / "global_descriptions.json", glob)
    return {"root": Path(root), "test": test, "sessions": edit_sessions, "targets": targets,
            "n_turns": sum(sessions.values())}


def magicbrush_rows(sessions: dict[str, int] | None = None, size: int = 32,
                    turn_numbers: dict[str, list[int]] | None = None) -> dict[str, list[Any]]:
    sessions = sessions or {"2001": 2, "2002": 1}
    cols: dict[str, list[Any]] = {c: [] for c in ("img_id", "turn_index", "source_img", "mask_img",
                                                  "instruction", "target_img")}
    for s, (img_id, n) in enumerate(sessions.items()):
        prev = picture(2000 + s, size)
        numbers = (turn_numbers or {}).get(img_id, list(range(1, n + 1)))
        for t in numbers:
            out, mask = edit(prev, 50 * s + t)
            cols["img_id"].append(img_id)
            cols["turn_index"].append(t)
            cols["source_img"].append(prev)
            cols["mask_img"].append(mask)
            cols["instruction"].append(f"edit {img_id} turn {t}")
            cols["target_img"].append(out)
            prev = out
    return cols


def write_magicbrush_parquet(root: Path, split: str = "train", sessions: dict[str, int] | None = None,
                             size: int = 32, turn_numbers: dict[str, list[int]] | None = None,
                             shards: int = 1) -> list[Path]:
    """The hub layout: ``data/{split}-0000i-of-0000n.parquet``."""
    cols = magicbrush_rows(sessions, size, turn_numbers)
    n = len(cols["img_id"])
    paths = []
    bounds = np.linspace(0, n, shards + 1).astype(int)
    for i in range(shards):
        part = {k: v[bounds[i]:bounds[i + 1]] for k, v in cols.items()}
        paths.append(write_parquet(Path(root) / "data" / f"{split}-{i:05d}-of-{shards:05d}.parquet",
                                   part, ("source_img", "mask_img", "target_img"),
                                   {"turn_index": "int32"}))
    return paths


# --------------------------------------------------------------------------- EVR
def write_evr(root: Path, split: str = "test", n_pairs: int = 3, size: int = 40,
              sentences: int | None = None) -> dict[str, Any]:
    """``dataset/adobe/{split}.json`` records {img0, img1, sents, uid}; images in ``images/``."""
    sentences = sentences or (1 if split == "train" else 3)
    records = []
    for i in range(n_pairs):
        stem = f"Reddit.com_{split}{i:03d}"
        src = picture(3000 + i, (size, size - 8 if i % 2 else size))
        tgt = retouch(src, i)
        if i == 2:  # a crop: the target has another size, as many EVR pairs do
            tgt = tgt.crop((2, 2, src.size[0] - 2, src.size[1] - 2))
        save(src, Path(root) / "images" / f"{stem}_{stem[-3:]}.jpg")
        save(tgt, Path(root) / "images" / f"{stem}_edit.png")
        records.append({"img0": f"{stem}_{stem[-3:]}.jpg", "img1": f"{stem}_edit.png",
                        "sents": [f"brighten picture {i} ({k})" for k in range(sentences)],
                        "uid": f"Reddit_{split}_{i}"})
    write_json(Path(root) / "dataset" / "adobe" / f"{split}.json", records)
    return {"root": Path(root), "records": records}


# --------------------------------------------------------------------------- GIER
def write_gier(root: Path, split: str = "test", size: int = 40) -> dict[str, Any]:
    """``splits/{split}_sess_3.json``, ``images/``, ``masks/<input stem>_mask.json`` (RLE lists)."""
    root = Path(root)
    pairs = []
    specs = [
        ("a1b2c", {"brightness": {"local": False, "ids": []}}, ["brighten it"], ["lighter please"]),
        ("d3e4f", {"inpaint_obj": {"local": True, "ids": [0, 2]}}, ["remove the two things"], []),
        ("g5h6i", {"contrast": {"local": False, "ids": []}, "tint": {"local": True, "ids": [1]}},
         [], ["more contrast", "tint the left"]),
    ]
    masks_out = {}
    for i, (stem, ops, expert, amateur) in enumerate(specs):
        w, h = size + 8 * i, size
        src = picture(4000 + i, (w, h))
        tgt = retouch(src, i)
        save(src, root / "images" / f"{stem}_{stem}.jpg")
        save(tgt, root / "images" / f"{stem}_out{i}.jpg")
        rles, parts = [], []
        for k in range(3):
            m = np.zeros((h, w), dtype=bool)
            x0 = k * w // 3
            m[h // 4: 3 * h // 4, x0: x0 + w // 4] = True
            parts.append(m)
            rles.append(rle_encode(m))
        write_json(root / "masks" / f"{stem}_{stem}_mask.json", rles)
        masks_out[stem] = parts
        pairs.append({"input": f"{stem}_{stem}.jpg", "output": f"{stem}_out{i}.jpg",
                      "segment": f"{stem}/{stem}.jpg", "palette": f"{stem}/{stem}plt.jpg",
                      "request": f"request {i}", "detailed_request": math.nan if i % 2 else "more",
                      "dataset": "reddit", "workerId": "W", "operator": ops,
                      "expert_summary": expert, "amateur_summary": amateur})
    path = root / "splits" / f"{split}_sess_3.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pairs), encoding="utf-8")  # NaN written as NaN, as published
    return {"root": root, "pairs": pairs, "masks": masks_out}


# --------------------------------------------------------------------------- MA5k-Req
def write_ma5k(root: Path, splits: dict[str, int] | None = None, size: int = 40,
               with_annotations: bool = True) -> dict[str, Any]:
    """``FiveK.json`` (all records) and ``annotations/{split}_sess_1.json`` (with request_idx)."""
    root = Path(root)
    splits = splits or {"train": 4, "val": 1, "test": 3}
    all_records, per_split = [], {}
    n = 0
    for split, count in splits.items():
        recs = []
        for k in range(count):
            num = f"{n:04d}"
            src = picture(5000 + n, (size + 8, size))
            save(src, root / "images" / f"{num}_O.jpg")
            expert = "ABCDE"[n % 5]
            save(retouch(src, n), root / "images" / f"{num}_{expert}.jpg")
            rec = {"input": f"{num}_O.jpg", "output": f"{num}_{expert}.jpg",
                   "request": f"make image {num} brighter"}
            all_records.append(dict(rec))
            recs.append({**rec, "request_idx": [1, 14, 4, 5, 2, 0, 0]})
            n += 1
        per_split[split] = recs
        if with_annotations:
            write_json(root / "annotations" / f"{split}_sess_1.json", recs)
    write_json(root / "FiveK.json", all_records)
    return {"root": root, "splits": per_split, "all": all_records}


# --------------------------------------------------------------------------- HumanEdit
HUMANEDIT_TYPES = ("Action", "Add", "Counting", "Relation", "Remove", "Replace")


def humanedit_mask(mask: Image.Image, style: str) -> Image.Image:
    """A white-on-black edit mask drawn the way a HumanEdit MASK_IMG may be stored."""
    m = np.asarray(mask) > 127
    if style == "alpha":  # brush strokes on a transparent layer
        rgba = np.zeros(m.shape + (4,), np.uint8)
        rgba[m] = (255, 255, 255, 255)
        return Image.fromarray(rgba, "RGBA")
    if style == "black":  # mask_convert.py's input: black strokes on white
        return Image.fromarray(np.where(m, 0, 255).astype(np.uint8), "L").convert("RGB")
    return mask


def write_humanedit(root: Path, n: int = 12, size: int = 32, mask_style: str = "alpha") -> dict[str, Any]:
    """``data/train-00000-of-00001.parquet`` with the hub card's 11 columns."""
    cols: dict[str, list[Any]] = {c: [] for c in (
        "IMAGE_ID", "EDITING_TYPE", "CORE", "MASK", "EDITING_INSTRUCTION", "OUTPUT_DESCRIPTION",
        "INPUT_CAPTION_BY_LLAMA", "OUTPUT_CAPTION_BY_LLAMA", "INPUT_IMG", "MASK_IMG", "OUTPUT_IMG")}
    masks = {}
    for i in range(n):
        src = picture(6000 + i, size)
        out, mask = edit(src, 600 + i)
        image_id = f"{i * 7919 % 100000:012d}"
        cols["IMAGE_ID"].append(image_id)
        cols["EDITING_TYPE"].append(HUMANEDIT_TYPES[i % 6])
        cols["CORE"].append(i % 2)
        cols["MASK"].append(1)
        cols["EDITING_INSTRUCTION"].append(f"humanedit instruction {i}")
        cols["OUTPUT_DESCRIPTION"].append(f"description {i}")
        cols["INPUT_CAPTION_BY_LLAMA"].append(f"llama input {i}")
        cols["OUTPUT_CAPTION_BY_LLAMA"].append(f"llama output {i}")
        cols["INPUT_IMG"].append(src)
        cols["MASK_IMG"].append(humanedit_mask(mask, mask_style))
        cols["OUTPUT_IMG"].append(out)
        masks[image_id] = mask
    path = write_parquet(Path(root) / "data" / "train-00000-of-00001.parquet", cols,
                         ("INPUT_IMG", "MASK_IMG", "OUTPUT_IMG"), {"CORE": "int32", "MASK": "int32"})
    return {"root": Path(root), "path": path, "columns": cols, "masks": masks}


# --------------------------------------------------------------------------- ComplexMultistep
def write_complex_multistep(root: Path, n: int = 5, size: int = 32,
                            columns: dict[str, str] | None = None) -> dict[str, Any]:
    """``reasoning.parquet``. The published column names could not be read here (see
    ``benchmark.datasets.complex_multistep``); ``columns`` renames the default ones."""
    names = {"source": "source_image", "target": "edited_image", "instruction": "instruction",
             "reasoning": "reasoning", **(columns or {})}
    cols: dict[str, list[Any]] = {names[k]: [] for k in ("source", "target", "instruction", "reasoning")}
    for i in range(n):
        src = picture(7000 + i, size)
        out, _ = edit(retouch(src, i), 700 + i)
        cols[names["source"]].append(src)
        cols[names["target"]].append(out)
        cols[names["instruction"]].append(f"first brighten it, then add box {i}")
        cols[names["reasoning"]].append(f"step-by-step plan {i}")
    path = write_parquet(Path(root) / "reasoning.parquet", cols, (names["source"], names["target"]))
    return {"root": Path(root), "path": path, "columns": cols}


# --------------------------------------------------------------------------- IPr2Pr
def write_ipr2pr_folder(root: Path, n_prompts: int = 6, seeds_per_prompt: int = 2,
                        size: int = 32) -> dict[str, Any]:
    """InstructPix2Pix's generated layout: ``seeds.json`` and ``<name>/{prompt.json, {seed}_{0,1}.jpg}``."""
    root = Path(root)
    seeds = []
    for i in range(n_prompts):
        name = f"{i:07d}"
        prompt = {"input": f"a photo {i}", "edit": f"make it look like painting {i}",
                  "output": f"a painting {i}"}
        write_json(root / name / "prompt.json", prompt)
        names = []
        for k in range(seeds_per_prompt):
            seed = str(1000003 * (i + 1) + k)
            src = picture(8000 + 10 * i + k, size)
            save(src, root / name / f"{seed}_0.jpg")
            save(retouch(src, i + k), root / name / f"{seed}_1.jpg")
            names.append(seed)
        seeds.append([name, sorted(names)])
    seeds.sort()
    write_json(root / "seeds.json", seeds)
    return {"root": root, "seeds": seeds}


def write_ipr2pr_parquet(root: Path, n: int = 4, size: int = 32) -> dict[str, Any]:
    """The hub layout of ``timbrooks/instructpix2pix-clip-filtered``: ``data/train-*.parquet``."""
    cols: dict[str, list[Any]] = {c: [] for c in ("original_prompt", "original_image", "edit_prompt",
                                                  "edited_prompt", "edited_image")}
    for i in range(n):
        src = picture(9000 + i, size)
        cols["original_prompt"].append(f"a photo {i}")
        cols["original_image"].append(src)
        cols["edit_prompt"].append(f"turn it into painting {i}")
        cols["edited_prompt"].append(f"a painting {i}")
        cols["edited_image"].append(retouch(src, i))
    path = write_parquet(Path(root) / "data" / "train-00000-of-00001.parquet", cols,
                         ("original_image", "edited_image"))
    return {"root": Path(root), "path": path, "columns": cols}


# --------------------------------------------------------------------------- end to end


def oracle_run(task: str, dataset: str, data_dir: Path, work: Path, *extra: str) -> dict[str, Any]:
    """``editbench run --model oracle --task TASK --data-dir DIR`` (seed 0); the result dict."""
    from benchmark.cli import main
    from benchmark.registry import DATASETS

    assert dataset in DATASETS, f"dataset {dataset!r} is not registered"
    out = Path(work) / f"{task}.json"
    rc = main(["run", "--model", "oracle", "--task", task, "--data-dir", str(data_dir),
               "--no-progress", "--cache-dir", str(Path(work) / "cache"), "--output", str(out),
               "--seeds", "0", *extra])
    assert rc == 0, f"editbench run exited {rc}"
    return json.loads(out.read_text())
