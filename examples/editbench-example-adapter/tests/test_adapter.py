"""The example adapter's own test: it edits as documented and passes editbench's conformance
checks (the same ones `editbench validate-adapter example-tone` prints)."""

import numpy as np
import pytest
from PIL import Image

from benchmark.api import EditRequest, EditSample
from editbench_example_adapter import ToneEditor


def _sample(instruction: str, sid: str = "s0") -> EditSample:
    rng = np.random.default_rng(0)
    src = Image.fromarray(rng.integers(40, 216, (16, 16, 3), dtype=np.uint8), mode="RGB")
    return EditSample(id=sid, source=src, instruction=instruction)


def _pixels(model, instruction, seed=0, sid="s0"):
    res = model.edit([EditRequest(sample=_sample(instruction, sid), seed=seed)])
    return np.asarray(res[0].image, dtype=np.float64)


def test_brighten_and_darken_move_the_mean():
    model = ToneEditor()
    base = np.asarray(_sample("x").source, dtype=np.float64) / 255.0
    assert _pixels(model, "brighten the photo").mean() > base.mean() + 0.02
    assert _pixels(model, "make it darker").mean() < base.mean() - 0.02


def test_same_seed_same_pixels_other_seed_other_noise():
    model = ToneEditor()
    a, b = _pixels(model, "warmer please"), _pixels(model, "warmer please")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, _pixels(model, "warmer please", seed=1))


def test_presets_and_unknown_preset():
    assert ToneEditor("strong").config_hash != ToneEditor().config_hash
    with pytest.raises(ValueError, match="unknown preset"):
        ToneEditor("huge")


def test_conformance_report_passes():
    from benchmark.adapters import validate_adapter

    report = validate_adapter("editbench_example_adapter:ToneEditor", n_samples=3)
    assert report.ok, report.format()
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["determinism"] == "PASS"
    assert statuses["batch-size invariance"] == "PASS"
