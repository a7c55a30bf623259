import argparse
import dataclasses
import json

import pytest

import _dataset_fixtures as fx
from benchmark.datasets import verify as V
from benchmark.registry import UnknownNameError


@pytest.fixture
def mb(tmp_path):
    return fx.write_magicbrush_test(tmp_path / "mb")


@pytest.fixture
def small_published(monkeypatch):
    pub = V.PUBLISHED["magicbrush"]
    monkeypatch.setitem(V.PUBLISHED, "magicbrush", dataclasses.replace(
        pub, counts={**pub.counts, "test": 6}, sessions={"test": 3}))


def _cli(argv):
    parser = argparse.ArgumentParser(prog="editbench")
    sub = parser.add_subparsers(dest="command", required=True)
    V.add_cli(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_complete_download_passes(mb, small_published, capsys, tmp_path):
    report = V.verify("magicbrush", str(mb["root"]))
    test = report.splits[2]
    assert (test.split, test.found, test.expected, test.sessions) == ("test", 6, 6, 3)
    assert test.count_ok and report.ok and report.exit_code == 0
    # train/dev are parquet on the hub, absent here: reported, not a failure
    assert report.splits[0].absent and report.splits[0].ok
    out = tmp_path / "report.json"
    assert _cli(["datasets", "verify", "magicbrush", "--data-dir", str(mb["root"]),
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "test: 6 items (published 6: ok), 3 sessions (published 3)" in text
    assert "train: not found" in text and text.strip().endswith("OK")
    assert json.loads(out.read_text())["ok"] is True


def test_missing_and_unreadable_files_are_named_and_counted(mb, small_published, capsys):
    images = mb["test"] / "images"
    for img_id, n in (("1001", 2), ("1003", 3)):
        for t in range(1, n + 1):
            (images / img_id / f"{img_id}-mask{t}.png").unlink()
    fx.truncate(images / "1002" / "1002-output1.png")
    report = V.verify("magicbrush", str(mb["root"]), splits=["test"])
    test = report.splits[0]
    assert test.found == 6 and test.n_missing == 5 and len(test.missing) == V.FIRST_FEW
    assert test.missing[0].endswith("1001-mask1.png")
    assert test.n_unreadable == 1 and "1002-t1" in test.unreadable[0]
    assert report.exit_code == 1
    assert _cli(["datasets", "verify", "magicbrush", "--data-dir", str(mb["root"]),
                 "--split", "test"]) == 1
    text = capsys.readouterr().out
    assert "missing files: 5" in text and "unreadable images: 1" in text and "NOT OK" in text


def test_count_mismatch_absent_split_and_schema_error(mb, tmp_path):
    report = V.verify("magicbrush", str(mb["root"]), splits=["test"])
    assert report.splits[0].count_ok is False and report.exit_code == 1  # 6 of 1,053 turns
    asked = V.verify("magicbrush", str(mb["root"]), splits=["dev"])
    assert asked.splits[0].absent and not asked.ok
    nothing = V.verify("evr", str(tmp_path))
    assert all(s.absent for s in nothing.splits) and nothing.exit_code == 1
    (mb["test"] / "edit_sessions.json").write_text("[]")
    broken = V.verify("magicbrush", str(mb["root"]), splits=["test"])
    assert "expected a mapping" in broken.splits[0].error and broken.exit_code == 1


def test_other_formats_and_unknown_names(tmp_path):
    data = fx.write_gier(tmp_path / "gier")
    report = V.verify("gier", str(data["root"]))
    assert report.splits[2].found == 5 and report.splits[2].expected is None
    assert report.total is None and report.ok  # one split of three: the 29.9K total is not checked
    assert "published about 29900" in report.format()
    he = fx.write_humanedit(tmp_path / "he", n=4)
    rep = V.verify("humanedit", str(he["root"]), options={"test_size": "2"})
    assert [s.found for s in rep.splits] == [2, 2] and rep.exit_code == 1  # 2 != 500 published
    with pytest.raises(UnknownNameError, match="did you mean 'magicbrush'"):
        V.verify("magicbrsh", str(tmp_path))
