"""The synth suite: the embedded default benchmark data.

Procedural and deterministic: ``(version, variant, split, index)`` fully determines a sample,
bit for bit. Scenes of coloured shapes on solid, gradient or textured backgrounds are rendered
analytically (numpy, anti-aliased) at any size; every edit has an exact target, a mask for local
edits, plain and expressive instructions, and input/goal captions. About a quarter of every
variant is "referring": the instruction names its target by a property that has to be read off
the image ("remove the largest shape").

Variants mirror five benchmarks: ``evr`` (Photoshop-style), ``gier`` (global + local),
``ma5k`` (global retouching), ``magicbrush`` (multi-turn, masked), ``complex`` (multi-step).

>>> from benchmark.datasets import synth
>>> samples = synth.load("gier", "test", limit=4)
"""

from .scene import Background, Scene, Shape, View, render, random_scene
from .tasks import CATEGORIES, SPLITS, SYNTH_VERSION, VARIANTS, generate, iter_samples, load, load_referring

__all__ = [
    "SYNTH_VERSION",
    "VARIANTS",
    "SPLITS",
    "CATEGORIES",
    "generate",
    "load",
    "load_referring",
    "iter_samples",
    "random_scene",
    "render",
    "Scene",
    "Shape",
    "Background",
    "View",
]
