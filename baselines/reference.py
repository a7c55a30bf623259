"""Reference editors that bracket every leaderboard.

``identity`` returns the source unchanged: the score of doing nothing (lower bound on edit
accuracy, upper bound on preservation). ``oracle`` returns the ground-truth target: the best
score a metric can give (l1 = l2 = 0, ssim = 1); a sample without a target fails for it.
Neither has weights, so ``weights_sha256`` is None.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from benchmark.api import BaseEditModel, EditRequest, EditResult


class _ReferenceEditor(BaseEditModel):
    def __init__(self, preset: str | None = None, device: str = "cpu", **_: object):
        self.preset = preset or "default"
        self.device = device


class IdentityEditor(_ReferenceEditor):
    name = "identity"

    def edit(self, requests: Sequence[EditRequest]) -> list[EditResult]:
        out = []
        for req in requests:
            t0 = time.perf_counter()
            out.append(EditResult(image=req.sample.source.copy(),
                                  seconds=time.perf_counter() - t0))
        return out


class OracleEditor(_ReferenceEditor):
    name = "oracle"

    def edit(self, requests: Sequence[EditRequest]) -> list[EditResult]:
        out = []
        for req in requests:
            t0 = time.perf_counter()
            if req.sample.target is None:
                raise ValueError(f"sample {req.sample.id} has no target for the oracle to return")
            out.append(EditResult(image=req.sample.target.copy(), expressive=req.sample.expressive,
                                  seconds=time.perf_counter() - t0))
        return out
