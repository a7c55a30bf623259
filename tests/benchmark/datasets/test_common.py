from pathlib import Path

import pytest
from PIL import Image

from benchmark.api import FailedSample
from benchmark.datasets.common import (Key, PathEscapeError, Resize, Task, contained, decode_mask,
                                       run_tasks)


def test_contained_refuses_escapes_but_not_symlinked_folders(tmp_path):
    assert contained(tmp_path, "images/a/b.png") == tmp_path / "images/a/b.png"
    assert contained(tmp_path, "images/../b.png") == tmp_path / "b.png"
    for bad in ("../x.png", "a/../../x.png", "/etc/passwd"):
        with pytest.raises(PathEscapeError):
            contained(tmp_path, bad)
    with pytest.raises(ValueError, match="expected a file name"):
        contained(tmp_path, None)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "images").symlink_to(tmp_path / "elsewhere")
    assert contained(tmp_path / "data", "images/x.png") == Path(tmp_path / "data" / "images/x.png")


def test_resize_modes():
    assert str(Resize.parse("short:600")) == "short:600" and Resize.parse(None).mode == "none"
    with pytest.raises(ValueError, match="short:N or square:N"):
        Resize.parse("short:")
    src, tgt = Image.new("RGB", (30, 20)), Image.new("RGB", (33, 21))
    mask = Image.new("L", (30, 20))
    s, t, m = Resize.parse("short:10").apply(src, tgt, mask)
    assert s.size == t.size == m.size == (15, 10)
    s, t, m = Resize.parse("square:8").apply(src, tgt, mask)
    assert s.size == t.size == m.size == (8, 8)


def test_mask_rules_on_alpha_and_grey():
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    rgba.putpixel((1, 1), (255, 255, 255, 255))
    auto = decode_mask(rgba, "mask", "x", "auto")
    assert auto.getpixel((1, 1)) == 255 and auto.getpixel((0, 0)) == 0
    black = decode_mask(rgba, "mask", "x", "black")  # transparent black counts as black
    assert black.getpixel((0, 0)) == 255 and black.getpixel((1, 1)) == 0
    grey = Image.new("L", (2, 2), 200)
    assert decode_mask(grey, "mask", "x", "white").getpixel((0, 0)) == 255
    with pytest.raises(ValueError, match="unknown mask rule"):
        decode_mask(grey, "mask", "x", "purple")


def test_run_tasks_keeps_order_and_turns_crashes_into_failures():
    def ok(i):
        return lambda: [FailedSample(id=f"s{i}", error="fine")]

    def boom():
        raise RuntimeError("exploded\nsecond line")

    tasks = [Task([Key(f"s{i}")], ok(i)) for i in range(20)]
    tasks.insert(5, Task([Key("b1", "sess", 1), Key("b2", "sess", 2)], boom))
    for workers in (1, 2):
        out = list(run_tasks(iter(tasks), workers))
        assert [o.id for o in out][:7] == ["s0", "s1", "s2", "s3", "s4", "b1", "b2"]
        assert len(out) == 22
        assert out[6].error == "RuntimeError: exploded" and (out[6].session_id, out[6].turn) == ("sess", 2)
