import math

import pytest
from scipy import stats

from benchmark.results import aggregate, summarise, validate_result


def test_summarise_matches_student_t():
    vals = [0.10, 0.12, 0.11, 0.15, 0.09]
    s = summarise(vals)
    n = len(vals)
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    lo, hi = stats.t.interval(0.95, n - 1, loc=mean, scale=std / math.sqrt(n))
    assert s["mean"] == pytest.approx(mean)
    assert s["std"] == pytest.approx(std)
    assert s["ci95"] == pytest.approx([lo, hi])


def test_one_seed_has_no_spread_and_nan_seeds_are_dropped():
    assert summarise([0.5]) == {"mean": 0.5, "std": None, "ci95": None, "n_seeds": 1}
    assert summarise([0.5, math.nan])["n_seeds"] == 1
    assert summarise([])["mean"] is None


def test_aggregate_per_seed_means_and_categories():
    scores = {"l1": {0: {"a": 0.1, "b": 0.3, "c": math.nan}, 1: {"a": 0.2, "b": 0.4}}}
    info = {"l1": {"higher_is_better": False, "backbone": None, "backbone_sha256": None}}
    metrics, cats = aggregate(scores, [0, 1], info, {"x": ["a"], "y": ["b", "c"], "z": ["q"]})
    assert metrics["l1"]["per_seed"] == pytest.approx([0.2, 0.3])
    assert metrics["l1"]["n_scored"] == [2, 2]
    assert metrics["l1"]["mean"] == pytest.approx(0.25)
    assert cats["x"]["l1"]["mean"] == pytest.approx(0.15)
    assert cats["y"]["l1"]["mean"] == pytest.approx(0.35)
    assert "z" not in cats  # no scored sample, no row


def test_validate_result_names_what_is_missing():
    with pytest.raises(ValueError, match="lacks"):
        validate_result({"schema_version": 1})


def test_device_info_names_the_processor_and_threads(monkeypatch):
    import torch

    from benchmark.results import device_info, device_label

    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    info = device_info("cpu")
    assert info["threads"] == 3
    assert isinstance(info["processor"], str) and info["processor"]
    assert device_label({"device": "cpu", **info}) == f"cpu ({info['processor']}, 3 threads)"
    # results written before these keys existed show just the device
    assert device_label({"device": "cpu"}) == "cpu"
    assert device_label({"device": None, "processor": "x"}) is None  # model-free scoring
