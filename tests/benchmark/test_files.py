import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.files import ImageError, atomic_write_bytes, read_image, read_mask, to_rgb_image


def _save(tmp_path, name, im):
    path = tmp_path / name
    im.save(path)
    return path


def test_lossless_modes_are_converted(tmp_path):
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    assert np.array_equal(np.asarray(read_image(_save(tmp_path, "a.png", rgb))), np.asarray(rgb))
    opaque = rgb.convert("RGBA")
    assert np.array_equal(np.asarray(read_image(_save(tmp_path, "b.png", opaque))), np.asarray(rgb))
    pal = rgb.convert("P")
    assert read_image(_save(tmp_path, "c.png", pal)).mode == "RGB"
    assert read_image(_save(tmp_path, "d.png", rgb.convert("L"))).mode == "RGB"


@pytest.mark.parametrize("make,needle", [
    (lambda: Image.new("RGBA", (8, 8), (255, 0, 0, 10)), "transparency"),
    (lambda: Image.new("CMYK", (8, 8)), "CMYK"),
    (lambda: Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)), "16-bit"),
])
def test_ambiguous_modes_are_refused_with_one_line(tmp_path, make, needle):
    ext = ".tif" if needle == "CMYK" else ".png"
    path = _save(tmp_path, "x" + ext, make())
    with pytest.raises(ImageError) as err:
        read_image(path)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ImageError, match="missing"):
        read_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    with pytest.raises(ImageError, match="cannot be decoded"):
        read_image(bad)


def test_mask_is_binarised(tmp_path):
    m = Image.fromarray(np.array([[0, 100, 200, 255]], dtype=np.uint8))
    got = np.asarray(read_mask(_save(tmp_path, "m.png", m.convert("RGB"))))
    assert got.tolist() == [[0, 0, 255, 255]]


def test_model_output_conversion():
    chw = torch.rand(3, 5, 7)
    im = to_rgb_image(chw)
    assert im.size == (7, 5) and im.mode == "RGB"
    assert np.array_equal(np.asarray(im), np.round(chw.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    with pytest.raises(ImageError, match="NaN"):
        to_rgb_image(np.full((4, 4, 3), np.nan))
    with pytest.raises(ImageError, match="shape"):
        to_rgb_image(np.zeros((4, 4)))


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_bytes(tmp_path / "sub" / "f.bin", b"abc")
    assert (tmp_path / "sub" / "f.bin").read_bytes() == b"abc"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.bin"]
