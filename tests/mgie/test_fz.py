"""The FZ ablation: MGIE's expressive instruction, as text, through the frozen InstructPix2Pix."""

import numpy as np

from benchmark.api import EditRequest
from benchmark.datasets import synth
from benchmark.registry import MODELS


def test_fz_edits_with_the_expressive_instruction_as_text():
    fz = MODELS.get("mgie-fz")()
    sample = synth.load("evr", "test", size=64)[0]
    settings = {"steps": 2}
    got = fz.edit([EditRequest(sample, seed=1, settings=settings)])[0]
    mgie_expressive = fz.mllm.edit([EditRequest(sample, seed=1, settings=settings)])[0].expressive
    assert got.expressive == mgie_expressive and got.expressive
    direct = fz.editor.edit([EditRequest(sample.replace(instruction=got.expressive), seed=1,
                                         settings=settings)])[0]
    assert np.array_equal(np.asarray(got.image), np.asarray(direct.image))
    plain = fz.editor.edit([EditRequest(sample, seed=1, settings=settings)])[0]
    if got.expressive != sample.instruction:
        assert not np.array_equal(np.asarray(got.image), np.asarray(plain.image))
    assert fz.weights_sha256 == f"{fz.mllm.weights_sha256}+{fz.editor.weights_sha256}"
