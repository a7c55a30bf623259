"""`editbench sweep`: value lists, the metrics it needs, one run per value, the written curve."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from benchmark import sweep
from benchmark.api import BaseEditModel, EditResult
from benchmark.registry import MODELS




class BlendEditor(BaseEditModel):
    """Blends target and source by the image guidance scale: 1.0 -> the target, 2.2 -> mostly
    the source, like a real editor's edit / input-consistency trade-off."""

    name = "test-blend"

    def __init__(self, preset=None, device="cpu", **_):
        self.preset = preset or "default"

    def edit(self, requests):
        out = []
        for r in requests:
            w = min(1.0, (float(r.settings["image_guidance_scale"]) - 1.0) / 1.5)
            src = np.asarray(r.sample.source, dtype=np.float32) / 255
            tgt = np.asarray(r.sample.target, dtype=np.float32) / 255
            out.append(EditResult(image=w * src + (1 - w) * tgt))
        return out


@pytest.fixture
def blend():
    MODELS.register("test-blend", BlendEditor, overwrite=True)
    yield "test-blend"
    MODELS.unregister("test-blend")


def test_parse_values():
    assert sweep.parse_values("1.0,1.2,...,2.2") == [1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2]
    assert sweep.parse_values("3, 1, 2") == [3.0, 1.0, 2.0]
    assert sweep.parse_values("10,20,...,45") == [10.0, 20.0, 30.0, 40.0, 45.0]
    for bad in ("", "a,b", "1,...,3", "1,2,...", "1,1", "2,1,...,5"):
        with pytest.raises(ValueError):
            sweep.parse_values(bad)


def test_missing_metrics_are_named_before_anything_runs(editbench, capsys, tmp_path):
    code = editbench("sweep", "--model", "identity", "--task", "synth-evr", "--param",
                     "image_guidance_scale", "--values", "1.0,1.5", "--x-metric", "no_such_metric",
                     "--output", tmp_path, "--cache-dir", tmp_path / "c")
    assert code == 2
    err = capsys.readouterr().err
    assert "sweep needs the metrics no_such_metric" in err and "not registered here: no_such_metric" in err
    assert "--x-metric" in err
    assert not list(tmp_path.rglob("*.json"))
    # The defaults are the papers' axes.
    assert (sweep.X_METRIC, sweep.Y_METRIC) == ("clip_dir", "clip_img_input")
    msg = sweep._needs_message(["clip_img_input"], "clip_dir", "clip_img_input")
    assert "CLIP directional similarity" in msg and "output and the input image" in msg


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match="has no setting 'image_guidance'"):
        sweep.run_sweep("identity", "synth-evr", "image_guidance", [1.0], x_metric="l1", y_metric="ssim")


def test_sweep_runs_each_value_and_writes_the_curve(blend, tmp_path, editbench, capsys):
    code = editbench("sweep", "--model", blend, "--task", "synth-ma5k", "--param",
                     "image_guidance_scale", "--values", "1.0,1.6,...,2.2", "--limit", "3",
                     "--seeds", "0", "--x-metric", "l1", "--y-metric", "ssim", "--output",
                     tmp_path / "sweeps", "--cache-dir", tmp_path / "cache", "--no-progress")
    assert code == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "sweeps" / "synth-ma5k" / "test-blend-default-image_guidance_scale.json").read_text())
    assert doc["kind"] == "editbench-sweep" and doc["values"] == [1.0, 1.6, 2.2]
    xs = [p["x"] for p in doc["points"]]
    assert xs[0] == pytest.approx(0.0, abs=1e-7) and xs[0] < xs[1] < xs[2]   # l1 to the target grows
    assert len({p["task_hash"] for p in doc["points"]}) == 3                  # one task variant per value
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in capsys.readouterr().err
    else:
        png = tmp_path / "sweeps" / "synth-ma5k" / "test-blend-default-image_guidance_scale.png"
        assert Image.open(png).size[0] > 100


def test_integer_settings_stay_integers():
    from benchmark.tasks import get_task

    variant, v = sweep._variant(get_task("synth-evr"), "steps", 10.0, ["l1"])
    assert v == 10 and isinstance(variant.settings["steps"], int)
    assert variant.store_hash != get_task("synth-evr").store_hash


def test_the_default_axes_are_registered_and_plot(blend, tmp_path, editbench, capsys):
    """The papers' axes work out of the box (clip_img_input was once named but not registered)."""
    assert sweep.missing_metrics(sweep.X_METRIC, sweep.Y_METRIC) == []
    code = editbench("sweep", "--model", blend, "--task", "synth-ma5k", "--param",
                     "image_guidance_scale", "--values", "1.0,2.2", "--limit", "2", "--seeds", "0",
                     "--output", tmp_path / "sweeps", "--cache-dir", tmp_path / "cache", "--no-progress")
    assert code == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "sweeps" / "synth-ma5k" / "test-blend-default-image_guidance_scale.json").read_text())
    xs, ys = [p["x"] for p in doc["points"]], [p["y"] for p in doc["points"]]
    # scale 1.0 returns the target, 2.2 mostly the source: the edit fades, the input is kept more
    assert (doc["x_metric"], doc["y_metric"]) == ("clip_dir", "clip_img_input")
    assert xs[1] < xs[0] and ys[0] < ys[1] < 1.0
