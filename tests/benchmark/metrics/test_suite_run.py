"""The learned metrics through ``run_task`` on synth samples with the synth backbones: the oracle
scores cvs = dino = 1, lpips = 0, fid ~ 0; the identity lands strictly in between; every metric
names its backbone and weights sha256; dataset-side features persist across runs."""

import math

import pytest
import torch

from baselines.reference import IdentityEditor, OracleEditor
from benchmark.metrics.backbones import synth as S
from benchmark.results import validate_result
from benchmark.runner import run_task
from benchmark.tasks import TaskSpec

torch.set_num_threads(1)
LEARNED_METRICS = ["lpips", "dino", "cvs", "cts", "clip_dir", "clip_s_input", "clip_s_goal", "fid", "kid"]
METRICS = ["l1"] + list(LEARNED_METRICS)


def _task(variant="gier"):
    return TaskSpec.from_dict({"name": f"mini-{variant}", "version": 1,
                               "dataset": {"name": "synth", "variant": variant, "split": "test", "size": 64},
                               "metrics": METRICS, "settings": {}, "seeds": [0, 1]})


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    task = _task()
    oracle = run_task(OracleEditor(), task, limit=6, cache_dir=str(cache), progress=False,
                      backbones="synth")
    identity = run_task(IdentityEditor(), task, limit=6, cache_dir=str(cache), progress=False,
                        backbones="synth")
    return oracle, identity, cache


def test_oracle_is_perfect_and_identity_is_strictly_between(results):
    oracle, identity, _ = results
    for res in (oracle, identity):
        validate_result(res)
        assert not res["failures"]
    o, i = oracle["metrics"], identity["metrics"]
    assert o["cvs"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert o["dino"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert o["lpips"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert o["fid"]["mean"] == pytest.approx(0.0, abs=1e-3)
    assert 0 < i["lpips"]["mean"] and i["cvs"]["mean"] < 1 and i["dino"]["mean"] < 1
    assert i["fid"]["mean"] > 1e-3
    # the identity leaves the picture as it was: no edit direction
    assert i["clip_dir"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert o["clip_dir"]["mean"] > 0
    # clip_s needs an expressive instruction: the oracle returns the sample's, the identity none
    assert o["clip_s_input"]["mean"] is not None and i["clip_s_input"]["mean"] is None
    assert i["clip_s_goal"]["n_scored"] == [0, 0]
    assert o["fid"]["n_scored"] == [6, 6] and "fid" not in oracle["by_category"].get("recolour", {})


def test_every_metric_names_its_backbone_and_sha256(results):
    oracle, _, _ = results
    manifest = S.read_manifest()
    expect = {"cvs": "synth-clip", "cts": "synth-clip", "clip_dir": "synth-clip",
              "clip_s_input": "synth-clip", "clip_s_goal": "synth-clip", "dino": "synth-dino",
              "fid": "synth-classifier", "kid": "synth-classifier",
              "lpips": "synth-lpips-uncalibrated"}
    for key, name in expect.items():
        m = oracle["metrics"][key]
        assert m["backbone"] == name
        file = "synth-classifier" if name == "synth-lpips-uncalibrated" else name
        assert m["backbone_sha256"] == manifest[file]["sha256"]
    assert oracle["metrics"]["l1"]["backbone"] is None


def test_dataset_side_features_are_reused_by_the_second_model(results):
    oracle, identity, cache = results
    assert list((cache / "features").glob("synth-*"))
    # a new run starts with an empty memory; sources, targets and captions come from disk, and so
    # do the identity's outputs (they are the sources); only LPIPS maps are never on disk
    assert identity["cache"]["features"]["disk_hits"] > 0
    # computed: LPIPS taps of the 6 targets once and of the 6 outputs per seed (outputs' maps are
    # not kept), and the sources as outputs under the DINO and FID views, which only ever saw
    # targets: 6 + 12 + 6 + 6
    assert identity["cache"]["features"]["computed"] == 30
    assert oracle["cache"]["features"]["computed"] > 12


def test_values_do_not_depend_on_the_feature_cache(results, tmp_path):
    oracle, _, _ = results
    again = run_task(OracleEditor(), _task(), limit=6, cache_dir=str(tmp_path), progress=False,
                     backbones="synth")
    for key in LEARNED_METRICS:
        a, b = oracle["metrics"][key]["per_seed"], again["metrics"][key]["per_seed"]
        assert all((x is None and y is None) or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
                   for x, y in zip(a, b)), key
