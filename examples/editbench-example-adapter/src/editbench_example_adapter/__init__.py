"""``example-tone``: a minimal, complete editbench adapter (see this package's README).

The editor applies one global tone adjustment named in the instruction, then adds faint noise
drawn from ``request.generator()`` so that outputs depend on the protocol seed exactly as the
editbench protocol requires (same seed and sample -> same pixels, whatever the batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmark.api import BaseEditModel, EditRequest, EditResult

__all__ = ["ToneEditor", "adjust"]
__version__ = "0.1.0"

PRESETS = {"default": 1.0, "strong": 2.0}
NOISE = 1.0 / 255.0          # amplitude of the seeded noise, in [0, 1] units

# word in the instruction -> (operation, signed amount at strength 1)
_WORDS = (
    (("brighten", "brighter", "lighter", "lighten"), ("gamma", 0.8)),
    (("darken", "darker", "dim"), ("gamma", 1.25)),
    (("more contrast", "increase the contrast", "boost the contrast"), ("contrast", 0.3)),
    (("less contrast", "reduce the contrast", "lower the contrast"), ("contrast", -0.3)),
    (("black and white", "grayscale", "greyscale", "desaturate"), ("saturation", -1.0)),
    (("saturate", "more colourful", "more colorful", "vivid"), ("saturation", 0.4)),
    (("warmer", "warm"), ("warmth", 0.06)),
    (("cooler", "cool", "colder"), ("warmth", -0.06)),
)


def adjust(rgb: np.ndarray, instruction: str, strength: float) -> np.ndarray:
    """Apply the first tone operation named in ``instruction`` to float RGB in [0, 1]."""
    text = instruction.lower()
    for words, (op, amount) in _WORDS:
        if any(w in text for w in words):
            break
    else:
        return rgb
    if op == "gamma":
        return np.power(rgb, amount ** strength)
    if op == "contrast":
        return (rgb - 0.5) * (1.0 + amount * strength) + 0.5
    grey = rgb @ np.array([0.299, 0.587, 0.114])
    if op == "saturation":
        factor = max(0.0, 1.0 + amount * strength)
        return grey[..., None] + (rgb - grey[..., None]) * factor
    shift = amount * strength                       # warmth: red up, blue down
    return rgb + np.array([shift, 0.0, -shift])


class ToneEditor(BaseEditModel):
    name = "example-tone"

    def __init__(self, preset: str | None = None, device: str = "cpu", **_: Any):
        self.preset = preset or "default"
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r} for {self.name} "
                             f"({', '.join(PRESETS)})")
        self.device = device
        self.strength = PRESETS[self.preset]

    def config(self) -> dict[str, Any]:
        # Everything that changes the outputs goes here: it is hashed into config_hash, which
        # keys the output store and the leaderboard row.
        return {"name": self.name, "preset": self.preset, "strength": self.strength,
                "noise": NOISE, "version": __version__}

    def edit(self, requests: Sequence[EditRequest]) -> list[EditResult]:
        import torch

        out = []
        for req in requests:
            if not req.sample.instruction.strip():
                raise ValueError("empty instruction")
            rgb = np.asarray(req.sample.source.convert("RGB"), dtype=np.float64) / 255.0
            edited = adjust(rgb, req.sample.instruction, self.strength)
            # Per-edit noise from the protocol's generator: never a global RNG.
            noise = torch.rand(rgb.shape, generator=req.generator(), dtype=torch.float64).numpy()
            edited = edited + (noise - 0.5) * 2.0 * NOISE
            out.append(EditResult(image=np.clip(edited, 0.0, 1.0).astype(np.float32)))
        return out
