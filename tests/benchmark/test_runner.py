import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from _helpers import FlakyEditor, NoiseEditor
from benchmark.results import validate_result
from benchmark.runner import run_task
from benchmark.store import OutputStore
from benchmark.tasks import get_task


def _task(tmp_path, dataset="_helpers:tiny_dataset", seeds=(0, 1, 2), name="t-test"):
    spec = {"name": name, "version": 1, "dataset": {"name": dataset},
            "metrics": ["l1", "l2", "psnr", "ssim"], "settings": {"steps": 1},
            "seeds": list(seeds)}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return get_task(str(path))


def _outputs(store, seeds, ids):
    return {(s, i): np.asarray(store.get(s, i).image) for s in seeds for i in ids
            if store.get(s, i) is not None}


def test_bad_input_is_recorded_per_sample_and_the_rest_finishes(tmp_path, cache_dir):
    task = _task(tmp_path)
    res = run_task(FlakyEditor(), task, cache_dir=cache_dir, batch_size=4, progress=False)
    validate_result(res)
    reasons = {(f["sample_id"], f["seed"]): f["error"] for f in res["failures"]}
    for seed in (0, 1, 2):
        assert "cannot be decoded" in reasons[("corrupt", seed)]
        assert reasons[("empty", seed)] == "empty instruction"
        assert "does not match source size" in reasons[("mismatch", seed)]
        assert reasons[("explodes", seed)] == "RuntimeError: boom on purpose"
        assert "NaN" in reasons[("nans", seed)]
        assert "shape" in reasons[("badshape", seed)]
    assert all("\n" not in r for r in reasons.values())
    # the eight good samples were all scored under every seed
    assert res["metrics"]["l1"]["n_scored"] == [8, 8, 8]
    assert len(res["failures"]) == 6 * 3
    assert set(res["by_category"]) == {"even", "odd"}


def test_same_seed_same_bits_and_batch_size_invariance(tmp_path):
    task = _task(tmp_path, dataset="_helpers:plain_dataset", seeds=(0, 3))
    model = NoiseEditor()
    ids = [f"p{i:02d}" for i in range(12)]
    got = []
    for run, bs in enumerate((1, 8, 8)):
        cache = tmp_path / f"cache{run}"
        run_task(model, task, cache_dir=str(cache), batch_size=bs, progress=False)
        store = OutputStore(cache, task.name, task.store_hash, model.name, model.preset,
                            model.config_hash, model.weights_sha256)
        got.append(_outputs(store, (0, 3), ids))
    assert len(got[0]) == 24
    for key in got[0]:
        assert np.array_equal(got[0][key], got[1][key]), key  # batch 1 vs 8
        assert np.array_equal(got[1][key], got[2][key]), key  # rerun, same seed
    # different seeds really differ (the noise is seeded, not constant)
    assert not np.array_equal(got[0][(0, "p00")], got[0][(3, "p00")])


def test_rerun_reuses_everything_and_gives_the_same_result(tmp_path, cache_dir):
    task = _task(tmp_path, dataset="_helpers:plain_dataset")
    first = run_task(NoiseEditor(), task, cache_dir=cache_dir, progress=False)
    second = run_task(NoiseEditor(), task, cache_dir=cache_dir, progress=False)
    assert first["cache"] == {"reused": 0, "computed": 36}
    assert second["cache"] == {"reused": 36, "computed": 0}
    assert first["metrics"] == second["metrics"]
    assert first["timing"]["seconds_per_edit"] == second["timing"]["seconds_per_edit"]


def test_tampered_store_entry_is_recomputed(tmp_path, cache_dir):
    task = _task(tmp_path, dataset="_helpers:plain_dataset", seeds=(0,))
    model = NoiseEditor()
    run_task(model, task, cache_dir=cache_dir, progress=False)
    store = OutputStore(cache_dir, task.name, task.store_hash, model.name, model.preset,
                        model.config_hash, model.weights_sha256)
    png = store._paths(0, "p03")[0]
    png.write_bytes(png.read_bytes()[:-10])  # truncated file
    again = run_task(model, task, cache_dir=cache_dir, progress=False)
    assert again["cache"] == {"reused": 11, "computed": 1}


def _result_without_volatile(path):
    res = json.loads(Path(path).read_text())
    for key in ("timing", "env", "cache"):
        res.pop(key)
    return res


def test_kill_9_then_rerun_computes_only_what_is_missing(tmp_path, subprocess_env):
    task_file = tmp_path / "t-kill.yaml"
    task_file.write_text(yaml.safe_dump({
        "name": "t-kill", "version": 1, "dataset": {"name": "_helpers:plain_dataset", "n": 12},
        "metrics": ["l1", "ssim"], "settings": {}, "seeds": [0, 1]}))
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "benchmark", "run", "--model", "_helpers:NoiseEditor",
           "--task", str(task_file), "--cache-dir", str(cache), "--batch-size", "2",
           "--no-progress"]
    env = dict(subprocess_env, EDITBENCH_TEST_SLEEP="0.15")
    proc = subprocess.Popen(cmd + ["--output", str(tmp_path / "killed.json")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store_dir = cache / "outputs"
    deadline = time.time() + 60
    while time.time() < deadline:
        done = list(store_dir.rglob("*.json")) if store_dir.exists() else []
        if len(done) >= 6:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed.json").exists()
    finished = len(list(store_dir.rglob("*.json")))
    assert 6 <= finished < 24, finished
    # no temp files promoted, nothing half-written counts
    out = tmp_path / "resumed.json"
    subprocess.run(cmd + ["--output", str(out)], env=dict(subprocess_env), check=True,
                   capture_output=True)
    resumed = json.loads(out.read_text())
    assert resumed["cache"]["computed"] == 24 - finished
    assert resumed["cache"]["reused"] == finished
    fresh = tmp_path / "fresh.json"
    subprocess.run(cmd + ["--output", str(fresh), "--cache-dir", str(tmp_path / "cache2")],
                   env=dict(subprocess_env), check=True, capture_output=True)
    assert _result_without_volatile(out) == _result_without_volatile(fresh)


def test_final_turn_feeds_the_models_own_output(tmp_path, cache_dir):
    from benchmark.api import EditSample
    from benchmark.registry import DATASETS
    from _helpers import _img

    def sessions(limit=None):
        items = []
        for s in range(3):
            for t in (1, 2, 3):
                items.append(EditSample(id=f"s{s}-t{t}", source=_img(10 * s + t), target=_img(99),
                                        instruction=f"turn {t}", session_id=f"s{s}", turn=t))
        return items

    DATASETS.register("test-sessions", sessions, overwrite=True)
    try:
        spec = {"name": "t-final", "version": 1, "dataset": {"name": "test-sessions"},
                "turn_protocol": "final-turn", "metrics": ["l1"], "settings": {}, "seeds": [0]}
        path = tmp_path / "t-final.yaml"
        path.write_text(yaml.safe_dump(spec))
        task = get_task(str(path))
        model = NoiseEditor()
        res = run_task(model, task, cache_dir=cache_dir, progress=False)
        assert res["protocol"]["n_samples"] == 3  # one scored turn per session
        assert res["cache"]["computed"] == 9
        assert set(res["by_category"]) >= {"turn-3"}
        store = OutputStore(cache_dir, task.name, task.store_hash, model.name, model.preset,
                            model.config_hash, model.weights_sha256)
        # turn 2 was edited from turn 1's output: its mean noise distance from turn 1 output is
        # that of one noise draw, far smaller than from the dataset's own turn-2 source
        t1 = np.asarray(store.get(0, "s0-t1").image, dtype=float)
        t2 = np.asarray(store.get(0, "s0-t2").image, dtype=float)
        src2 = np.asarray(_img(2), dtype=float)
        assert np.abs(t2 - t1).mean() < 0.5 * np.abs(t2 - src2).mean()
    finally:
        DATASETS.unregister("test-sessions")


def test_a_metric_failing_on_one_sample_fails_only_that_sample(tmp_path, cache_dir):
    from benchmark.metrics.l1 import L1
    from benchmark.registry import METRICS

    class PickyL1(L1):
        key = "picky"

        def score_one(self, item):
            if item.sample.id == "p03":
                raise ValueError("cannot score this one")
            return super().score_one(item)

    METRICS.register("picky", PickyL1, overwrite=True)
    try:
        spec = {"name": "t-picky", "version": 1, "dataset": {"name": "_helpers:plain_dataset"},
                "metrics": ["l1", "picky"], "settings": {}, "seeds": [0, 1]}
        path = tmp_path / "t-picky.yaml"
        path.write_text(yaml.safe_dump(spec))
        res = run_task(NoiseEditor(), get_task(str(path)), cache_dir=cache_dir, progress=False)
        assert res["metrics"]["picky"]["n_scored"] == [11, 11]
        assert res["metrics"]["l1"]["n_scored"] == [12, 12]
        assert [(f["sample_id"], f["error"]) for f in res["failures"]] == \
            [("p03", "metric picky: ValueError: cannot score this one")] * 2
    finally:
        METRICS.unregister("picky")


def test_result_records_expressive_text_and_counts_model_notes(tmp_path, cache_dir):
    class NotingEditor(NoiseEditor):
        name = "noting"

        def edit(self, requests):
            out = super().edit(requests)
            for req, res in zip(requests, out):
                if req.sample.id.endswith(("0", "5")):
                    res.extra = {"img_tokens": "forced-after-limit"}
            return out

    task = _task(tmp_path, dataset="_helpers:plain_dataset", seeds=(0, 1))
    first = run_task(NotingEditor(), task, cache_dir=cache_dir, progress=False)
    validate_result(first)
    texts = first["outputs"]["expressive"]
    assert set(texts) == {"0", "1"} and len(texts["0"]) == 12
    assert texts["1"]["p03"].startswith("noise for ")
    noted = {sid for sid in first["outputs"]["notes"]["0"]}
    assert noted == {"p00", "p05", "p10"}
    assert first["outputs"]["note_counts"] == {"img_tokens=forced-after-limit": 6}
    # read back from the store on a rerun: same block
    second = run_task(NotingEditor(), task, cache_dir=cache_dir, progress=False)
    assert second["cache"]["computed"] == 0 and second["outputs"] == first["outputs"]
    # a model without expressive text or notes gets no block at all
    from benchmark.registry import MODELS

    plain = run_task(MODELS.get("identity")(), task, cache_dir=cache_dir, progress=False)
    assert "outputs" not in plain
