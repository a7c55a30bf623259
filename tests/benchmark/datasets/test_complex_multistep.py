import pytest

import _dataset_fixtures as fx
from benchmark.api import EditSample, FailedSample
from benchmark.datasets import complex_multistep as cm


def test_columns_identified_by_name(tmp_path):
    data = fx.write_complex_multistep(tmp_path / "cm", n=4)
    items = cm.load(data_dir=str(data["root"]))
    assert [it.id for it in items] == ["row0000", "row0001", "row0002", "row0003"]
    assert all(isinstance(it, EditSample) and it.mask is None for it in items)
    assert items[1].instruction == "first brighten it, then add box 1"
    assert items[0].meta["columns"] == {"source": "source_image", "target": "edited_image",
                                        "instruction": "instruction"}
    assert len(cm.load(data_dir=str(data["root"]), limit=2)) == 2


def test_other_names_lists_and_ids(tmp_path):
    import numpy as np

    cols = {"ID": ["a", "b"], "Input_Image": [fx.picture(1), fx.picture(2)],
            "steps": [["add a hat", "make it red"], ["crop it"]],
            "step_images": [[fx.picture(3), fx.picture(4)], [fx.picture(5)]]}
    import datasets

    feats = datasets.Features({"ID": datasets.Value("string"), "Input_Image": datasets.Image(),
                               "steps": datasets.Sequence(datasets.Value("string")),
                               "step_images": datasets.Sequence(datasets.Image())})
    (tmp_path / "x").mkdir()
    datasets.Dataset.from_dict(cols, features=feats).to_parquet(str(tmp_path / "x" / "reasoning.parquet"))
    with pytest.raises(ValueError, match=r"cannot identify the target column\(s\); columns found: "
                                         r"ID \(string\), Input_Image \(struct"):
        cm.load(data_dir=str(tmp_path / "x"))
    items = cm.load(data_dir=str(tmp_path / "x"), columns={"target": "step_images"})
    assert [it.id for it in items] == ["a", "b"]
    assert items[0].instruction == "add a hat make it red"
    assert np.array_equal(np.asarray(items[0].target), np.asarray(fx.picture(4)))  # the last step
    assert items[0].meta["target_images"] == 2
    with pytest.raises(ValueError, match="column 'nope' \\(given for source\\) not found"):
        cm.load(data_dir=str(tmp_path / "x"), columns={"source": "nope"})


def test_bad_rows_and_missing_file(tmp_path):
    data = fx.write_complex_multistep(tmp_path / "cm", n=2)
    cols = dict(data["columns"])
    good = fx.png_bytes(cols["edited_image"][1])
    cols["edited_image"] = [cols["edited_image"][0], {"bytes": good[:40], "path": None}]
    fx.write_parquet(tmp_path / "bad" / "reasoning.parquet", cols, ("source_image", "edited_image"))
    items = cm.load(data_dir=str(tmp_path / "bad"))
    assert isinstance(items[0], EditSample)
    assert isinstance(items[1], FailedSample) and "cannot be decoded" in items[1].error
    (tmp_path / "nothing-here").mkdir()
    with pytest.raises(FileNotFoundError, match="reasoning.parquet"):
        cm.load(data_dir=str(tmp_path / "nothing-here"))
    with pytest.raises(ValueError, match="split test"):
        cm.load(data_dir=str(tmp_path / "bad"), split="train")


def test_oracle_end_to_end(tmp_path):
    data = fx.write_complex_multistep(tmp_path / "cm", n=3)
    res = fx.oracle_run("complex-multistep", "complex-multistep", data["root"], tmp_path)
    assert res["failures"] == [] and res["protocol"]["n_samples"] == 3
    assert res["metrics"]["l1"]["mean"] == 0.0
