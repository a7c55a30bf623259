import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))  # makes `_helpers` importable, here and in subprocesses
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "cache")


@pytest.fixture
def subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture
def editbench():
    """``editbench ARGS`` in-process; returns the exit code."""
    from benchmark import cli

    return lambda *argv: cli.main([str(a) for a in argv])
