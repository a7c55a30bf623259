"""Per-variant mixtures of synth edits, and assembly of ``EditSample``s and sessions.

Conventions
-----------
* ``(version, variant, split, index)`` alone seeds a sample: ``np.random.default_rng`` of the first
  8 bytes (little endian) of ``sha256("editbench-synth/v{version}/{variant}/{split}/{index}")``.
* Exactly one index in each aligned block of four is a referring sample in the single-turn
  variants (which one is hashed from the block), so every split is 25% referring; MagicBrush
  turns are referring with probability 1/4 each.
* Content is decided at ``CHECK_SIZE``; ``size`` only sets the resolution of the images.
* Ids: ``f"{variant}-{split}-{index:05d}"``; MagicBrush turns ``f"{session_id}-t{turn}"``, turn from 1.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from ...api import EditSample
from .edits import GLOBAL_OPS, OPS, Canvas, Ctx, State, Step, caption, check_step, scene_for, step_mask
from .scene import CHECK_SIZE, random_scene, weighted_index, weighted_order

SYNTH_VERSION = 1
SUPPORTED_VERSIONS = (1,)
VARIANTS = ("evr", "gier", "ma5k", "magicbrush", "complex")
SPLITS = {"train": 50_000, "val": 200, "test": 100}

_COND = {"ref_cond_brightness": 1.0, "ref_cond_saturation": 1.0, "ref_cond_contrast": 1.0,
         "ref_cond_white_balance": 1.0}
_RETOUCH = {"brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "gamma": 1.0, "white_balance": 1.0}
_LOCAL = {"recolour": 1.0, "remove": 1.0, "add": 1.0, "replace": 1.0}

# variant -> {"plain": {op: weight}, "referring": {op: weight}}
MIXTURES: dict[str, dict[str, dict[str, float]]] = {
    # Photoshop-style requests.
    "evr": {
        "plain": {"background": 1.0, "remove": 1.0, "recolour": 1.0, "zoom": 1.0},
        "referring": {"ref_remove_extreme": 1.0, "ref_recolour_extreme": 1.0, "ref_remove_odd": 1.0,
                      "ref_recolour_match": 1.0, "ref_zoom_object": 1.0},
    },
    # Global retouching and local language-driven edits.
    "gier": {
        "plain": {**_RETOUCH, **_LOCAL},
        "referring": {"ref_recolour_extreme": 1.0, "ref_remove_extreme": 1.0, "ref_replace_extreme": 1.0,
                      "ref_remove_odd": 1.0, "ref_recolour_odd": 0.5, "ref_recolour_match": 1.0,
                      "ref_add_match": 1.0, **{k: 0.5 for k in _COND}},
    },
    # Global photo retouching only.
    "ma5k": {"plain": dict(_RETOUCH), "referring": dict(_COND)},
    # Multi-turn local edits with masks.
    "magicbrush": {
        "plain": dict(_LOCAL),
        "referring": {"ref_recolour_extreme": 1.0, "ref_remove_extreme": 1.0, "ref_replace_extreme": 1.0,
                      "ref_remove_odd": 0.5, "ref_recolour_odd": 0.5, "ref_recolour_match": 1.0,
                      "ref_add_match": 1.0},
    },
    # Two or three steps in one instruction.
    "complex": {
        "plain": {"background": 1.0, **_LOCAL, **{k: 0.4 for k in _RETOUCH}, "zoom": 0.5},
        "referring": {"ref_recolour_extreme": 1.0, "ref_remove_extreme": 1.0, "ref_replace_extreme": 1.0,
                      "ref_recolour_match": 1.0, "ref_add_match": 1.0, **{k: 0.5 for k in _COND}},
    },
}

MAX_TRIES = 200
# A sample's `category`: its first step's op for plain single edits, else "referring" (any step
# reads its target off the image) or "multi-step".
CATEGORIES = (*(op for op in OPS if not op.startswith("ref_")), "referring", "multi-step")
_SCENE_OPS = {"recolour", "remove", "add", "replace", "background"}


# --------------------------------------------------------------------------- arguments and seeds


def _check_args(variant: str, split: str, index: int | None = None, version: int = SYNTH_VERSION,
                size: int = 64) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown synth variant {variant!r}; valid variants: {', '.join(VARIANTS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown synth split {split!r}; valid splits: {', '.join(SPLITS)}")
    if version not in SUPPORTED_VERSIONS:
        valid = ", ".join(map(str, SUPPORTED_VERSIONS))
        raise ValueError(f"unknown synth version {version!r}; valid versions: {valid}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    if index is not None and (isinstance(index, bool) or not isinstance(index, (int, np.integer))
                              or not 0 <= index < SPLITS[split]):
        raise ValueError(f"index {index!r} out of range for synth split {split!r}; "
                         f"valid: 0..{SPLITS[split] - 1}")


def _digest(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


def sample_rng(variant: str, split: str, index: int, version: int = SYNTH_VERSION) -> np.random.Generator:
    return np.random.default_rng(_digest(f"editbench-synth/v{version}/{variant}/{split}/{index}"))


def is_referring_slot(variant: str, split: str, index: int, version: int = SYNTH_VERSION) -> bool:
    """Whether a single-turn sample is referring: one index per aligned block of four."""
    block = index // 4
    return index % 4 == _digest(f"editbench-synth/v{version}/{variant}/{split}/referring/{block}") % 4


def _weighted(rng: np.random.Generator, table: Mapping[str, float]) -> str:
    names = list(table)
    return names[weighted_index(rng, [table[n] for n in names])]


def _weighted_order(rng: np.random.Generator, table: Mapping[str, float]) -> list[str]:
    names = list(table)
    return [names[i] for i in weighted_order(rng, [table[n] for n in names])]


# --------------------------------------------------------------------------- planning (content)


def _plan_single(variant: str, rng: np.random.Generator, referring: bool, canvas: Canvas) -> Step:
    op = _weighted(rng, MIXTURES[variant]["referring" if referring else "plain"])
    ctx = Ctx(canvas)
    for _ in range(MAX_TRIES):
        step = OPS[op](State(scene_for(op, rng)), rng, ctx)
        if step is not None and check_step(step, canvas):
            return step
    raise RuntimeError(f"synth: could not generate a {op!r} edit")  # pragma: no cover


def _try_ops(state: State, rng: np.random.Generator, ctx: Ctx, table: Mapping[str, float],
             tries_per_op: int = 4) -> Step | None:
    if not table:
        return None
    for op in _weighted_order(rng, table):
        for _ in range(tries_per_op):
            step = OPS[op](state, rng, ctx)
            if step is None:
                break  # op does not apply to this state; random draws would not change that often
            if check_step(step, ctx.canvas):
                return step
    return None


def _plan_session(rng: np.random.Generator, canvas: Canvas) -> list[Step]:
    mix = MIXTURES["magicbrush"]
    n_turns = int(rng.integers(1, 4))
    referring = [bool(rng.random() < 0.25) for _ in range(n_turns)]
    steps = [_plan_single("magicbrush", rng, referring[0], canvas)]
    ctx = Ctx(canvas)
    for t in range(1, n_turns):
        state = steps[-1].target
        step = None
        if referring[t]:
            step = _try_ops(state, rng, ctx, mix["referring"])
        if step is None:
            step = _try_ops(state, rng, ctx, mix["plain"])
        if step is None:  # pragma: no cover - every scene admits a recolour
            break
        steps.append(step)
    return steps


def _plan_complex(rng: np.random.Generator, referring: bool, canvas: Canvas) -> list[Step]:
    mix = MIXTURES["complex"]
    n_steps = int(rng.integers(2, 4))
    ref_pos = int(rng.integers(n_steps)) if referring else -1
    for _ in range(MAX_TRIES):
        state = State(random_scene(rng, n_shapes=(2, 3, 4)))
        steps: list[Step] = []
        avoid: set[int] = set()
        for k in range(n_steps):
            table = dict(mix["referring" if k == ref_pos else "plain"])
            # One global adjustment and one background change at most; a zoom only last, so that
            # later steps never have to name positions in a reframed picture.
            if any(s.op in GLOBAL_OPS for s in steps):
                table = {o: w for o, w in table.items()
                         if o not in GLOBAL_OPS and not o.startswith("ref_cond_")}
            if any(s.op == "background" for s in steps):
                table.pop("background", None)
            if k != n_steps - 1:
                table.pop("zoom", None)
            step = _try_ops(state, rng, Ctx(canvas, frozenset(avoid)), table, tries_per_op=2)
            if step is None:
                break
            if step.cell is not None:
                avoid.add(step.cell)
            steps.append(step)
            state = step.target
        else:
            return steps
    raise RuntimeError("synth: could not generate a complex edit")  # pragma: no cover


# --------------------------------------------------------------------------- assembly (pixels)


def _pil(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(arr)


def _in_sequence(step: Step) -> str:
    """A global step's words inside a multi-step instruction: "make it brighter" would refer to
    the object of the previous step, so its first "it" becomes "the picture"."""
    text = step.instruction
    if step.op in GLOBAL_OPS and "the picture" not in text and "the image" not in text:
        text = re.sub(r"\bit\b", "the picture", text, count=1)
    return text


def _join_steps(texts: Sequence[str]) -> str:
    if len(texts) == 2:
        return f"{texts[0]}, then {texts[1]}"
    return f"{texts[0]}, then {', '.join(texts[1:-1])} and {texts[-1]}"


def _scene_meta(state: State) -> dict[str, Any]:
    d = state.scene.to_dict()
    if state.view is not None:
        d["view"] = state.view.to_dict()
    return d


def _meta(variant: str, split: str, index: int, version: int, steps: Sequence[Step]) -> dict[str, Any]:
    source, target = steps[0].source, steps[-1].target
    pixel_only = target.scene is source.scene and target.view is None
    return {
        "variant": variant,
        "split": split,
        "index": index,
        "version": version,
        "ops": [s.op for s in steps],
        "referring": any(s.referring for s in steps),
        "refer": [s.refer for s in steps],
        "source_scene": _scene_meta(source),
        "target_scene": None if pixel_only else _scene_meta(target),
        "adjust": [[n, list(p)] for n, p in target.adjust],
    }


def _sample(sid: str, steps: Sequence[Step], out: Canvas, variant: str, split: str, index: int,
            version: int, *, session_id: str | None = None, turn: int = 1,
            category: str | None = None) -> EditSample:
    source, target = steps[0].source, steps[-1].target
    mask = step_mask(steps[0], out) if len(steps) == 1 else None
    referring = any(s.referring for s in steps)
    if category is None:
        category = "referring" if referring else steps[0].op
    return EditSample(
        id=sid,
        source=_pil(out.uint8(source)),
        instruction=steps[0].instruction if len(steps) == 1 else _join_steps([_in_sequence(s) for s in steps]),
        target=_pil(out.uint8(target)),
        mask=None if mask is None else _pil(mask.astype(np.uint8) * np.uint8(255)),
        input_caption=caption(source),
        goal_caption=caption(target),
        expressive=", then ".join(s.expressive for s in steps),
        category=category,
        session_id=session_id,
        turn=turn,
        meta=_meta(variant, split, index, version, steps),
    )


def generate(variant: str, split: str, index: int, *, size: int = 64,
             version: int = SYNTH_VERSION) -> list[EditSample]:
    """The samples of one index: one ``EditSample``, or a session of 1-3 turns for ``magicbrush``
    (turn t's source is bit-identical to turn t-1's target)."""
    _check_args(variant, split, index, version, size)
    index = int(index)
    rng = sample_rng(variant, split, index, version)
    canvas = Canvas(CHECK_SIZE)
    out = canvas if size == CHECK_SIZE else Canvas(int(size))
    sid = f"{variant}-{split}-{index:05d}"
    if variant == "magicbrush":
        steps = _plan_session(rng, canvas)
        return [_sample(f"{sid}-t{t}", [s], out, variant, split, index, version, session_id=sid, turn=t)
                for t, s in enumerate(steps, start=1)]
    referring = is_referring_slot(variant, split, index, version)
    if variant == "complex":
        steps = _plan_complex(rng, referring, canvas)
        category = "referring" if any(s.referring for s in steps) else "multi-step"
        return [_sample(sid, steps, out, variant, split, index, version, category=category)]
    step = _plan_single(variant, rng, referring, canvas)
    return [_sample(sid, [step], out, variant, split, index, version)]


def iter_samples(variant: str, split: str, *, size: int = 64, start: int = 0, stop: int | None = None,
                 version: int = SYNTH_VERSION) -> Iterator[EditSample]:
    """Samples of indices ``start .. stop - 1`` (``stop`` defaults to the split's size), in order."""
    _check_args(variant, split, None, version, size)
    stop = SPLITS[split] if stop is None else stop
    if not 0 <= start <= stop <= SPLITS[split]:
        raise ValueError(f"bad index range {start}..{stop} for synth split {split!r}; "
                         f"valid: 0..{SPLITS[split]}")
    for index in range(start, stop):
        yield from generate(variant, split, index, size=size, version=version)


def load(variant: str, split: str = "test", *, size: int = 64, limit: int | None = None,
         version: int = SYNTH_VERSION) -> list[EditSample]:
    """All samples of indices ``0 .. SPLITS[split] - 1``, or of the first ``limit`` indices,
    flattened in order (a MagicBrush index contributes every turn of its session)."""
    _check_args(variant, split, None, version, size)
    stop = SPLITS[split] if limit is None else min(int(limit), SPLITS[split])
    if stop < 0:
        raise ValueError(f"limit must be >= 0, got {limit!r}")
    return list(iter_samples(variant, split, size=size, start=0, stop=stop, version=version))


def load_referring(split: str = "test", *, size: int = 64, limit: int | None = None,
                   version: int = SYNTH_VERSION, variants: Sequence[str] = VARIANTS) -> list[EditSample]:
    """The visually-referring share of the synth suite: every sample (MagicBrush: every turn,
    scored as in the all-turn protocol) whose category is ``referring``, variant by variant in
    ``VARIANTS`` order; ``limit`` applies per variant, as ``load``'s does. The MGIE paper's
    central claim is about these edits, whose target must be read off the image."""
    out: list[EditSample] = []
    for variant in variants:
        out.extend(s for s in load(variant, split, size=size, limit=limit, version=version)
                   if s.category == "referring")
    return out
