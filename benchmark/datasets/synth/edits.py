"""Edit operations on synth scenes: what changes, how it is said, and its exact ground truth.

Conventions
-----------
* An edit maps a ``State`` (scene, optional zoom ``View``, global adjustments) to a new ``State``.
  The image of a state is ``adjust(render(scene, view))``: scene edits are exact re-renders, global
  adjustments exact functions of the float image before quantisation (clipped to [0, 1] after
  each), applied in order to the final framed picture.
* ``Step.instruction`` is the plain form: it names amounts in words ("a bit brighter") and refers
  to objects by their shortest unique description ("the circle", "the red circle", "the circle on
  the left"). ``Step.expressive`` is the resolved, explicit form ("remove the small blue circle at
  the top left", "increase the brightness by 20%").
* Referring steps (``Step.referring``) name their object or choice by a property one can only
  read off the image: "the largest shape", "the odd one out", "the same colour as the square",
  "brighten it if it is dark, otherwise darken it".
* Every op function has the signature ``op(state, rng, ctx) -> Step | None``; None means "does
  not apply to this state" and the caller draws again. Ops never touch cells in ``ctx.avoid``.
* All validity decisions (``check_step``) are taken on renders at ``CHECK_SIZE``, so the content
  of a sample never depends on the requested output size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .scene import (
    CHECK_SIZE,
    KINDS,
    POSITIONS,
    REGIONS,
    SIZE_CLASSES,
    Rendered,
    Scene,
    View,
    article,
    check_render,
    make_shape,
    quantise,
    random_background,
    random_scene,
    render_float,
    sample_cells,
    scene_ok,
    shape_colours_for,
)

__all__ = [
    "State",
    "Step",
    "Ctx",
    "Canvas",
    "OPS",
    "RETOUCH",
    "apply_adjust",
    "caption",
    "check_step",
    "step_mask",
    "refer",
    "scene_for",
    "odd_scene",
]

Adjust = tuple[str, tuple[float, ...]]


@dataclass(frozen=True)
class State:
    """What a picture is made of: a scene, how it is framed, and global adjustments in order."""

    scene: Scene
    view: View | None = None
    adjust: tuple[Adjust, ...] = ()

    def __hash__(self) -> int:
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((self.scene, self.view, self.adjust))
            object.__setattr__(self, "_hash", h)
        return h


@dataclass(frozen=True)
class Step:
    """One edit. ``mask``: "object" (coverage of ``affected`` = (source index, target index)),
    "background" (pixels not fully covered by shapes) or None; ``cell`` is the grid cell touched."""

    op: str
    instruction: str
    expressive: str
    source: State
    target: State
    referring: bool = False
    refer: str | None = None
    mask: str | None = None
    affected: tuple[int | None, int | None] = (None, None)
    cell: int | None = None


# --------------------------------------------------------------------------- global adjustments

_LUMA = (np.float32(0.299), np.float32(0.587), np.float32(0.114))


def _luma(img: np.ndarray) -> np.ndarray:
    return img[..., 0] * _LUMA[0] + img[..., 1] * _LUMA[1] + img[..., 2] * _LUMA[2]


def apply_adjust(img: np.ndarray, name: str, params: Sequence[float]) -> np.ndarray:
    """One global adjustment of a float (H, W, 3) image in [0, 1]; returns a new clipped image.

    brightness: ``img * g``; contrast: ``m + (img - m) * k`` with ``m`` the image's mean Rec.601
    luma; saturation: ``L + (img - L) * k`` with ``L`` each pixel's luma; gamma: ``img ** g``;
    white_balance: per-channel gains (r, g, b).
    """
    if name == "brightness":
        out = img * np.float32(params[0])
    elif name == "contrast":
        m = np.float32(np.mean(_luma(img), dtype=np.float64))
        out = (img - m) * np.float32(params[0]) + m
    elif name == "saturation":
        L = _luma(img)[..., None]
        out = (img - L) * np.float32(params[0]) + L
    elif name == "gamma":
        out = np.power(img, np.float32(params[0]))
    elif name == "white_balance":
        out = img * np.asarray(params, np.float32)
    else:
        raise ValueError(f"unknown adjustment {name!r}")
    np.maximum(out, 0, out=out)
    return np.minimum(out, 1, out=out)


@dataclass(frozen=True)
class Retouch:
    """One fixed amount of a global adjustment and the words for it."""

    op: str
    params: tuple[float, ...]
    expressive: str
    adjective: str
    plain: tuple[str, ...]


def _wb(r: float, b: float) -> tuple[float, float, float]:
    return (r, 1.0, b)


RETOUCH: dict[str, tuple[Retouch, ...]] = {
    "brightness": (
        Retouch("brightness", (1.2,), "increase the brightness by 20%", "brighter",
                ("make it a bit brighter", "brighten the image slightly", "make the picture a little lighter",
                 "increase the brightness a little")),
        Retouch("brightness", (1.5,), "increase the brightness by 50%", "much brighter",
                ("make it much brighter", "brighten the image a lot", "make the picture a lot lighter",
                 "increase the brightness a lot")),
        Retouch("brightness", (0.8,), "decrease the brightness by 20%", "darker",
                ("make it a bit darker", "darken the image slightly", "make the picture a little darker",
                 "reduce the brightness a little")),
        Retouch("brightness", (0.6,), "decrease the brightness by 40%", "much darker",
                ("make it much darker", "darken the image a lot", "make the picture a lot darker",
                 "reduce the brightness a lot")),
    ),
    "contrast": (
        Retouch("contrast", (1.3,), "increase the contrast by 30%", "higher-contrast",
                ("add a bit of contrast", "increase the contrast slightly", "make it a little punchier")),
        Retouch("contrast", (1.6,), "increase the contrast by 60%", "much higher-contrast",
                ("add a lot of contrast", "increase the contrast a lot", "make it much punchier")),
        Retouch("contrast", (0.7,), "decrease the contrast by 30%", "lower-contrast",
                ("reduce the contrast a bit", "make it slightly flatter", "soften the contrast a little")),
        Retouch("contrast", (0.4,), "decrease the contrast by 60%", "much lower-contrast",
                ("reduce the contrast a lot", "make it much flatter", "wash out the contrast")),
    ),
    "saturation": (
        Retouch("saturation", (1.5,), "increase the saturation by 50%", "more colourful",
                ("make the colours a bit more vivid", "boost the saturation a little", "make it a bit more colourful")),
        Retouch("saturation", (2.0,), "increase the saturation by 100%", "much more colourful",
                ("make the colours much more vivid", "boost the saturation a lot", "make it far more colourful")),
        Retouch("saturation", (0.5,), "decrease the saturation by 50%", "muted",
                ("mute the colours a bit", "reduce the saturation a little", "make it a bit less colourful")),
        Retouch("saturation", (0.0,), "decrease the saturation by 100%", "black and white",
                ("make it black and white", "convert it to greyscale", "remove all the colour")),
    ),
    "gamma": (
        Retouch("gamma", (0.8,), "apply a gamma curve with exponent 0.8", "lighter-toned",
                ("lift the midtones a little", "brighten the midtones slightly", "open up the shadows a bit")),
        Retouch("gamma", (0.6,), "apply a gamma curve with exponent 0.6", "much lighter-toned",
                ("lift the midtones a lot", "brighten the midtones strongly", "open up the shadows a lot")),
        Retouch("gamma", (1.25,), "apply a gamma curve with exponent 1.25", "deeper-toned",
                ("deepen the midtones a little", "darken the midtones slightly", "make the shadows a bit deeper")),
        Retouch("gamma", (1.6,), "apply a gamma curve with exponent 1.6", "much deeper-toned",
                ("deepen the midtones a lot", "darken the midtones strongly", "make the shadows much deeper")),
    ),
    "white_balance": (
        Retouch("white_balance", _wb(1.1, 0.9), "warm the white balance: red +10%, blue -10%", "warmer",
                ("make it a bit warmer", "warm up the colours slightly", "give it a slightly warmer tone")),
        Retouch("white_balance", _wb(1.25, 0.75), "warm the white balance: red +25%, blue -25%", "much warmer",
                ("make it much warmer", "warm up the colours a lot", "give it a much warmer tone")),
        Retouch("white_balance", _wb(0.9, 1.1), "cool the white balance: red -10%, blue +10%", "cooler",
                ("make it a bit cooler", "cool down the colours slightly", "give it a slightly cooler tone")),
        Retouch("white_balance", _wb(0.75, 1.25), "cool the white balance: red -25%, blue +25%", "much cooler",
                ("make it much cooler", "cool down the colours a lot", "give it a much cooler tone")),
    ),
}
_ADJECTIVE = {(r.op, r.params): r.adjective for rs in RETOUCH.values() for r in rs}
GLOBAL_OPS = tuple(RETOUCH)


# --------------------------------------------------------------------------- rendering states


class Canvas:
    """Renders states at one size, memoised, so a sample renders each picture once."""

    def __init__(self, size: int = CHECK_SIZE):
        self.size = size
        self._rendered: dict[tuple[Scene, View | None], Rendered] = {}
        self._final: dict[State, np.ndarray] = {}
        self._u8: dict[State, np.ndarray] = {}

    def rendered(self, scene: Scene, view: View | None = None) -> Rendered:
        key = (scene, view)
        r = self._rendered.get(key)
        if r is None:
            if self.size == CHECK_SIZE:
                r = check_render(scene, view)
            else:
                r = render_float(scene, self.size, view)
            self._rendered[key] = r
        return r

    def final(self, state: State) -> np.ndarray:
        img = self._final.get(state)
        if img is None:
            img = self.rendered(state.scene, state.view).image
            for name, params in state.adjust:
                img = apply_adjust(img, name, params)
            self._final[state] = img
        return img

    def uint8(self, state: State) -> np.ndarray:
        img = self._u8.get(state)
        if img is None:
            img = self._u8[state] = quantise(self.final(state))
        return img


@dataclass
class Ctx:
    """What an op may use besides the state: the check canvas and cells it must leave alone."""

    canvas: Canvas = field(default_factory=Canvas)
    avoid: frozenset[int] = frozenset()


# --------------------------------------------------------------------------- words


def caption(state: State) -> str:
    """Caption of a state's picture: the scene caption, prefixed for global adjustments ("a
    brighter image of ...") and framed for zooms ("a close-up of the top right of the picture,
    showing ...", listing the objects at least half in view, without positions)."""
    adjs = [_ADJECTIVE.get((n, tuple(p)), n) for n, p in state.adjust]
    prefix = ", ".join(adjs)
    scene = state.scene
    if state.view is not None and state.view.zoom != 1.0:
        inside = [i for i, s in enumerate(scene.shapes) if state.view.shows(s)]
        body = scene.caption(positions=False, only=inside)
        noun = f"{prefix} close-up" if prefix else "close-up"
        return f"{article(noun)} of the {state.view.region} of the picture, showing {body}"
    if prefix:
        return f"{article(prefix + ' image')} of {scene.caption()}"
    return scene.caption()


_REF_ATTRS = (
    ("kind",),
    ("colour", "kind"),
    ("size", "kind"),
    ("kind", "position"),
    ("size", "colour", "kind"),
    ("colour", "kind", "position"),
)


def refer(scene: Scene, i: int, *, colour: bool = True, position: bool = True) -> str | None:
    """Shortest unique description of shape ``i`` ("the red circle"), or None; ``colour`` /
    ``position`` False forbid those attributes (for referring edits that must not give them away)."""
    s = scene.shapes[i]
    for attrs in _REF_ATTRS:
        if (not colour and "colour" in attrs) or (not position and "position" in attrs):
            continue
        others = (o for j, o in enumerate(scene.shapes) if j != i)
        if all(any(getattr(o, a) != getattr(s, a) for a in attrs) for o in others):
            words = [getattr(s, a) for a in attrs if a != "position"]
            phrase = "the " + " ".join(words)
            return f"{phrase} {s.position}" if "position" in attrs else phrase
    return None


def _full(scene: Scene, i: int) -> str:
    return "the " + scene.shapes[i].noun()


def _pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
    return seq[int(rng.integers(len(seq)))]


_RECOLOUR = ("make {obj} {c}", "paint {obj} {c}", "change the colour of {obj} to {c}", "turn {obj} {c}",
             "colour {obj} {c}")
_REMOVE = ("remove {obj}", "delete {obj}", "get rid of {obj}", "take out {obj}", "erase {obj}")
_REPLACE = ("turn {obj} into {k}", "replace {obj} with {k}", "change {obj} into {k}", "make {obj} {k}")
_ADD = ("add {obj} {pos}", "put {obj} {pos}", "draw {obj} {pos}", "place {obj} {pos}")
_BG_SOLID = ("make the background {p}", "change the background to {p}", "paint the background {p}",
             "turn the background {p}")
_BG_OTHER = ("make the background {p}", "change the background to {p}", "replace the background with {p}",
             "use {p} as the background")
_ZOOM = {
    (2.0, False): ("zoom in on the {r}", "zoom into the {r} corner", "crop to the {r} quarter",
                   "show only the {r} quarter"),
    (2.0, True): ("zoom in on the centre", "zoom into the middle", "crop to the central quarter",
                  "show only the middle of the picture"),
    (1.5, False): ("zoom in slightly on the {r}", "zoom in a little towards the {r}",
                   "crop a little towards the {r} corner"),
    (1.5, True): ("zoom in slightly on the centre", "zoom in a little", "crop the borders a little"),
}
_EXTREME = {
    "largest": ("the largest shape", "the biggest shape"),
    "smallest": ("the smallest shape", "the tiniest shape"),
    "leftmost": ("the leftmost shape", "the shape furthest to the left"),
    "rightmost": ("the rightmost shape", "the shape furthest to the right"),
    "topmost": ("the topmost shape", "the highest shape"),
    "bottommost": ("the bottommost shape", "the lowest shape"),
}
_ODD = ("the odd one out", "the shape that does not belong", "the shape that differs from the others")
_MATCH = ("make {a} the same colour as {b}", "paint {a} the same colour as {b}", "colour {a} to match {b}",
          "give {a} the colour of {b}")
_ADD_MATCH = ("add {obj} {pos} in the same colour as {b}", "put {obj} {pos}, coloured like {b}",
              "draw {obj} {pos} with the same colour as {b}")
_ZOOM_OBJ = ("zoom in on the quarter with {b}", "crop to the quarter that contains {b}",
             "zoom into the corner where {b} is")


def _expr_recolour(scene: Scene, i: int, c: str) -> str:
    return f"turn {_full(scene, i)} {c}"


def _expr_replace(scene: Scene, i: int, kind: str) -> str:
    s = scene.shapes[i]
    return f"replace {_full(scene, i)} with {article(f'{s.size} {s.colour} {kind}')}"


def _expr_zoom(view: View) -> str:
    return f"zoom in {view.zoom:g}x on the {view.region}"


# --------------------------------------------------------------------------- local ops


def _candidates(state: State, ctx: Ctx) -> list[int]:
    return [i for i, s in enumerate(state.scene.shapes) if s.cell not in ctx.avoid]


def _recolour_step(state: State, i: int, c: str, instruction: str, referring: bool = False,
                   refer_: str | None = None) -> Step:
    scene = state.scene
    new = scene.replace_shape(i, replace(scene.shapes[i], colour=c))
    return Step("recolour", instruction, _expr_recolour(scene, i, c), state, replace(state, scene=new),
                referring, refer_, "object", (i, i), scene.shapes[i].cell)


def _new_colour(state: State, i: int, rng: np.random.Generator) -> str | None:
    options = shape_colours_for(state.scene.background, exclude=(state.scene.shapes[i].colour,))
    return _pick(rng, options) if options else None


def op_recolour(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    cands = _candidates(state, ctx)
    if not cands:
        return None
    i = _pick(rng, cands)
    c = _new_colour(state, i, rng)
    if c is None:
        return None
    text = _pick(rng, _RECOLOUR).format(obj=refer(state.scene, i), c=c)
    return _recolour_step(state, i, c, text)


def _remove_step(state: State, i: int, instruction: str, referring: bool = False,
                 refer_: str | None = None) -> Step:
    scene = state.scene
    return Step("remove", instruction, f"remove {_full(scene, i)}", state,
                replace(state, scene=scene.replace_shape(i, None)), referring, refer_, "object", (i, None),
                scene.shapes[i].cell)


def op_remove(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    cands = _candidates(state, ctx)
    if len(state.scene.shapes) < 2 or not cands:
        return None
    i = _pick(rng, cands)
    return _remove_step(state, i, _pick(rng, _REMOVE).format(obj=refer(state.scene, i)))


def _add_step(state: State, kind: str, colour: str, size: str, cell: int, instruction: str,
              referring: bool = False, refer_: str | None = None) -> Step:
    shape = make_shape(kind, colour, size, cell)
    new = state.scene.add_shape(shape)
    expr = f"add {article(f'{size} {colour} {kind}')} {shape.position}"
    return Step("add", instruction, expr, state, replace(state, scene=new), referring, refer_, "object",
                (None, len(new.shapes) - 1), cell)


def _add_slot(state: State, rng: np.random.Generator, ctx: Ctx) -> tuple[str, str, int] | None:
    free = [c for c in state.scene.free_cells() if c not in ctx.avoid]
    if len(state.scene.shapes) >= 5 or not free:
        return None
    return _pick(rng, KINDS), _pick(rng, SIZE_CLASSES), int(_pick(rng, free))


def op_add(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    slot = _add_slot(state, rng, ctx)
    colours = shape_colours_for(state.scene.background)
    if slot is None or not colours:
        return None
    kind, size, cell = slot
    colour = _pick(rng, colours)
    text = _pick(rng, _ADD).format(obj=article(f"{size} {colour} {kind}"), pos=POSITIONS[cell])
    return _add_step(state, kind, colour, size, cell, text)


def _replace_step(state: State, i: int, kind: str, instruction: str, referring: bool = False,
                  refer_: str | None = None) -> Step:
    scene = state.scene
    old = scene.shapes[i]
    # Same centre, except where a bulkier kind would poke out of the frame.
    e = make_shape(kind, old.colour, old.size, old.cell).extent + 0.01
    shape = replace(old, kind=kind, x=min(max(old.x, e), 1.0 - e), y=min(max(old.y, e), 1.0 - e))
    new = scene.replace_shape(i, shape)
    return Step("replace", instruction, _expr_replace(scene, i, kind), state, replace(state, scene=new),
                referring, refer_, "object", (i, i), old.cell)


def op_replace(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    cands = _candidates(state, ctx)
    if not cands:
        return None
    i = _pick(rng, cands)
    kind = _pick(rng, [k for k in KINDS if k != state.scene.shapes[i].kind])
    text = _pick(rng, _REPLACE).format(obj=refer(state.scene, i), k=article(kind))
    return _replace_step(state, i, kind, text)


def op_background(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    # Noise is never a target: its pattern could not be inferred from words.
    old = state.scene.background
    bg = random_background(rng, kinds=("solid", "gradient", "stripes", "checker"))
    if bg == old or (bg.kind == old.kind and set(bg.colours) == set(old.colours)):
        return None
    if bg.colours and any(s.colour in bg.colours for s in state.scene.shapes):
        return None
    tpl = _BG_SOLID if bg.kind == "solid" else _BG_OTHER
    text = _pick(rng, tpl).format(p=bg.phrase())
    expr = f"change the background to {bg.phrase(explicit=True)}"
    return Step("background", text, expr, state, replace(state, scene=state.scene.with_background(bg)),
                mask="background")


def op_zoom(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    if state.view is not None:
        return None
    region = _pick(rng, tuple(REGIONS))
    zoom = _pick(rng, (1.5, 2.0))
    view = View.on_region(region, zoom)
    if not any(view.shows(s) for s in state.scene.shapes):
        return None  # a close-up of bare background teaches little
    text = _pick(rng, _ZOOM[(zoom, region == "centre")]).format(r=region)
    return Step("zoom", text, _expr_zoom(view), state, replace(state, view=view))


def _retouch_step(state: State, r: Retouch, instruction: str, referring: bool = False,
                  refer_: str | None = None) -> Step:
    target = replace(state, adjust=state.adjust + ((r.op, r.params),))
    return Step(r.op, instruction, r.expressive, state, target, referring, refer_)


def _make_retouch_op(name: str) -> Callable[[State, np.random.Generator, Ctx], Step | None]:
    def op(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
        r = _pick(rng, RETOUCH[name])
        return _retouch_step(state, r, _pick(rng, r.plain))

    op.__name__ = f"op_{name}"
    return op


# --------------------------------------------------------------------------- referring ops


def extreme_index(scene: Scene, which: str) -> int | None:
    """Index of the unique largest/smallest/leftmost/... shape, judged by size class or grid
    column/row so that the answer has a clear margin; None when not unique."""
    if len(scene.shapes) < 2:
        return None
    key = {
        "largest": lambda s: SIZE_CLASSES.index(s.size),
        "smallest": lambda s: -SIZE_CLASSES.index(s.size),
        "leftmost": lambda s: -s.col,
        "rightmost": lambda s: s.col,
        "topmost": lambda s: -s.row,
        "bottommost": lambda s: s.row,
    }[which]
    vals = [key(s) for s in scene.shapes]
    best = max(vals)
    return vals.index(best) if vals.count(best) == 1 else None


def _extreme(state: State, rng: np.random.Generator, ctx: Ctx) -> tuple[str, int] | None:
    options = [(w, i) for w in _EXTREME if (i := extreme_index(state.scene, w)) is not None
               and state.scene.shapes[i].cell not in ctx.avoid]
    return _pick(rng, options) if options else None


def op_ref_recolour_extreme(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    found = _extreme(state, rng, ctx)
    if found is None:
        return None
    which, i = found
    c = _new_colour(state, i, rng)
    if c is None:
        return None
    text = _pick(rng, _RECOLOUR).format(obj=_pick(rng, _EXTREME[which]), c=c)
    return _recolour_step(state, i, c, text, True, which)


def op_ref_remove_extreme(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    found = _extreme(state, rng, ctx)
    if found is None:
        return None
    which, i = found
    return _remove_step(state, i, _pick(rng, _REMOVE).format(obj=_pick(rng, _EXTREME[which])), True, which)


def op_ref_replace_extreme(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    found = _extreme(state, rng, ctx)
    if found is None:
        return None
    which, i = found
    kind = _pick(rng, [k for k in KINDS if k != state.scene.shapes[i].kind])
    text = _pick(rng, _REPLACE).format(obj=_pick(rng, _EXTREME[which]), k=article(kind))
    return _replace_step(state, i, kind, text, True, which)


def odd_index(scene: Scene) -> int | None:
    """The one shape of three or more that differs from all others in exactly colour or kind
    (all share one size class), or None."""
    shapes = scene.shapes
    n = len(shapes)
    if n < 3 or len({s.size for s in shapes}) != 1:
        return None
    for attr, other in (("colour", "kind"), ("kind", "colour")):
        if len({getattr(s, other) for s in shapes}) != 1:
            continue
        vals = [getattr(s, attr) for s in shapes]
        singles = [i for i, v in enumerate(vals) if vals.count(v) == 1]
        if len(set(vals)) == 2 and len(singles) == 1:
            return singles[0]
    return None


def odd_scene(rng: np.random.Generator, max_tries: int = 100) -> Scene:
    """A valid scene of 3-4 same-size shapes, all alike but one, which differs in colour or kind."""
    for _ in range(max_tries):
        bg = random_background(rng)
        colours = shape_colours_for(bg)
        if len(colours) < 2:
            continue
        n = int(rng.integers(3, 5))
        cells = sample_cells(rng, n)
        kind, colour, size = _pick(rng, KINDS), _pick(rng, colours), _pick(rng, SIZE_CLASSES)
        odd = int(rng.integers(n))
        by_colour = bool(rng.integers(2))
        shapes = []
        for j, c in enumerate(cells):
            k, col = kind, colour
            if j == odd:
                if by_colour:
                    col = _pick(rng, [x for x in colours if x != colour])
                else:
                    k = _pick(rng, [x for x in KINDS if x != kind])
            shapes.append(make_shape(k, col, size, int(c), rng))
        scene = Scene(bg, tuple(shapes))
        if scene_ok(scene):
            return scene
    raise RuntimeError("could not draw an odd-one-out scene")


def op_ref_remove_odd(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    i = odd_index(state.scene)
    if i is None or state.scene.shapes[i].cell in ctx.avoid:
        return None
    return _remove_step(state, i, _pick(rng, _REMOVE).format(obj=_pick(rng, _ODD)), True, "odd_one_out")


def op_ref_recolour_odd(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    i = odd_index(state.scene)
    if i is None or state.scene.shapes[i].cell in ctx.avoid:
        return None
    c = _new_colour(state, i, rng)
    if c is None:
        return None
    text = _pick(rng, _RECOLOUR).format(obj=_pick(rng, _ODD), c=c)
    return _recolour_step(state, i, c, text, True, "odd_one_out")


def _colourless_refs(scene: Scene) -> list[tuple[int, str]]:
    out = []
    for j in range(len(scene.shapes)):
        r = refer(scene, j, colour=False)
        if r is not None:
            out.append((j, r))
    return out


def op_ref_recolour_match(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    scene = state.scene
    pairs = [(i, j, rb) for j, rb in _colourless_refs(scene) for i in _candidates(state, ctx)
             if i != j and scene.shapes[i].colour != scene.shapes[j].colour]
    if not pairs:
        return None
    i, j, rb = _pick(rng, pairs)
    c = scene.shapes[j].colour
    text = _pick(rng, _MATCH).format(a=refer(scene, i), b=rb)
    return _recolour_step(state, i, c, text, True, "same_colour_as")


def op_ref_add_match(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    refs = _colourless_refs(state.scene)
    slot = _add_slot(state, rng, ctx)
    if not refs or slot is None:
        return None
    j, rb = _pick(rng, refs)
    kind, size, cell = slot
    if kind == state.scene.shapes[j].kind:
        return None  # "add a circle coloured like the circle" would leave "the circle" ambiguous
    colour = state.scene.shapes[j].colour
    text = _pick(rng, _ADD_MATCH).format(obj=article(f"{size} {kind}"), pos=POSITIONS[cell], b=rb)
    return _add_step(state, kind, colour, size, cell, text, True, "same_colour_as")


_CORNERS = {0: "top left", 2: "top right", 6: "bottom left", 8: "bottom right"}


def op_ref_zoom_object(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
    if state.view is not None:
        return None
    scene = state.scene
    options = [(i, r) for i, s in enumerate(scene.shapes)
               if s.cell in _CORNERS and (r := refer(scene, i, position=False)) is not None]
    if not options:
        return None
    i, rb = _pick(rng, options)
    view = View.on_region(_CORNERS[scene.shapes[i].cell], 2.0)
    text = _pick(rng, _ZOOM_OBJ).format(b=rb)
    return Step("zoom", text, _expr_zoom(view), state, replace(state, view=view), True, "contains_object")


def _stat_luma(img: np.ndarray) -> float:
    return float(np.mean(_luma(img), dtype=np.float64))


def _stat_chroma(img: np.ndarray) -> float:
    return float(np.mean(img.max(-1) - img.min(-1), dtype=np.float64))


def _stat_contrast(img: np.ndarray) -> float:
    return float(np.std(_luma(img), dtype=np.float64))


def _stat_warmth(img: np.ndarray) -> float:
    return float(np.mean(img[..., 0] - img[..., 2], dtype=np.float64))


@dataclass(frozen=True)
class Conditional:
    """``plain`` applies ``low`` when ``stat < lo``, ``high`` when ``stat > hi``; in between the
    image is too close to call and the op does not apply (the margin keeps the answer clear)."""

    name: str
    stat: Callable[[np.ndarray], float]
    lo: float
    hi: float
    low: Retouch
    high: Retouch
    plain: tuple[str, ...]


def _retouch(op: str, params: tuple[float, ...]) -> Retouch:
    return next(r for r in RETOUCH[op] if r.params == params)


# Thresholds sit around the 30th/70th percentiles of random scenes.
CONDITIONALS: dict[str, Conditional] = {
    "brightness": Conditional(
        "if_dark", _stat_luma, 0.42, 0.58, _retouch("brightness", (1.2,)), _retouch("brightness", (0.8,)),
        ("make it a bit brighter if it is dark, otherwise make it a bit darker",
         "if the picture is dark, brighten it a little; if it is bright, darken it a little",
         "brighten it if it is dark, otherwise darken it")),
    "saturation": Conditional(
        "if_dull", _stat_chroma, 0.25, 0.4, _retouch("saturation", (1.5,)), _retouch("saturation", (0.5,)),
        ("boost the colours if they look dull, otherwise tone them down",
         "if the colours are dull, make them more vivid; otherwise mute them a bit")),
    "contrast": Conditional(
        "if_flat", _stat_contrast, 0.07, 0.13, _retouch("contrast", (1.3,)), _retouch("contrast", (0.7,)),
        ("add contrast if the image looks flat, otherwise soften it",
         "if the picture lacks contrast, increase it a little; otherwise reduce it a little")),
    "white_balance": Conditional(
        "if_cold", _stat_warmth, -0.1, 0.1, _retouch("white_balance", _wb(1.1, 0.9)),
        _retouch("white_balance", _wb(0.9, 1.1)),
        ("warm it up if it looks cold, otherwise cool it down",
         "if the picture looks cold, make it warmer; if it looks warm, make it cooler")),
}


def _make_conditional_op(name: str) -> Callable[[State, np.random.Generator, Ctx], Step | None]:
    cond = CONDITIONALS[name]

    def op(state: State, rng: np.random.Generator, ctx: Ctx) -> Step | None:
        v = cond.stat(ctx.canvas.final(state))
        if v < cond.lo:
            r = cond.low
        elif v > cond.hi:
            r = cond.high
        else:
            return None
        return _retouch_step(state, r, _pick(rng, cond.plain), True, cond.name)

    op.__name__ = f"op_ref_cond_{name}"
    return op


OPS: dict[str, Callable[[State, np.random.Generator, Ctx], Step | None]] = {
    "recolour": op_recolour,
    "remove": op_remove,
    "add": op_add,
    "replace": op_replace,
    "background": op_background,
    "zoom": op_zoom,
    **{name: _make_retouch_op(name) for name in RETOUCH},
    "ref_recolour_extreme": op_ref_recolour_extreme,
    "ref_remove_extreme": op_ref_remove_extreme,
    "ref_replace_extreme": op_ref_replace_extreme,
    "ref_remove_odd": op_ref_remove_odd,
    "ref_recolour_odd": op_ref_recolour_odd,
    "ref_recolour_match": op_ref_recolour_match,
    "ref_add_match": op_ref_add_match,
    "ref_zoom_object": op_ref_zoom_object,
    **{f"ref_cond_{name}": _make_conditional_op(name) for name in CONDITIONALS},
}


def scene_for(op: str, rng: np.random.Generator) -> Scene:
    """A random scene on which ``op`` can apply (most of the time; callers retry)."""
    if op.endswith("_odd"):
        return odd_scene(rng)
    if op in ("remove", "ref_recolour_match") or op.endswith("_extreme"):
        return random_scene(rng, n_shapes=(2, 3, 4))
    return random_scene(rng)


# --------------------------------------------------------------------------- checks and masks


def step_mask(step: Step, canvas: Canvas) -> np.ndarray | None:
    """Bool (H, W) region the step may change, at ``canvas.size``; None for global steps."""
    if step.mask is None:
        return None
    src = canvas.rendered(step.source.scene, step.source.view)
    tgt = canvas.rendered(step.target.scene, step.target.view)
    if step.mask == "background":
        return src.uncovered() | tgt.uncovered()
    i, j = step.affected
    m = np.zeros((canvas.size, canvas.size), bool)
    if i is not None:
        m |= src.object_mask(i)
    if j is not None:
        m |= tgt.object_mask(j)
    return m


MIN_CHANGED_PIXELS = 8
MIN_GLOBAL_CHANGE = 0.25


def check_step(step: Step, canvas: Canvas) -> bool:
    """The target scene is valid and the edit visibly changes the picture: >= 8 changed pixels
    inside the mask for local edits, >= 25% changed pixels for global adjustments."""
    new_scene = step.target.scene
    if new_scene is not step.source.scene and not scene_ok(new_scene, canvas.rendered(new_scene)):
        return False
    src, tgt = canvas.uint8(step.source), canvas.uint8(step.target)
    d = src != tgt
    changed = d[..., 0] | d[..., 1] | d[..., 2]  # far quicker than any(axis=-1) on small images
    if step.op in GLOBAL_OPS:
        return np.count_nonzero(changed) >= MIN_GLOBAL_CHANGE * changed.size
    mask = step_mask(step, canvas)
    if mask is not None:
        changed &= mask
    return int(np.count_nonzero(changed)) >= MIN_CHANGED_PIXELS
