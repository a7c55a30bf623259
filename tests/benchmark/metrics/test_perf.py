"""``editbench perf metrics`` on the synth backbones (fast): the JSON it promises, equal values,
and the suite doing one backbone pass per unique input."""

import argparse
import json

import torch

from benchmark.metrics import perf

torch.set_num_threads(1)


def test_perf_metrics_reports_speedup_bound_and_equal_values():
    r = perf.perf_metrics(n_samples=3, n_seeds=2, size=64, backbones="synth", with_loads=False,
                          progress=False)
    assert r["speedup_vs_naive"] > 1.0 and r["ratio_to_bound"] > 0
    assert r["equal_values"], r["max_rel_diff_suite_vs_naive"]
    assert set(r["max_rel_diff_suite_vs_naive"]) == set(perf.LEARNED)
    # the suite computed each unique input once: passes == unique inputs
    assert sum(r["suite_passes"].values()) == r["unique_inputs"]["images"] + r["unique_inputs"]["texts"]
    assert "speedup_vs_naive" in perf.format_report(r)
    # warm: dataset-side features came from disk, so only the model outputs went through the
    # image backbones (3 samples x 2 seeds per image view), and the values are still the naive ones
    assert r["max_rel_diff_warm_vs_naive"].keys() == r["max_rel_diff_suite_vs_naive"].keys()
    assert sum(r["suite_warm_passes"].values()) < sum(r["suite_passes"].values())
    assert r["speedup_vs_naive_warm"] > 0
    assert r["config"]["processor"] and r["config"]["threads"] == 1  # what the seconds were measured on
    # sharing ceiling at 2 seeds: clip_dir's L/14 encodes source + output per (sample, seed)
    assert abs(r["ceiling_from_sharing"]["clip-large"] - 2 / (1 + 1 / 2)) < 1e-9


def test_cli_writes_json(tmp_path, capsys):
    sub = argparse.ArgumentParser().add_subparsers()
    perf.add_cli(sub)
    args = sub.choices["perf"].parse_args(["metrics", "--samples", "2", "--seeds", "2", "--size", "64",
                                            "--backbones", "synth", "--no-loads", "--threads", "1",
                                            "--output", str(tmp_path / "p.json")])
    assert args.func(args) == 0
    data = json.loads((tmp_path / "p.json").read_text())
    assert {"speedup_vs_naive", "ratio_to_bound", "seconds", "config"} <= set(data)
    assert "ratio_to_bound" in capsys.readouterr().out
