import json

import pytest

import _dataset_fixtures as fx
from benchmark.api import EditSample, FailedSample
from benchmark.datasets import ma5k


@pytest.fixture
def data(tmp_path):
    return fx.write_ma5k(tmp_path / "ma5k")


def test_annotation_splits(data):
    items = ma5k.load(data_dir=str(data["root"]), resize="none")
    assert [it.id for it in items] == ["00000-0005_A", "00001-0006_B", "00002-0007_C"]
    assert all(isinstance(it, EditSample) and it.category == "ma5k" for it in items)
    assert items[0].instruction == "make image 0005 brighter" and items[0].mask is None
    assert len(ma5k.load(data_dir=str(data["root"]), split="train", resize="none")) == 4
    assert len(ma5k.load(data_dir=str(data["root"]), split="valid", resize="none")) == 1
    assert len(ma5k.load(data_dir=str(data["root"]), split="train", resize="none", limit=2)) == 2


def test_default_size_is_short_side_600(data):
    item = ma5k.load(data_dir=str(data["root"]), limit=1)[0]
    assert item.source.size == item.target.size == (720, 600)


def test_split_rebuilt_from_fivek_json_like_t2onet():
    records = [{"input": f"{i:04d}_O.jpg", "output": f"{i:04d}_{e}.jpg", "request": "r"}
               for i in range(10) for e in "AB"]
    splits = ma5k.derive_splits(records)
    # np.random.seed(0); np.random.shuffle(np.unique(inputs)) -> 2 8 4 9 1 6 7 | 3 | 0 5
    assert [r["input"][:4] for r in splits["val"]] == ["0003", "0003"]
    assert sorted({r["input"][:4] for r in splits["test"]}) == ["0000", "0005"]
    assert sorted({r["input"][:4] for r in splits["train"]}) == ["0001", "0002", "0004", "0006",
                                                                "0007", "0008", "0009"]
    assert [r["output"] for r in splits["test"]] == ["0000_A.jpg", "0000_B.jpg", "0005_A.jpg",
                                                     "0005_B.jpg"]  # FiveK.json order kept


def test_fivek_json_alone(tmp_path):
    data = fx.write_ma5k(tmp_path, with_annotations=False)
    counts = [len(ma5k.load(data_dir=str(data["root"]), split=s, resize="none"))
              for s in ("train", "val", "test")]
    assert counts == [5, 0, 3]  # 8 inputs: int(5.6), int(0.8), rest


def test_bad_items_and_schema(data, tmp_path):
    (data["root"] / "images" / "0006_O.jpg").unlink()
    fx.truncate(data["root"] / "images" / "0007_C.jpg")
    items = ma5k.load(data_dir=str(data["root"]), resize="none")
    assert isinstance(items[0], EditSample)
    assert isinstance(items[1], FailedSample) and "source image missing" in items[1].error
    assert "target image" in items[2].error and "cannot be decoded" in items[2].error
    path = data["root"] / "annotations" / "test_sess_1.json"
    recs = json.loads(path.read_text())
    del recs[0]["request"]
    path.write_text(json.dumps(recs))
    with pytest.raises(ValueError, match=r"record 0: missing key\(s\) request"):
        ma5k.load(data_dir=str(data["root"]))
    with pytest.raises(FileNotFoundError, match="neither annotations/test_sess_1.json nor FiveK.json"):
        ma5k.load(data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--data-dir"):
        ma5k.load()


def test_oracle_end_to_end(data, tmp_path):
    res = fx.oracle_run("ma5k", "ma5k", data["root"], tmp_path, "--limit", "2")
    assert res["failures"] == [] and res["protocol"]["n_samples"] == 2
    assert res["metrics"]["l1"]["mean"] == 0.0 and res["metrics"]["ssim"]["mean"] == pytest.approx(1.0)
