"""Scenes of coloured shapes on a background, and their analytic anti-aliased rendering.

Conventions
-----------
* Geometry lives in normalised coordinates: the image is the unit square, x grows to the right
  and y downwards, so one scene renders identically (up to resolution) at any ``size``.
* A shape's coverage of a pixel is ``clip(0.5 - sdf_px, 0, 1)``, with ``sdf_px`` its signed
  distance (negative inside) in output pixels: analytic 1-px anti-aliasing. Shapes are composited
  in painter's order in float32, ``img = img * (1 - a) + colour * a``, and quantised once at the
  end, ``round(clip(img, 0, 1) * 255)``.
* Where a shape's coverage is 0, compositing it leaves the pixel bit-identical, and where it is 1
  the pixel no longer depends on anything below; masks of local edits rely on both.
* A ``View(zoom, cx, cy)`` renders the window of width ``1 / zoom`` centred on ``(cx, cy)`` at full
  resolution, analytically, so a zoomed target needs no resampling.
* Objects sit in distinct cells of a 3x3 grid (``cell = row * 3 + col``), jittered inside the cell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = [
    "PALETTE",
    "COLOURS",
    "KINDS",
    "SIZES",
    "SIZE_CLASSES",
    "POSITIONS",
    "REGIONS",
    "BACKGROUND_KINDS",
    "DIRECTIONS",
    "CHECK_SIZE",
    "Shape",
    "Background",
    "Scene",
    "View",
    "Rendered",
    "render",
    "render_float",
    "check_render",
    "quantise",
    "random_scene",
    "random_background",
    "make_shape",
    "scene_ok",
    "shape_colours_for",
    "colour_distance",
    "article",
    "weighted_index",
    "weighted_order",
    "sample_cells",
]

# Distinct under a 0.35 Euclidean distance in unit RGB, except orange/yellow and purple/grey,
# which therefore never serve as shape and background colour for each other.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (245, 215, 40),
    "green": (40, 165, 65),
    "cyan": (40, 200, 215),
    "blue": (40, 80, 215),
    "purple": (135, 60, 180),
    "pink": (245, 135, 190),
    "white": (245, 245, 245),
    "grey": (128, 128, 128),
    "black": (25, 25, 25),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)
_RGB: dict[str, np.ndarray] = {k: np.array(v, np.float32) / np.float32(255) for k, v in PALETTE.items()}
MIN_CONTRAST = 0.35

KINDS: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "hexagon", "star")
# Nominal radius per size class; each kind is scaled so that the classes look alike in area.
SIZES: dict[str, float] = {"small": 0.065, "medium": 0.095, "large": 0.13}
SIZE_CLASSES: tuple[str, ...] = tuple(SIZES)
POSITIONS: tuple[str, ...] = (
    "at the top left", "at the top", "at the top right",
    "on the left", "in the centre", "on the right",
    "at the bottom left", "at the bottom", "at the bottom right",
)  # fmt: skip
# Named regions for zoom/crop: (name, x side, y side), side in {-1, 0, 1}.
REGIONS: dict[str, tuple[int, int]] = {
    "top left": (-1, -1),
    "top right": (1, -1),
    "bottom left": (-1, 1),
    "bottom right": (1, 1),
    "centre": (0, 0),
}
BACKGROUND_KINDS: tuple[str, ...] = ("solid", "gradient", "stripes", "checker", "noise")
DIRECTIONS: tuple[str, ...] = ("horizontal", "vertical", "diagonal")

CHECK_SIZE = 64  # every validity decision is taken at this size, so content never depends on `size`
JITTER = 0.04
STRIPE_PERIOD = 0.25  # one pair of stripes per quarter of the image
CHECKER_CELLS = 4
NOISE_CELLS = 4
MIN_VISIBLE = 0.6

# Half-extent of each kind's bounding box, in units of the nominal radius.
_EXTENT = {
    "circle": 1.0,
    "square": 0.886,
    "triangle": 1.3 * 0.8660254,
    "diamond": 1.2,
    "hexagon": 0.92 / 0.8660254,
    "star": 1.35,
}


def _pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
    return seq[int(rng.integers(len(seq)))]


def weighted_index(rng: np.random.Generator, weights: Sequence[float]) -> int:
    """Index drawn with probability proportional to ``weights`` (one uniform draw)."""
    u = float(rng.random()) * sum(weights)
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        if u < acc:
            return i
    return len(weights) - 1


def weighted_order(rng: np.random.Generator, weights: Sequence[float]) -> list[int]:
    """A random order of all indices, earlier for heavier weights (Efraimidis-Spirakis keys)."""
    u = rng.random(len(weights))
    keys = [math.log(float(x) + 1e-300) / w for x, w in zip(u, weights)]
    return sorted(range(len(weights)), key=lambda i: -keys[i])


def sample_cells(rng: np.random.Generator, n: int) -> list[int]:
    """``n`` distinct grid cells."""
    return [int(c) for c in rng.permutation(9)[:n]]


def colour_distance(a: str, b: str) -> float:
    return float(np.sqrt(np.sum((_RGB[a] - _RGB[b]) ** 2)))


_FAR_FROM = {a: tuple(b for b in COLOURS if colour_distance(a, b) >= MIN_CONTRAST) for a in COLOURS}


def cell_centre(cell: int) -> tuple[float, float]:
    return ((cell % 3 + 0.5) / 3.0, (cell // 3 + 0.5) / 3.0)


# --------------------------------------------------------------------------- scene model


@dataclass(frozen=True)
class Shape:
    """One object: labels (kind, colour, size class, grid cell) and its exact centre."""

    kind: str
    colour: str
    size: str
    cell: int
    x: float
    y: float

    @property
    def radius(self) -> float:
        return SIZES[self.size]

    @property
    def extent(self) -> float:
        return _EXTENT[self.kind] * SIZES[self.size]

    @property
    def position(self) -> str:
        return POSITIONS[self.cell]

    @property
    def row(self) -> int:
        return self.cell // 3

    @property
    def col(self) -> int:
        return self.cell % 3

    def noun(self, *, position: bool = True) -> str:
        """``"small blue circle at the top left"`` (no article)."""
        base = f"{self.size} {self.colour} {self.kind}"
        return f"{base} {self.position}" if position else base

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "colour": self.colour,
            "size": self.size,
            "position": self.position,
            "cell": self.cell,
            "x": self.x,
            "y": self.y,
            "radius": self.radius,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Shape":
        return cls(str(d["kind"]), str(d["colour"]), str(d["size"]), int(d["cell"]),
                   float(d["x"]), float(d["y"]))


@dataclass(frozen=True)
class Background:
    """Solid colour, linear gradient (colour 0 -> colour 1 along ``direction``), stripes
    (``direction`` = orientation), checkerboard, or smooth value noise from ``seed``."""

    kind: str
    colours: tuple[str, ...]
    direction: str | None = None
    seed: int | None = None

    def phrase(self, *, explicit: bool = False) -> str:
        """Noun phrase for instructions: ``"a red and white checkerboard"``; a solid background is
        ``"blue"``, or ``"solid blue"`` when ``explicit``."""
        c = self.colours
        if self.kind == "solid":
            return f"solid {c[0]}" if explicit else c[0]
        if self.kind == "gradient":
            a, b = _GRADIENT_ENDS[self.direction]
            return f"a gradient from {c[0]} {a} to {c[1]} {b}"
        if self.kind == "stripes":
            return f"{self.direction} {c[0]} and {c[1]} stripes"
        if self.kind == "checker":
            return article(f"{c[0]} and {c[1]} checkerboard")
        return f"cloudy {c[0]} and {c[1]} noise"

    def caption(self) -> str:
        c = self.colours
        if self.kind == "solid":
            return article(f"{c[0]} background")
        if self.kind == "gradient":
            a, b = _GRADIENT_ENDS[self.direction]
            return f"a gradient background from {c[0]} {a} to {c[1]} {b}"
        if self.kind == "stripes":
            return f"a background of {self.direction} {c[0]} and {c[1]} stripes"
        if self.kind == "checker":
            return article(f"{c[0]} and {c[1]} checkerboard background")
        return f"a cloudy {c[0]} and {c[1]} background"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "colours": list(self.colours), "direction": self.direction, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Background":
        seed = d.get("seed")
        return cls(str(d["kind"]), tuple(str(c) for c in d["colours"]), d.get("direction"),
                   None if seed is None else int(seed))


_GRADIENT_ENDS = {
    "horizontal": ("on the left", "on the right"),
    "vertical": ("at the top", "at the bottom"),
    "diagonal": ("at the top left", "at the bottom right"),
}


def article(phrase: str) -> str:
    """``"an orange circle"``, ``"a red circle"``."""
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def _join(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


@dataclass(frozen=True)
class Scene:
    """A background and up to five shapes in painter's order (later ones on top)."""

    background: Background
    shapes: tuple[Shape, ...] = ()

    def __hash__(self) -> int:
        # Scenes key the render caches; hashing every nested dataclass again each time was a
        # sizeable share of generation time.
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((self.background, self.shapes))
            object.__setattr__(self, "_hash", h)
        return h

    def caption(self, *, positions: bool = True, only: Sequence[int] | None = None,
                max_words: int = 50) -> str:
        """``"a large red square in the centre and a small blue circle at the top left on a white
        background"``; objects in reading order (by grid cell). Positions are dropped when the
        caption would exceed ``max_words`` (CLIP reads 77 tokens)."""
        idx = range(len(self.shapes)) if only is None else only
        objs = sorted((self.shapes[i] for i in idx), key=lambda s: s.cell)
        if not objs:
            return f"{self.background.caption()} with no shapes"
        objects = _join([article(s.noun(position=positions)) for s in objs])
        text = f"{objects} on {self.background.caption()}"
        if positions and len(text.split()) > max_words:
            return self.caption(positions=False, only=only)
        return text

    def replace_shape(self, i: int, shape: Shape | None) -> "Scene":
        shapes = list(self.shapes)
        if shape is None:
            del shapes[i]
        else:
            shapes[i] = shape
        return Scene(self.background, tuple(shapes))

    def add_shape(self, shape: Shape) -> "Scene":
        return Scene(self.background, self.shapes + (shape,))

    def with_background(self, background: Background) -> "Scene":
        return Scene(background, self.shapes)

    def free_cells(self) -> list[int]:
        used = {s.cell for s in self.shapes}
        return [c for c in range(9) if c not in used]

    def to_dict(self) -> dict[str, Any]:
        return {"background": self.background.to_dict(), "shapes": [s.to_dict() for s in self.shapes]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Scene":
        return cls(Background.from_dict(d["background"]), tuple(Shape.from_dict(s) for s in d["shapes"]))


@dataclass(frozen=True)
class View:
    """Render the window of width ``1 / zoom`` centred on ``(cx, cy)``."""

    zoom: float = 1.0
    cx: float = 0.5
    cy: float = 0.5

    @classmethod
    def on_region(cls, region: str, zoom: float) -> "View":
        """The window of ``1 / zoom`` anchored in the named corner (or centred)."""
        sx, sy = REGIONS[region]
        half = 0.5 / zoom
        return cls(float(zoom), 0.5 + sx * (0.5 - half), 0.5 + sy * (0.5 - half))

    @property
    def region(self) -> str:
        side = lambda v: 0 if abs(v - 0.5) < 1e-9 else (1 if v > 0.5 else -1)  # noqa: E731
        key = (side(self.cx), side(self.cy))
        for name, sides in REGIONS.items():
            if sides == key:
                return name
        return f"point ({self.cx:.2f}, {self.cy:.2f})"

    def shows(self, shape: "Shape") -> bool:
        """Whether at least half of the shape's bounding box lies in the window."""
        half, e = 0.5 / self.zoom, shape.extent
        ox = min(shape.x + e, self.cx + half) - max(shape.x - e, self.cx - half)
        oy = min(shape.y + e, self.cy + half) - max(shape.y - e, self.cy - half)
        return ox > 0 and oy > 0 and ox * oy >= 0.5 * (2 * e) ** 2

    def to_dict(self) -> dict[str, Any]:
        return {"zoom": self.zoom, "cx": self.cx, "cy": self.cy, "region": self.region}


def _as_view(view: View | Sequence[float] | Mapping[str, float] | None) -> View:
    if view is None:
        return View()
    if isinstance(view, View):
        return view
    if isinstance(view, Mapping):
        return View(float(view["zoom"]), float(view.get("cx", 0.5)), float(view.get("cy", 0.5)))
    zoom, cx, cy = view
    return View(float(zoom), float(cx), float(cy))


# --------------------------------------------------------------------------- random scenes


def random_background(rng: np.random.Generator, *, kinds: Sequence[str] = BACKGROUND_KINDS,
                      weights: Sequence[float] | None = None) -> Background:
    """A random background; two-colour backgrounds use clearly distinct colours."""
    if weights is None:
        weights = [_BG_WEIGHTS[k] for k in kinds]
    kind = kinds[weighted_index(rng, weights)]
    c1 = _pick(rng, COLOURS)
    if kind == "solid":
        return Background("solid", (c1,))
    c2 = _pick(rng, _FAR_FROM[c1])
    if kind in ("gradient", "stripes"):
        return Background(kind, (c1, c2), _pick(rng, DIRECTIONS))
    if kind == "checker":
        return Background(kind, (c1, c2))
    return Background(kind, (c1, c2), None, int(rng.integers(1 << 31)))


_BG_WEIGHTS = {"solid": 0.4, "gradient": 0.2, "stripes": 0.12, "checker": 0.12, "noise": 0.16}


@lru_cache(maxsize=1024)
def _shape_colours(kind: str, colours: tuple[str, ...]) -> tuple[str, ...]:
    probes = [tuple(float(v) for v in _RGB[c]) for c in colours]
    if kind in ("gradient", "noise"):
        probes.append(tuple(0.5 * (a + b) for a, b in zip(probes[0], probes[1])))
    return tuple(c for c in COLOURS
                 if all(math.dist([float(v) for v in _RGB[c]], p) >= MIN_CONTRAST for p in probes))


def shape_colours_for(bg: Background, exclude: Sequence[str] = ()) -> list[str]:
    """Colours that stand out against every colour of ``bg`` (a pre-filter; ``scene_ok`` has the
    final word, e.g. for the colour a gradient takes under a shape)."""
    return [c for c in _shape_colours(bg.kind, bg.colours) if c not in exclude]


def make_shape(kind: str, colour: str, size: str, cell: int,
               rng: np.random.Generator | None = None) -> Shape:
    """A shape in ``cell``: jittered when ``rng`` is given, else at the cell centre; kept inside
    the image."""
    cx, cy = cell_centre(cell)
    if rng is not None:
        cx += float(rng.uniform(-JITTER, JITTER))
        cy += float(rng.uniform(-JITTER, JITTER))
    e = _EXTENT[kind] * SIZES[size] + 0.01
    return Shape(kind, colour, size, int(cell), min(max(cx, e), 1.0 - e), min(max(cy, e), 1.0 - e))


def random_scene(rng: np.random.Generator, *, n_shapes: int | Sequence[int] | None = None,
                 background: Background | None = None, max_tries: int = 200) -> Scene:
    """A random valid scene (see ``scene_ok``) of 1-4 shapes in distinct cells.

    ``n_shapes``: a count, or a sequence of allowed counts (drawn uniformly).
    """
    for _ in range(max_tries):
        bg = background if background is not None else random_background(rng)
        if n_shapes is None:
            n = weighted_index(rng, (0.15, 0.3, 0.3, 0.25)) + 1
        elif isinstance(n_shapes, int):
            n = n_shapes
        else:
            n = int(_pick(rng, list(n_shapes)))
        colours = shape_colours_for(bg)
        if not colours:
            continue
        shapes = tuple(
            make_shape(_pick(rng, KINDS), _pick(rng, colours), _pick(rng, SIZE_CLASSES), c, rng)
            for c in sample_cells(rng, n)
        )
        scene = Scene(bg, shapes)
        if scene_ok(scene):
            return scene
    raise RuntimeError("could not draw a valid synth scene")


# --------------------------------------------------------------------------- signed distances
# All take X of shape (1, w) and Y of shape (h, 1), relative to the centre, and the nominal radius;
# they return (h, w) distances in normalised units. Polygons use the max of their edge half-planes:
# exact inside and along edges, slightly short near outer vertices, which is well inside 1 px.


def _sdf_circle(X, Y, r):
    return np.sqrt(X * X + Y * Y) - np.float32(r)


def _sdf_square(X, Y, r):
    h = np.float32(0.886 * r)
    qx = np.abs(X) - h
    qy = np.abs(Y) - h
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
    return outside + np.minimum(np.maximum(qx, qy), 0)


def _sdf_diamond(X, Y, r):
    return (np.abs(X) + np.abs(Y) - np.float32(1.2 * r)) * np.float32(0.70710678)


def _sdf_triangle(X, Y, r):
    # Equilateral, apex up, circumradius 1.3 r, centred on its bounding box.
    R = 1.3 * r
    side = np.float32(0.8660254) * np.abs(X) - np.float32(0.5) * Y - np.float32(0.375 * R)
    return np.maximum(Y - np.float32(0.75 * R), side)


def _sdf_hexagon(X, Y, r):
    # Flat top and bottom, apothem 0.92 r (after Inigo Quilez's sdHexagon).
    a = 0.92 * r
    kx, ky, kz = np.float32(-0.8660254), np.float32(0.5), 0.57735027
    px = np.abs(X)
    py = np.abs(Y)
    d = np.minimum(kx * px + ky * py, 0) * np.float32(2)
    px = px - d * kx
    py = py - d * ky
    px = px - np.clip(px, np.float32(-kz * a), np.float32(kz * a))
    py = py - np.float32(a)
    return np.sqrt(px * px + py * py) * np.sign(py)


_K1 = (np.float32(0.809016994), np.float32(-0.587785252))


def _sdf_star(X, Y, r):
    # Five points, one up, outer radius 1.35 r, inner ratio 0.5 (Inigo Quilez's sdStar5, y up).
    R = np.float32(1.35 * r)
    k1x, k1y = _K1
    k2x, k2y = -k1x, k1y
    px = np.abs(X) + np.zeros_like(Y)
    py = -Y + np.zeros_like(X)
    d = np.maximum(k1x * px + k1y * py, 0) * np.float32(2)
    px -= d * k1x
    py -= d * k1y
    d = np.maximum(k2x * px + k2y * py, 0) * np.float32(2)
    px -= d * k2x
    py -= d * k2y
    px = np.abs(px)
    py -= R
    bax, bay = np.float32(0.5) * -k1y, np.float32(0.5) * k1x - np.float32(1)
    h = np.clip((px * bax + py * bay) / np.float32(bax * bax + bay * bay), 0, R)
    qx = px - bax * h
    qy = py - bay * h
    return np.sqrt(qx * qx + qy * qy) * np.sign(py * bax - px * bay)


_SDF = {
    "circle": _sdf_circle,
    "square": _sdf_square,
    "triangle": _sdf_triangle,
    "diamond": _sdf_diamond,
    "hexagon": _sdf_hexagon,
    "star": _sdf_star,
}


# --------------------------------------------------------------------------- rendering


@lru_cache(maxsize=128)
def _axes(size: int, view: View) -> tuple[np.ndarray, np.ndarray]:
    """Scene coordinates of pixel centres: ``ux`` (size,) and ``uy`` (size, 1), read-only."""
    v = (np.arange(size, dtype=np.float64) + 0.5) / size - 0.5
    ux = (view.cx + v / view.zoom).astype(np.float32)
    uy = (view.cy + v / view.zoom).astype(np.float32).reshape(size, 1)
    ux.setflags(write=False)
    uy.setflags(write=False)
    return ux, uy


@lru_cache(maxsize=256)
def _noise_lattice(seed: int) -> np.ndarray:
    lat = np.random.default_rng(seed).random((NOISE_CELLS + 1, NOISE_CELLS + 1))
    lat.setflags(write=False)
    return lat


def _noise_weights(u: np.ndarray) -> np.ndarray:
    """(n, NOISE_CELLS + 1) smoothstep interpolation weights of coordinates ``u`` in [0, 1]."""
    f = np.clip(u.astype(np.float64), 0.0, 1.0) * NOISE_CELLS
    i = np.minimum(np.floor(f).astype(np.int64), NOISE_CELLS - 1)
    t = f - i
    s = t * t * (3.0 - 2.0 * t)
    w = np.zeros((u.size, NOISE_CELLS + 1))
    rows = np.arange(u.size)
    w[rows, i] = 1.0 - s
    w[rows, i + 1] = s
    return w


def _band(s: np.ndarray, period: float) -> np.ndarray:
    """Signed distance (normalised units) to the edge of the bands where ``s mod period`` lies in
    the first half; negative inside them."""
    f = s / np.float32(period) + np.float32(0.25)
    return (np.abs(f - np.floor(f) - np.float32(0.5)) - np.float32(0.25)) * np.float32(period)


def _background_image(bg: Background, size: int, view: View) -> np.ndarray:
    """The background alone, read-only; memoised for small sizes, where it is most of the cost."""
    if size <= 128:
        return _background_image_cached(bg, size, view)
    return _background_image_uncached(bg, size, view)


def _background_image_uncached(bg: Background, size: int, view: View) -> np.ndarray:
    ux, uy = _axes(size, view)
    scale = np.float32(size * view.zoom)
    c0 = _RGB[bg.colours[0]]
    img = np.empty((size, size, 3), np.float32)
    if bg.kind == "solid":
        img[...] = c0
        img.setflags(write=False)
        return img
    c1 = _RGB[bg.colours[1]]
    if bg.kind == "gradient":
        if bg.direction == "horizontal":
            t = np.broadcast_to(ux.reshape(1, size), (size, size))
        elif bg.direction == "vertical":
            t = np.broadcast_to(uy, (size, size))
        else:
            t = (ux.reshape(1, size) + uy) * np.float32(0.5)
        a = np.clip(t, 0, 1)
    elif bg.kind == "stripes":
        if bg.direction == "horizontal":
            d = np.broadcast_to(_band(uy, STRIPE_PERIOD), (size, size))
        elif bg.direction == "vertical":
            d = np.broadcast_to(_band(ux.reshape(1, size), STRIPE_PERIOD), (size, size))
        else:
            d = _band((ux.reshape(1, size) + uy) * np.float32(0.70710678), STRIPE_PERIOD)
        a = np.clip(np.float32(0.5) - d * scale, 0, 1)
    elif bg.kind == "checker":
        p = 2.0 / CHECKER_CELLS
        gx = _band(ux.reshape(1, size), p)
        gy = _band(uy, p)
        d = -np.sign(gx * gy) * np.minimum(np.abs(gx), np.abs(gy))
        a = np.clip(np.float32(0.5) - d * scale, 0, 1)
    else:
        wx = _noise_weights(ux)
        wy = _noise_weights(uy.ravel())
        lat = _noise_lattice(int(bg.seed))
        # Separable interpolation with explicit sums rather than BLAS matmul, whose summation
        # order (hence last bits) may vary between builds.
        rows = wy[:, 0:1] * lat[0]
        for i in range(1, NOISE_CELLS + 1):
            rows = rows + wy[:, i:i + 1] * lat[i]
        acc = rows[:, 0:1] * wx[:, 0]
        for j in range(1, NOISE_CELLS + 1):
            acc = acc + rows[:, j:j + 1] * wx[:, j]
        a = acc.astype(np.float32)
    a = a[..., None]
    np.multiply(c0, np.float32(1) - a, out=img)
    img += c1 * a
    img.setflags(write=False)
    return img


_background_image_cached = lru_cache(maxsize=256)(_background_image_uncached)

Region = tuple[int, int, int, int, np.ndarray]  # (y0, y1, x0, x1, coverage)


@dataclass
class Rendered:
    """A float render and, per shape, its raw coverage (before occlusion) on its bounding box."""

    image: np.ndarray  # (H, W, 3) float32, in [0, 1]
    background: np.ndarray  # (H, W, 3) float32, read-only
    regions: list[Region | None]
    size: int

    def raw_coverage(self, i: int) -> np.ndarray:
        out = np.zeros((self.size, self.size), np.float32)
        reg = self.regions[i]
        if reg is not None:
            y0, y1, x0, x1, a = reg
            out[y0:y1, x0:x1] = a
        return out

    def visible(self) -> np.ndarray:
        """(n, H, W) float32 visible coverage: own coverage times the transparency of all above."""
        n = len(self.regions)
        cov = np.zeros((n, self.size, self.size), np.float32)
        for j, reg in enumerate(self.regions):
            if reg is None:
                continue
            y0, y1, x0, x1, a = reg
            if j:
                cov[:j, y0:y1, x0:x1] *= np.float32(1) - a
            cov[j, y0:y1, x0:x1] = a
        return cov

    def visible_fractions(self) -> list[float]:
        """Per shape, visible coverage over own coverage (1.0 when not occluded)."""
        out = []
        for i, reg in enumerate(self.regions):
            if reg is None:
                out.append(0.0)
                continue
            y0, y1, x0, x1, a = reg
            vis = a
            for reg2 in self.regions[i + 1:]:
                if reg2 is None:
                    continue
                v0, v1, u0, u1, b = reg2
                iy0, iy1, ix0, ix1 = max(y0, v0), min(y1, v1), max(x0, u0), min(x1, u1)
                if iy0 >= iy1 or ix0 >= ix1:
                    continue
                if vis is a:
                    vis = a.copy()
                above = b[iy0 - v0:iy1 - v0, ix0 - u0:ix1 - u0]
                vis[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] *= np.float32(1) - above
            total = float(a.sum(dtype=np.float64))
            if vis is a:
                out.append(1.0)
            else:
                out.append(float(vis.sum(dtype=np.float64)) / total if total > 0 else 0.0)
        return out

    def object_mask(self, i: int) -> np.ndarray:
        """Bool (H, W): where shape ``i`` has any coverage."""
        return self.raw_coverage(i) > 0

    def uncovered(self) -> np.ndarray:
        """Bool (H, W): pixels not fully covered by shapes (where the background shows at all)."""
        t = np.ones((self.size, self.size), np.float32)
        for reg in self.regions:
            if reg is not None:
                y0, y1, x0, x1, a = reg
                t[y0:y1, x0:x1] *= np.float32(1) - a
        return t > 0


def render_float(scene: Scene, size: int = 64,
                 view: View | Sequence[float] | Mapping[str, float] | None = None) -> Rendered:
    """Render ``scene`` in float32 (not quantised), keeping per-shape coverage."""
    view = _as_view(view)
    ux, uy = _axes(size, view)
    bg = _background_image(scene.background, size, view)
    img = bg.copy()
    scale = size * view.zoom
    # pixel index of scene coordinate u: (u - c) * zoom * size + size / 2 - 0.5
    margin = 1.5 / scale
    regions: list[Region | None] = []
    for s in scene.shapes:
        e = s.extent + margin
        x0 = max(0, math.ceil((s.x - e - view.cx) * scale + size / 2 - 0.5))
        x1 = min(size, math.floor((s.x + e - view.cx) * scale + size / 2 - 0.5) + 1)
        y0 = max(0, math.ceil((s.y - e - view.cy) * scale + size / 2 - 0.5))
        y1 = min(size, math.floor((s.y + e - view.cy) * scale + size / 2 - 0.5) + 1)
        if x0 >= x1 or y0 >= y1:
            regions.append(None)
            continue
        X = ux[x0:x1].reshape(1, -1) - np.float32(s.x)
        Y = uy[y0:y1] - np.float32(s.y)
        a = np.float32(0.5) - _SDF[s.kind](X, Y, s.radius) * np.float32(scale)
        np.maximum(a, 0, out=a)
        np.minimum(a, 1, out=a)
        sub = img[y0:y1, x0:x1]
        a3 = a[..., None]
        sub *= np.float32(1) - a3
        sub += _RGB[s.colour] * a3
        regions.append((y0, y1, x0, x1, a))
    return Rendered(img, bg, regions, size)


@lru_cache(maxsize=64)
def check_render(scene: Scene, view: View | None = None) -> Rendered:
    """``render_float`` at ``CHECK_SIZE``, memoised: validity checks and the 64-px output of a
    sample share one render. The arrays are read-only."""
    r = render_float(scene, CHECK_SIZE, view)
    r.image.setflags(write=False)
    return r


def quantise(img: np.ndarray) -> np.ndarray:
    """float image in [0, 1] -> uint8, ``round(clip(img, 0, 1) * 255)``."""
    # clip(x * 255, 0, 255) equals clip(x, 0, 1) * 255 bit for bit, with one temporary fewer
    t = np.multiply(img, np.float32(255))
    np.maximum(t, 0, out=t)
    np.minimum(t, 255, out=t)
    return np.round(t, out=t).astype(np.uint8)


def render(scene: Scene, size: int = 64, *, view: View | Sequence[float] | Mapping[str, float] | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (H, W, 3) image, float32 (n_objects, H, W) visible coverage).

    ``view``: ``View``, ``(zoom, cx, cy)`` or ``{"zoom", "cx", "cy"}``; None for the whole scene.
    """
    if int(size) < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    r = render_float(scene, int(size), view)
    return quantise(r.image), r.visible()


# --------------------------------------------------------------------------- validity


def scene_ok(scene: Scene, rendered: Rendered | None = None) -> bool:
    """Every shape is mostly visible (>= 60% of its coverage unoccluded) and stands out from the
    background under it (90% of its interior pixels differ from it by >= 0.25 in unit RGB)."""
    if len({s.cell for s in scene.shapes}) != len(scene.shapes):
        return False
    r = rendered if rendered is not None else check_render(scene)
    for frac in r.visible_fractions():
        if frac < MIN_VISIBLE:
            return False
    for s, reg in zip(scene.shapes, r.regions):
        if reg is None:
            return False
        y0, y1, x0, x1, a = reg
        inside = a > 0.5
        n_in = int(np.count_nonzero(inside))
        if n_in == 0:
            return False
        diff = r.background[y0:y1, x0:x1][inside] - _RGB[s.colour]
        far = np.einsum("ij,ij->i", diff, diff) >= np.float32(0.0625)
        if int(np.count_nonzero(far)) < 0.9 * n_in:
            return False
    return True
