import json

import numpy as np
import pytest

import _dataset_fixtures as fx
from benchmark.api import EditSample, FailedSample
from benchmark.datasets import gier
from benchmark.datasets.common import rle_decode


@pytest.fixture
def data(tmp_path):
    return fx.write_gier(tmp_path / "gier")


def test_rle_decoding_matches_pycocotools_output():
    # strings produced by pycocotools 2.0.11 mask.encode on these masks
    m = np.zeros((6, 5), bool)
    m[1:4, 1:3] = True
    m[5, 4] = True
    assert np.array_equal(rle_decode({"size": [6, 5], "counts": "7330:N"}), m)
    big = rle_decode({"size": [40, 50], "counts": "01d<h0kC" + "0" * 67 + "S6"})
    expected = np.zeros((40, 50), bool)
    expected[5:30, 10:45] = True
    expected[0, 0] = True
    assert np.array_equal(big, expected)
    assert np.array_equal(rle_decode({"size": [2, 3], "counts": [1, 2, 3]}),
                          np.array([[False, True, False], [True, False, False]]))
    with pytest.raises(ValueError, match="sum to 5, expected 2x3"):
        rle_decode({"size": [2, 3], "counts": [1, 4]})


def test_triples_categories_and_masks(data):
    items = gier.load(data_dir=str(data["root"]), resize="none")
    assert [it.id for it in items] == ["a1b2c_a1b2c-1", "a1b2c_a1b2c-2", "d3e4f_d3e4f-1",
                                       "g5h6i_g5h6i-1", "g5h6i_g5h6i-2"]
    assert all(isinstance(it, EditSample) for it in items)
    assert [it.category for it in items] == ["brightness", "brightness", "inpaint_obj",
                                             "multiple", "multiple"]
    assert [it.meta["summary"] for it in items[:2]] == ["expert", "amateur"]
    assert items[0].mask is None and items[3].mask is None  # a global operator: no mask
    union = data["masks"]["d3e4f"][0] | data["masks"]["d3e4f"][2]
    assert np.array_equal(np.asarray(items[2].mask) == 255, union)
    assert items[3].meta["operators"] == ["contrast", "tint"]


def test_short_side_resize_as_t2onet(data):
    items = gier.load(data_dir=str(data["root"]), resize="short:20")
    pair = items[2]  # 48 x 40 -> short side 20 -> 24 x 20
    assert pair.source.size == pair.target.size == pair.mask.size == (24, 20)
    assert set(np.unique(np.asarray(pair.mask))) == {0, 255}
    assert gier.load(data_dir=str(data["root"]), limit=1)[0].source.size == (600, 600)  # default


def test_bad_masks_and_images_fail_per_pair(data):
    root = data["root"]
    rles = json.loads((root / "masks" / "d3e4f_d3e4f_mask.json").read_text())
    rles[2] = fx.rle_encode(np.zeros((10, 10), bool))
    (root / "masks" / "d3e4f_d3e4f_mask.json").write_text(json.dumps(rles))
    fx.truncate(root / "images" / "g5h6i_out2.jpg")
    items = {it.id: it for it in gier.load(data_dir=str(root), resize="none")}
    assert isinstance(items["a1b2c_a1b2c-1"], EditSample)
    assert "mask size 10x10" in items["d3e4f_d3e4f-1"].error and "48x40" in items["d3e4f_d3e4f-1"].error
    assert "cannot be decoded" in items["g5h6i_g5h6i-2"].error
    (root / "masks" / "d3e4f_d3e4f_mask.json").unlink()
    failed = gier.load(data_dir=str(root), resize="none")[2]
    assert isinstance(failed, FailedSample) and "mask missing" in failed.error


def test_mask_ids_out_of_range_and_schema(data, tmp_path):
    path = data["root"] / "splits" / "test_sess_3.json"
    pairs = json.loads(path.read_text())
    pairs[1]["operator"]["inpaint_obj"]["ids"] = [7]
    path.write_text(json.dumps(pairs))
    item = gier.load(data_dir=str(data["root"]), resize="none")[2]
    assert "mask id 7 is not an index into the 3 masks" in item.error
    pairs[0]["operator"] = ["brightness"]
    path.write_text(json.dumps(pairs))
    with pytest.raises(ValueError, match="record 0, operator: expected a mapping, found a list"):
        gier.load(data_dir=str(data["root"]))
    with pytest.raises(FileNotFoundError, match="splits/val_sess_3.json"):
        gier.load(data_dir=str(data["root"]), split="valid")
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        gier.load()


def test_oracle_end_to_end(data, tmp_path):
    res = fx.oracle_run("gier", "gier", data["root"], tmp_path, "--limit", "3")
    assert res["failures"] == [] and res["protocol"]["n_samples"] == 3
    assert res["metrics"]["l1"]["mean"] == 0.0
    assert res["metrics"]["l1_in_mask"]["mean"] == 0.0  # the one masked pair
