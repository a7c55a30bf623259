import json

import numpy as np
import pytest

import _dataset_fixtures as fx
from benchmark.api import EditSample, FailedSample
from benchmark.datasets import evr


@pytest.fixture
def data(tmp_path):
    return fx.write_evr(tmp_path / "evr", "test")


def test_one_triple_per_sentence(data):
    items = evr.load(data_dir=str(data["root"]), resize="none")
    assert [it.id for it in items] == [f"Reddit_test_{i}-s{k}" for i in range(3) for k in (1, 2, 3)]
    assert all(isinstance(it, EditSample) for it in items)
    assert items[1].instruction == "brighten picture 0 (1)" and items[1].category == "evr"
    assert items[0].source is items[2].source  # a pair is decoded once for its three sentences
    assert items[0].mask is None
    # native sizes: the cropped pair keeps its own target size (the runner fails such a sample)
    assert items[6].source.size == (40, 40) and items[6].target.size == (36, 36)
    assert evr.load(data_dir=str(data["root"]), resize="none", limit=4)[-1].id == "Reddit_test_1-s1"


def test_train_split_has_one_sentence_and_val_alias(tmp_path):
    fx.write_evr(tmp_path, "train", n_pairs=2)
    fx.write_evr(tmp_path, "valid", n_pairs=1)
    assert [it.id for it in evr.load(data_dir=str(tmp_path), split="train", resize="none")] == [
        "Reddit_train_0-s1", "Reddit_train_1-s1"]
    assert len(evr.load(data_dir=str(tmp_path), split="val", resize="none")) == 3


def test_square_resize_is_mgie_crop_resize(data):
    items = evr.load(data_dir=str(data["root"]), resize="square:24")
    assert all(it.source.size == it.target.size == (24, 24) for it in items)
    src = fx.picture(3001, (40, 32))  # pair 1 is 40 x 32: centre crop 4 px each side, then 24 x 24
    from PIL import Image
    expected = src.crop((4, 0, 36, 32)).resize((24, 24), Image.BICUBIC)
    got = evr.load(data_dir=str(data["root"]), resize="square:24", limit=4)[3].source
    assert np.abs(np.asarray(got, float) - np.asarray(expected, float)).mean() < 3  # JPEG round trip


def test_annotation_and_image_places(tmp_path):
    data = fx.write_evr(tmp_path / "a", "test", n_pairs=1)
    root = data["root"]
    (root / "dataset" / "adobe" / "test.json").rename(root / "test.json")
    (root / "images").rename(root / "pairs")
    assert all(isinstance(it, FailedSample) and "missing" in it.error
               for it in evr.load(data_dir=str(root), resize="none"))
    assert all(isinstance(it, EditSample)
               for it in evr.load(data_dir=str(root), resize="none", image_dir="pairs"))


def test_bad_pairs_fail_alone(data):
    root = data["root"]
    records = json.loads((root / "dataset" / "adobe" / "test.json").read_text())
    fx.truncate(root / "images" / records[0]["img1"])
    records[1]["img0"] = "../../secret.jpg"
    records[2]["img1"] = "/abs/on/adobe/server.png"
    (root / "dataset" / "adobe" / "test.json").write_text(json.dumps(records))
    items = evr.load(data_dir=str(root), resize="none")
    assert len(items) == 9 and all(isinstance(it, FailedSample) for it in items)
    assert "cannot be decoded" in items[0].error
    assert "escapes the data folder" in items[3].error
    assert "absolute path" in items[6].error


def test_schema_errors(data, tmp_path):
    path = data["root"] / "dataset" / "adobe" / "test.json"
    records = json.loads(path.read_text())
    del records[1]["sents"]
    path.write_text(json.dumps(records))
    with pytest.raises(ValueError, match=r"record 1: missing key\(s\) sents; expected keys img0, img1, "
                                         r"sents, uid, found img0, img1, uid"):
        evr.load(data_dir=str(data["root"]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="looked for test.json, dataset/adobe/test.json"):
        evr.load(data_dir=str(tmp_path / "empty"), split="test")
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        evr.load()
    with pytest.raises(ValueError, match="resize"):
        evr.load(data_dir=str(data["root"]), resize="big")


def test_oracle_end_to_end(data, tmp_path):
    res = fx.oracle_run("evr", "evr", data["root"], tmp_path, "--limit", "2")
    assert res["failures"] == [] and res["protocol"]["n_samples"] == 2
    assert res["metrics"]["l1"]["mean"] == 0.0
