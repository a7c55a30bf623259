import json

import pytest

import _dataset_fixtures as fx
from benchmark.api import EditSample, FailedSample
from benchmark.datasets import ipr2pr


def test_folder_layout_and_positional_split(tmp_path):
    data = fx.write_ipr2pr_folder(tmp_path / "ip", n_prompts=20, seeds_per_prompt=2)
    sizes = {s: len(ipr2pr.load(data_dir=str(data["root"]), split=s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 36, "val": 2, "test": 2}  # floor(0.9*20)=18 prompts, then 1 and 1
    test = ipr2pr.load(data_dir=str(data["root"]), split="test")
    name, seeds = data["seeds"][-1]
    assert [it.id for it in test] == [f"{name}-{s}" for s in seeds]
    it = test[0]
    assert isinstance(it, EditSample) and it.instruction == "make it look like painting 19"
    assert (it.input_caption, it.goal_caption) == ("a photo 19", "a painting 19")
    assert len(ipr2pr.load(data_dir=str(data["root"]), limit=3)) == 3


def test_folder_bad_items(tmp_path):
    data = fx.write_ipr2pr_folder(tmp_path / "ip", n_prompts=3, seeds_per_prompt=2)
    root = data["root"]
    name0, seeds0 = data["seeds"][0]
    fx.truncate(root / name0 / f"{seeds0[1]}_1.jpg")
    name1 = data["seeds"][1][0]
    (root / name1 / "prompt.json").unlink()
    seeds = json.loads((root / "seeds.json").read_text())
    seeds[2][0] = "../escape"
    (root / "seeds.json").write_text(json.dumps(seeds))
    items = ipr2pr.load(data_dir=str(root))  # train: the first floor(0.9 * 3) = 2 prompts
    assert len(items) == 4
    assert isinstance(items[0], EditSample)
    assert "cannot be decoded" in items[1].error
    assert all("prompt.json not found" in it.error for it in items[2:4])
    escaped = ipr2pr.load(data_dir=str(root), split="test")
    assert len(escaped) == 2
    assert all(isinstance(it, FailedSample) and "escapes" in it.error for it in escaped)
    (root / "seeds.json").write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="seeds.json"):
        ipr2pr.load(data_dir=str(root))


def test_hub_parquet_layout(tmp_path, monkeypatch):
    data = fx.write_ipr2pr_parquet(tmp_path / "hub", n=4)
    items = ipr2pr.load(data_dir=str(data["root"]))
    assert [it.id for it in items] == [f"row{i:07d}" for i in range(4)]
    assert items[2].instruction == "turn it into painting 2" and items[2].goal_caption == "a painting 2"
    with pytest.raises(ValueError, match="only a train split"):
        ipr2pr.load(data_dir=str(data["root"]), split="test")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="instructpix2pix-clip-filtered"):
        ipr2pr.load()


def _same(a, b):
    import numpy as np

    assert a.id == b.id and a.instruction == b.instruction and a.meta == b.meta
    assert np.array_equal(np.asarray(a.source), np.asarray(b.source))
    assert np.array_equal(np.asarray(a.target), np.asarray(b.target))


def test_training_pairs_read_each_pair_when_asked_and_equal_load(tmp_path):
    data = fx.write_ipr2pr_folder(tmp_path / "ip", n_prompts=4, seeds_per_prompt=2)
    root = data["root"]
    name0, seeds0 = data["seeds"][0]
    fx.truncate(root / name0 / f"{seeds0[1]}_1.jpg")
    loaded = ipr2pr.load(data_dir=str(root))
    pairs = ipr2pr.pairs(str(root))
    assert len(pairs) == len(loaded) == 6
    for i in (0, 2, 5):
        _same(pairs.pair(i), loaded[i])
    bad = pairs.pair(1)
    assert isinstance(bad, FailedSample) and "cannot be decoded" in bad.error
    # instructions and prompt folders come from prompt.json alone
    assert pairs.instruction(5) == loaded[5].instruction and pairs.prompt_name(5) == loaded[5].meta["prompt"]
    hub = fx.write_ipr2pr_parquet(tmp_path / "hub", n=4)
    rows = ipr2pr.pairs(str(hub["root"]))
    _same(rows.pair(3), ipr2pr.load(data_dir=str(hub["root"]))[3])
    assert rows.instruction(2) == "turn it into painting 2" and rows.prompt_name(2) is None
    with pytest.raises(ValueError, match="--data-dir"):
        ipr2pr.pairs(None)

