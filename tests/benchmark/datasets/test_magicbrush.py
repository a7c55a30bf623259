import json
import shutil

import numpy as np
import pytest

import _dataset_fixtures as fx
from benchmark.api import EditSample, FailedSample
from benchmark.cli import main
from benchmark.datasets import magicbrush
from benchmark.registry import DATASETS


@pytest.fixture
def registered():
    """The DATASETS entry the lead adds to registry.py; added here only while it is missing."""
    added = "magicbrush" not in DATASETS
    if added:
        DATASETS.register("magicbrush", "benchmark.datasets.magicbrush:load")
    yield
    if added:
        DATASETS.unregister("magicbrush")


@pytest.fixture
def mb(tmp_path):
    return fx.write_magicbrush_test(tmp_path / "mb")


def _arr(im):
    return np.asarray(im)


def test_test_split_layout_sessions_and_turns(mb):
    items = magicbrush.load(data_dir=str(mb["root"]))
    assert [it.id for it in items] == ["1001-t1", "1001-t2", "1002-t1", "1003-t1", "1003-t2", "1003-t3"]
    assert all(isinstance(it, EditSample) for it in items)
    by_id = {it.id: it for it in items}
    t1, t2 = by_id["1003-t1"], by_id["1003-t2"]
    assert (t2.session_id, t2.turn) == ("1003", 2)
    # all-turn: a later turn starts from the ground-truth output of the turn before
    assert np.array_equal(_arr(t2.source), _arr(t1.target))
    assert np.array_equal(_arr(t1.target), _arr(mb["targets"]["1003-t1"]))
    assert t1.mask.mode == "L" and set(np.unique(_arr(t1.mask))) == {0, 255}
    assert t2.instruction == "paint box 2 of 1003" and t2.category == "magicbrush"
    # local captions by default: input caption of the file edited, goal caption of its output
    assert t1.input_caption is None and t1.goal_caption == "local 1003 turn 1"
    assert t2.input_caption == "local 1003 turn 1" and t2.goal_caption == "local 1003 turn 2"


def test_caption_choice_and_data_dir_forms(mb):
    glob = magicbrush.load(data_dir=str(mb["test"]), captions="global", limit=1)
    assert [it.id for it in glob] == ["1001-t1", "1001-t2"]  # limit counts sessions
    assert glob[0].input_caption == "global input 1001" and glob[0].goal_caption == "global 1001 turn 1"
    none = magicbrush.load(data_dir=str(mb["root"]), captions="none", limit=2)
    assert len(none) == 3 and all(it.goal_caption is None for it in none)
    (mb["test"] / "local_descriptions.json").unlink()
    with pytest.raises(FileNotFoundError, match="captions: none"):
        magicbrush.load(data_dir=str(mb["root"]))


@pytest.mark.parametrize("task,scored", [("magicbrush", 6), ("magicbrush-final-turn", 3)])
def test_oracle_scores_zero_l1_end_to_end(mb, tmp_path, registered, task, scored):
    out = tmp_path / f"{task}.json"
    rc = main(["run", "--model", "oracle", "--task", task, "--data-dir", str(mb["root"]),
               "--no-progress", "--cache-dir", str(tmp_path / "cache"), "--output", str(out),
               "--seeds", "0"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["failures"] == []
    assert res["protocol"]["n_samples"] == scored and res["protocol"]["n_edited"] == 6
    assert res["metrics"]["l1"]["mean"] == 0.0
    assert res["metrics"]["l1_out_mask"]["mean"] == 0.0


def test_run_without_data_dir_says_how_to_get_it(registered, tmp_path, capsys):
    rc = main(["run", "--model", "oracle", "--task", "magicbrush", "--no-progress",
               "--cache-dir", str(tmp_path / "c"), "--seeds", "0"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--data-dir" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_files_fail_per_sample_and_never_shorten_the_split(mb):
    img = mb["test"] / "images"
    fx.truncate(img / "1001" / "1001-output1.png")
    small = fx.picture(5, 16).convert("L")
    small.save(img / "1002" / "1002-mask1.png")
    sessions = json.loads((mb["test"] / "edit_sessions.json").read_text())
    sessions["1003"][2]["mask"] = "../../../../outside.png"
    (mb["test"] / "edit_sessions.json").write_text(json.dumps(sessions))
    items = magicbrush.load(data_dir=str(mb["root"]))
    assert len(items) == mb["n_turns"]
    bad = {it.id: it.error for it in items if isinstance(it, FailedSample)}
    assert set(bad) == {"1001-t1", "1001-t2", "1002-t1", "1003-t3"}
    assert "cannot be decoded" in bad["1001-t1"]
    assert "source image" in bad["1001-t2"] and "1001-output1.png cannot be decoded" in bad["1001-t2"]
    assert "mask size 16x16 does not match source size 32x32" in bad["1002-t1"]
    assert "escapes the data folder" in bad["1003-t3"]
    assert all("\n" not in e for e in bad.values())


def test_missing_image_and_turn_gap(mb):
    (mb["test"] / "images" / "1002" / "1002-input.png").unlink()
    sessions = json.loads((mb["test"] / "edit_sessions.json").read_text())
    turn3 = sessions["1003"].pop(1)  # drop turn 2: outputs 1 and 3 remain
    sessions["1003"][1]["input"] = turn3["input"]
    (mb["test"] / "edit_sessions.json").write_text(json.dumps(sessions))
    items = {it.id: it for it in magicbrush.load(data_dir=str(mb["root"]))}
    assert "source image missing" in items["1002-t1"].error
    gap = [it for it in items.values() if it.session_id == "1003"]
    assert len(gap) == 2 and all(isinstance(it, FailedSample) for it in gap)
    assert all("turn 2 is missing" in it.error for it in gap)


def test_schema_problems_are_one_clear_error(mb, tmp_path):
    path = mb["test"] / "edit_sessions.json"
    sessions = json.loads(path.read_text())
    del sessions["1002"][0]["mask"]
    path.write_text(json.dumps(sessions))
    with pytest.raises(ValueError, match=r"missing key\(s\) mask; expected keys input, mask, output, "
                                         r"instruction, found input, output, instruction"):
        magicbrush.load(data_dir=str(mb["root"]))
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="expected a mapping, found a list"):
        magicbrush.load(data_dir=str(mb["root"]))
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        magicbrush.load(data_dir=str(mb["root"]))
    with pytest.raises(FileNotFoundError, match="no edit_sessions.json"):
        magicbrush.load(data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not found"):
        magicbrush.load(data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="not on the hub"):
        magicbrush.load()
    with pytest.raises(ValueError, match="unknown split"):
        magicbrush.load(data_dir=str(mb["root"]), split="validation")
    with pytest.raises(ValueError, match="unknown option"):
        magicbrush.load(data_dir=str(mb["root"]), colour="blue")


def test_train_parquet_hub_layout_and_sharding(tmp_path):
    root = tmp_path / "hub"
    fx.write_magicbrush_parquet(root, "train", {"2001": 2, "2002": 1, "2003": 3}, shards=2)
    fx.write_magicbrush_parquet(root, "dev", {"2101": 1})
    items = magicbrush.load(data_dir=str(root), split="train")
    assert [it.id for it in items] == ["2001-t1", "2001-t2", "2002-t1", "2003-t1", "2003-t2", "2003-t3"]
    assert all(isinstance(it, EditSample) for it in items)
    assert np.array_equal(_arr(items[1].source), _arr(items[0].target))
    assert items[0].mask.size == items[0].source.size
    assert [it.id for it in magicbrush.load(data_dir=str(root), split="dev")] == ["2101-t1"]
    assert len(magicbrush.load(data_dir=str(root), split="train", limit=2)) == 3


def test_train_parquet_bad_sessions_and_schema(tmp_path, monkeypatch):
    root = tmp_path / "hub"
    fx.write_magicbrush_parquet(root, "train", {"2001": 2, "2002": 3, "2003": 2},
                                turn_numbers={"2002": [1, 3], "2003": [1, 1]})
    items = {it.id: it for it in magicbrush.load(data_dir=str(root), split="train")}
    assert len(items) == 6
    assert isinstance(items["2001-t2"], EditSample)
    assert "session 2002 has turns 1, 3: turn 2 is missing" in items["2002-t3"].error
    assert "turn 1 appears 2 times" in items["2003-t1"].error
    cols = fx.magicbrush_rows({"2001": 1})
    del cols["mask_img"]
    bad = tmp_path / "bad"
    fx.write_parquet(bad / "data" / "train-00000-of-00001.parquet", cols, ("source_img", "target_img"))
    with pytest.raises(ValueError, match="missing column\\(s\\) mask_img; expected columns img_id, "
                                         "turn_index, source_img, mask_img, instruction, target_img"):
        magicbrush.load(data_dir=str(bad), split="train")
    with pytest.raises(FileNotFoundError, match="no parquet file"):
        magicbrush.load(data_dir=str(tmp_path), split="dev")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="hub is switched off.*--data-dir"):
        magicbrush.load(split="train")


def test_parquet_truncated_image_fails_one_row(tmp_path):
    cols = fx.magicbrush_rows({"2001": 2})
    good = fx.png_bytes(cols["target_img"][1])
    cols["target_img"][1] = {"bytes": good[: len(good) // 2], "path": None}
    cols["source_img"] = [{"bytes": fx.png_bytes(im), "path": None} for im in cols["source_img"]]
    root = tmp_path / "hub"
    fx.write_parquet(root / "data" / "train-00000-of-00001.parquet", cols,
                     ("source_img", "mask_img", "target_img"), {"turn_index": "int32"})
    items = magicbrush.load(data_dir=str(root), split="train")
    assert isinstance(items[0], EditSample)
    assert isinstance(items[1], FailedSample) and "cannot be decoded" in items[1].error
    shutil.rmtree(root)


def test_a_turn_whose_input_is_another_file_reads_that_file(mb):
    sessions = json.loads((mb["test"] / "edit_sessions.json").read_text())
    sessions["1001"][1]["input"] = "1001-input.png"
    (mb["test"] / "edit_sessions.json").write_text(json.dumps(sessions))
    items = magicbrush.load(data_dir=str(mb["root"]), limit=1)
    assert np.array_equal(_arr(items[1].source), _arr(items[0].source))


def test_hub_path_reads_a_datasets_dataset(monkeypatch):
    import datasets

    cols = fx.magicbrush_rows({"2001": 2, "2002": 1})
    feats = datasets.Features({"img_id": datasets.Value("string"),
                               "turn_index": datasets.Value("int32"),
                               "source_img": datasets.Image(), "mask_img": datasets.Image(),
                               "instruction": datasets.Value("string"),
                               "target_img": datasets.Image()})
    ds = datasets.Dataset.from_dict(cols, features=feats)
    asked = []
    monkeypatch.setattr(magicbrush, "load_hub", lambda name, split, hint: asked.append((name, split)) or ds)
    items = magicbrush.load(split="dev")
    assert asked == [("osunlp/MagicBrush", "dev")]
    assert [it.id for it in items] == ["2001-t1", "2001-t2", "2002-t1"]
    assert all(isinstance(it, EditSample) for it in items)
    assert np.array_equal(_arr(items[1].target), _arr(cols["target_img"][1]))
