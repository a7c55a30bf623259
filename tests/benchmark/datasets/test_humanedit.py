import numpy as np
import pytest

import _dataset_fixtures as fx
from benchmark.api import EditSample
from benchmark.datasets import humanedit


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return fx.write_humanedit(tmp_path_factory.mktemp("he") / "humanedit", n=12)


def test_reproducible_split_independent_of_row_order(data, tmp_path):
    test = humanedit.load(data_dir=str(data["root"]), test_size=3)
    train = humanedit.load(data_dir=str(data["root"]), split="train", test_size=3)
    every = humanedit.load(data_dir=str(data["root"]), split="all")
    assert len(test) == 3 and len(train) == 9 and len(every) == 12
    assert not {it.id for it in test} & {it.id for it in train}
    # the same rows in reverse order and two shards give the same split
    cols = {k: v[::-1] for k, v in data["columns"].items()}
    for i, part in enumerate((slice(0, 5), slice(5, None))):
        fx.write_parquet(tmp_path / "data" / f"train-{i:05d}-of-00002.parquet",
                         {k: v[part] for k, v in cols.items()}, humanedit.IMAGES,
                         {"CORE": "int32", "MASK": "int32"})
    again = humanedit.load(data_dir=str(tmp_path), test_size=3)
    assert sorted(it.id for it in again) == sorted(it.id for it in test)
    assert [it.id for it in humanedit.load(data_dir=str(data["root"]), split="all", limit=2)] == \
        [it.id for it in every[:2]]


def test_fields_masks_and_captions(data):
    items = {it.id: it for it in humanedit.load(data_dir=str(data["root"]), split="all")}
    assert all(isinstance(it, EditSample) for it in items.values())
    image_id = data["columns"]["IMAGE_ID"][4]
    it = items[image_id]
    assert it.category == "Remove" and it.instruction == "humanedit instruction 4"
    assert (it.input_caption, it.goal_caption) == ("llama input 4", "llama output 4")
    assert it.meta["core"] == 0 and it.meta["output_description"] == "description 4"
    expected = np.asarray(data["masks"][image_id]) > 127
    assert np.array_equal(np.asarray(it.mask) == 255, expected)  # alpha brush strokes
    desc = humanedit.load(data_dir=str(data["root"]), split="all", captions="description", limit=5)
    assert desc[4].goal_caption == "description 4"


def test_mask_rules(tmp_path):
    black = fx.write_humanedit(tmp_path / "black", n=2, mask_style="black")
    items = humanedit.load(data_dir=str(black["root"]), split="all")
    for it in items:
        expected = np.asarray(black["masks"][it.meta["image_id"]]) > 127
        assert np.array_equal(np.asarray(it.mask) == 255, expected)  # mask_convert.py: black = edit
    inverted = humanedit.load(data_dir=str(black["root"]), split="all", mask_rule="white")
    assert np.array_equal(np.asarray(inverted[0].mask), 255 - np.asarray(items[0].mask))


def test_duplicate_ids_schema_and_hub(tmp_path, monkeypatch):
    cols = {k: v[:3] for k, v in fx.write_humanedit(tmp_path / "x", n=3)["columns"].items()}
    cols["IMAGE_ID"] = ["same", "same", "other"]
    fx.write_parquet(tmp_path / "dup" / "data" / "train-00000-of-00001.parquet", cols,
                     humanedit.IMAGES, {"CORE": "int32", "MASK": "int32"})
    ids = sorted(it.id for it in humanedit.load(data_dir=str(tmp_path / "dup"), split="all"))
    assert ids == ["other", "same", "same-2"]
    del cols["MASK_IMG"]
    fx.write_parquet(tmp_path / "bad" / "data" / "train-00000-of-00001.parquet", cols,
                     ("INPUT_IMG", "OUTPUT_IMG"), {"CORE": "int32", "MASK": "int32"})
    with pytest.raises(ValueError, match=r"missing column\(s\) MASK_IMG; expected columns IMAGE_ID"):
        humanedit.load(data_dir=str(tmp_path / "bad"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="BryanW/HumanEdit"):
        humanedit.load()


def test_oracle_end_to_end(data, tmp_path):
    res = fx.oracle_run("humanedit", "humanedit", data["root"], tmp_path, "--limit", "3")
    assert res["failures"] == [] and res["protocol"]["n_samples"] == 3
    assert res["metrics"]["l1"]["mean"] == 0.0 and res["metrics"]["l1_in_mask"]["mean"] == 0.0
    assert set(res["by_category"]) <= set(fx.HUMANEDIT_TYPES)
