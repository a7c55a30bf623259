"""`editbench validate-adapter`: a conforming adapter passes; each kind of misbehaviour fails the
check that names it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.adapters import validate_adapter
from benchmark.api import BaseEditModel, EditResult
from benchmark.registry import MODELS




class _Base(BaseEditModel):
    def __init__(self, preset=None, device="cpu", **_):
        self.preset = preset or "default"

    def _src(self, r):
        return np.asarray(r.sample.source, dtype=np.float32) / 255


class GlobalRng(_Base):
    """Draws noise from numpy's global generator: neither deterministic nor batch-invariant."""

    name = "bad-global-rng"

    def edit(self, requests):
        return [EditResult(image=np.clip(self._src(r) + np.random.rand(*self._src(r).shape) * 0.1, 0, 1))
                for r in requests]


class BatchNoise(_Base):
    """One generator for the whole batch (seeded from the first request): batch-dependent."""

    name = "bad-batch-noise"

    def edit(self, requests):
        import torch

        g = requests[0].generator()
        return [EditResult(image=np.clip(self._src(r) + 0.1 * torch.rand(self._src(r).shape, generator=g).numpy(), 0, 1))
                for r in requests]


class WrongCount(_Base):
    name = "bad-count"

    def edit(self, requests):
        return [EditResult(image=self._src(requests[0]))]


class ExitsOnEmpty(_Base):
    name = "bad-exit"

    def edit(self, requests):
        if any(not r.sample.instruction for r in requests):
            raise SystemExit(3)
        return [EditResult(image=self._src(r)) for r in requests]


class NanOutput(_Base):
    name = "bad-nan"

    def edit(self, requests):
        return [EditResult(image=np.full((8, 8, 3), np.nan, dtype=np.float32)) for _ in requests]


class SmallAndLoud(_Base):
    """Returns 32x32 outputs with values above 1: warnings, not failures."""

    name = "warn-small"

    def edit(self, requests):
        return [EditResult(image=np.full((32, 32, 3), 1.5, dtype=np.float32)) for _ in requests]


def _broken_factory(preset=None, device="cpu"):
    raise RuntimeError("weights exploded")


@pytest.fixture
def registered():
    models = {"bad-global-rng": GlobalRng, "bad-batch-noise": BatchNoise, "bad-count": WrongCount,
              "bad-exit": ExitsOnEmpty, "bad-nan": NanOutput, "warn-small": SmallAndLoud,
              "bad-load": _broken_factory}
    for name, obj in models.items():
        MODELS.register(name, obj, overwrite=True)
    yield
    for name in models:
        MODELS.unregister(name)


def _status(report):
    return {c.name: c.status for c in report.checks}


def test_identity_conforms():
    report = validate_adapter("identity", n_samples=3)
    st = _status(report)
    assert report.ok, report.format()
    for name in ("loads", "interface", "results", "output", "determinism", "batch-size invariance",
                 "global RNG untouched", "empty instruction", "odd-sized source", "recovers"):
        assert st[name] == "PASS", (name, report.format())
    assert st["seed dependence"] == "INFO" and st["seconds per edit"] == "INFO"
    assert "conformance: conforms" in report.format()


@pytest.mark.parametrize("name, check, status", [
    ("bad-global-rng", "determinism", "FAIL"),
    ("bad-global-rng", "global RNG untouched", "WARN"),
    ("bad-batch-noise", "batch-size invariance", "FAIL"),
    ("bad-count", "results", "FAIL"),
    ("bad-exit", "empty instruction", "FAIL"),
    ("bad-nan", "output", "FAIL"),
    ("bad-load", "loads", "FAIL"),
    ("warn-small", "output", "WARN"),
])
def test_misbehaviour_is_named(registered, name, check, status):
    report = validate_adapter(name, n_samples=3)
    assert _status(report).get(check) == status, report.format()
    if status == "FAIL":
        assert not report.ok and "DOES NOT CONFORM" in report.format()


def test_warnings_say_why(registered):
    report = validate_adapter("warn-small", n_samples=2)
    assert report.ok, report.format()                         # warnings alone still conform
    detail = {c.name: c.detail for c in report.checks}["output"]
    assert "clipped to [0, 1]" in detail and "32x32 vs source 64x64" in detail


def test_cli_exit_codes_and_json(registered, editbench, capsys, tmp_path):
    assert editbench("validate-adapter", "identity", "--samples", "2", "--json", tmp_path / "r.json") == 0
    assert "conformance: conforms" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["ok"] is True
    assert editbench("validate-adapter", "bad-count", "--samples", "2") == 1
    assert "DOES NOT CONFORM" in capsys.readouterr().out
    assert editbench("validate-adapter", "identiy") == 2
    assert "did you mean 'identity'" in capsys.readouterr().err
