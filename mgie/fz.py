"""MGIE's "FZ" ablation (Fu et al., ICLR 2024, Table 3): the MLLM's expressive instruction is
fed *as text* to a frozen InstructPix2Pix, with no [IMG] tokens and no edit head. It isolates
what the expressive instruction alone brings, against MGIE's end-to-end guidance.

Here: the shipped MGIE-tiny MLLM derives E greedily (exactly as ``mgie`` does), and the shipped
InstructPix2Pix-tiny edits with E in place of the user's instruction. Registered as ``mgie-fz``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmark.api import BaseEditModel, EditRequest, EditResult


class MGIEFrozenEditor(BaseEditModel):
    name = "mgie-fz"

    def __init__(self, preset: str | None = None, device: str = "cpu", checkpoint: str | None = None,
                 editor_checkpoint: str | None = None, **kwargs: Any):
        from baselines.instruct_pix2pix import InstructPix2Pix
        from mgie.mgie import MGIE

        self.preset = preset or "tiny"
        self.device = device
        self.mllm = MGIE(preset=self.preset, device=device, checkpoint=checkpoint, **kwargs)
        self.editor = InstructPix2Pix(preset=self.preset, device=device, checkpoint=editor_checkpoint,
                                      **kwargs)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "preset": self.preset, "mllm": self.mllm.config(),
                "editor": self.editor.config()}

    @property
    def weights_sha256(self) -> str | None:
        return f"{self.mllm.weights_sha256}+{self.editor.weights_sha256}"

    def edit(self, requests: Sequence[EditRequest]) -> list[EditResult]:
        derived = [self.mllm.derive(req.sample) for req in requests]
        # Same request (seed, settings, sample id -> same noise), instruction replaced by E.
        rewritten = [EditRequest(req.sample.replace(instruction=d.expressive or req.sample.instruction),
                                 seed=req.seed, settings=req.settings)
                     for req, d in zip(requests, derived)]
        results = self.editor.edit(rewritten)
        for res, d in zip(results, derived):
            res.expressive = d.expressive
            if d.img_tokens != "generated":
                res.extra = {**res.extra, "img_tokens": d.img_tokens}
        return results
