import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
from PIL import Image

from _helpers import needs_cuda
from benchmark.cli import main


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "t-cli.yaml"
    path.write_text(yaml.safe_dump({
        "name": "t-cli", "version": 1, "dataset": {"name": "_helpers:plain_dataset", "n": 5},
        "metrics": ["l1", "l2", "ssim"], "settings": {}, "seeds": [0, 1]}))
    return str(path)


def test_export_then_score_equals_run(tmp_path, task_file, capsys):
    out = tmp_path / "export"
    assert main(["export", "--task", task_file, str(out)]) == 0
    exported = sorted(p.name for p in out.iterdir())
    assert exported == [f"p{i:02d}" for i in range(5)]
    assert {p.name for p in (out / "p00").iterdir()} == {"source.png", "target.png", "sample.json"}
    meta = json.loads((out / "p00" / "sample.json").read_text())
    assert meta["instruction"] == "plain 0" and meta["task"] == "t-cli"

    # pre-made edits: the targets themselves for seed 0, the sources for seed 1
    edits = tmp_path / "edits"
    for seed, name in ((0, "target.png"), (1, "source.png")):
        (edits / str(seed)).mkdir(parents=True)
        for d in out.iterdir():
            (edits / str(seed) / f"{d.name}.png").write_bytes((d / name).read_bytes())
    res_path = tmp_path / "scored.json"
    assert main(["score", "--task", task_file, "--outputs", str(edits), "--output", str(res_path)]) == 0
    res = json.loads(res_path.read_text())
    assert res["metrics"]["l1"]["per_seed"][0] == 0.0
    assert res["metrics"]["l1"]["per_seed"][1] > 0.1
    assert res["protocol"]["seeds"] == [0, 1]
    assert res["failures"] == []

    # the same through `run` with the identity model gives the same seed-1 numbers
    run_path = tmp_path / "run.json"
    assert main(["run", "--model", "identity", "--task", task_file, "--output", str(run_path),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"]) == 0
    ran = json.loads(run_path.read_text())
    assert ran["metrics"]["l1"]["per_seed"][1] == pytest.approx(res["metrics"]["l1"]["per_seed"][1])
    printed = capsys.readouterr().out
    assert "mean ± std" in printed and "result JSON" in printed


def test_score_records_missing_and_bad_outputs(tmp_path, task_file):
    edits = tmp_path / "edits"
    edits.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(edits / "p00.png")
    Image.new("RGBA", (16, 16), (0, 0, 0, 0)).save(edits / "p01.png")
    (edits / "p02.png").write_bytes(b"garbage")
    res_path = tmp_path / "r.json"
    assert main(["score", "--task", task_file, "--outputs", str(edits), "--output", str(res_path),
                 "--seeds", "0"]) == 0
    res = json.loads(res_path.read_text())
    errors = {f["sample_id"]: f["error"] for f in res["failures"]}
    assert "transparency" in errors["p01"]
    assert "cannot be decoded" in errors["p02"]
    assert "missing" in errors["p03"] and "missing" in errors["p04"]
    assert res["metrics"]["l1"]["n_scored"] == [1]


def test_score_notes_every_output_it_resizes_to_the_target(tmp_path, task_file, capsys):
    out = tmp_path / "export"
    assert main(["export", "--task", task_file, str(out)]) == 0
    edits = tmp_path / "edits"
    edits.mkdir()
    size = Image.open(out / "p00" / "target.png").size
    for i in range(5):
        target = Image.open(out / f"p{i:02d}" / "target.png")
        (target.resize((size[0] * 2, size[1] * 3), Image.NEAREST) if i in (1, 3) else target).save(
            edits / f"p{i:02d}.png")
    res_path = tmp_path / "r.json"
    assert main(["score", "--task", task_file, "--outputs", str(edits), "--output", str(res_path),
                 "--seeds", "0"]) == 0
    res = json.loads(res_path.read_text())
    w, h = size
    note = f"{2 * w}x{3 * h}->{w}x{h}"
    assert res["outputs"]["notes"] == {"0": {"p01": {"resized_to_target": note},
                                             "p03": {"resized_to_target": note}}}
    assert res["outputs"]["note_counts"] == {f"resized_to_target={note}": 2}
    assert res["failures"] == [] and res["metrics"]["l1"]["n_scored"] == [5]
    assert "2 outputs resized to the target size" in capsys.readouterr().err


def test_user_errors_are_one_line_exit_2(capsys, tmp_path):
    assert main(["run", "--model", "oracel", "--task", "synth-evr"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'oracle'" in err and err.count("\n") == 1
    assert main(["score", "--task", "synth-evr", "--outputs", str(tmp_path / "nope")]) == 2
    assert main(["run", "--model", "oracle", "--task", "synth-evr", "--seeds", "a,b"]) == 2
    import torch

    if not torch.cuda.is_available():  # training would otherwise fall back to the CPU silently
        capsys.readouterr()
        assert main(["train", "--model", "instruct-pix2pix", "--device", "cuda",
                     "--output-dir", str(tmp_path / "t")]) == 2
        assert "no CUDA device" in capsys.readouterr().err
        assert not (tmp_path / "t").exists()


def test_list_and_module_entry_point(subprocess_env):
    out = subprocess.run([sys.executable, "-m", "benchmark", "list", "models"], env=subprocess_env,
                         capture_output=True, text=True, check=True).stdout
    assert "identity" in out and "oracle" in out
    out = subprocess.run([sys.executable, "-m", "benchmark", "list", "tasks"], env=subprocess_env,
                         capture_output=True, text=True, check=True).stdout
    assert "synth-magicbrush" in out and "group:" in out
    for sub in ("run", "score", "export", "list"):
        r = subprocess.run([sys.executable, "-m", "benchmark", sub, "--help"], env=subprocess_env,
                           capture_output=True, text=True)
        assert r.returncode == 0 and "usage" in r.stdout


def test_train_threads_are_set_before_training(tmp_path, monkeypatch):
    # a CPU run's bits depend on the thread count, so `--threads` is part of a shipped command
    import torch

    from benchmark.registry import MODELS

    seen = {}

    def fake_train(**kw):
        seen.update(kw, threads=torch.get_num_threads())
        return {"steps": 1, "final_loss": 0.0, "wall_seconds": 0.0}

    factory = MODELS.get("instruct-pix2pix")
    monkeypatch.setattr(factory, "train", staticmethod(fake_train))
    before = torch.get_num_threads()
    try:
        assert main(["train", "--model", "instruct-pix2pix", "--steps", "1", "--threads", "1",
                     "--output-dir", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(before)
    assert seen["threads"] == 1 and seen["steps"] == 1 and seen["output_dir"] == str(tmp_path)


@needs_cuda
def test_a_gpu_run_scores_what_the_cpu_run_scores(tmp_path):
    """Model and metrics on a GPU: the same noise (CPU generators) and the same backbones, so
    every metric agrees with the CPU run up to arithmetic rounding."""
    runs = {}
    for dev in ("cpu", "cuda"):
        out = tmp_path / f"{dev}.json"
        assert main(["run", "--model", "instruct-pix2pix", "--task", "synth-ma5k", "--limit", "8",
                     "--seeds", "0,1", "--device", dev, "--output", str(out),
                     "--cache-dir", str(tmp_path / f"cache-{dev}"), "--no-progress"]) == 0
        runs[dev] = json.loads(out.read_text())
    assert runs["cuda"]["failures"] == [] and set(runs["cuda"]["metrics"]) == set(runs["cpu"]["metrics"])
    for name, m in runs["cpu"]["metrics"].items():
        for a, b in zip(m["per_seed"], runs["cuda"]["metrics"][name]["per_seed"]):
            assert b == pytest.approx(a, rel=0.02, abs=2e-3), (name, a, b)


def test_compile_without_a_cpp_compiler_is_one_line_exit_2(capsys):
    from torch._inductor import config

    with config.patch({"cpp.cxx": ("/nonexistent/g++",)}):
        assert main(["run", "--model", "instruct-pix2pix", "--task", "synth-ma5k", "--limit", "1",
                     "--compile", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("editbench: error: --compile on the CPU needs a C++ compiler")
    assert "\n" not in err
