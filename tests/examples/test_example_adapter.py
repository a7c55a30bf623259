"""The out-of-tree adapter example installs with pip (offline, no build isolation) and, once on
the path, shows up in `editbench list models`, runs, and passes its own test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "editbench-example-adapter"


def _install_by_hand(src: Path, site: Path) -> None:
    """What an install leaves behind, written directly: the package and a dist-info folder whose
    entry_points.txt comes from the example's pyproject (for environments without setuptools)."""
    import tomllib

    meta = tomllib.loads((src / "pyproject.toml").read_text())["project"]
    shutil.copytree(src / "src" / "editbench_example_adapter", site / "editbench_example_adapter")
    info = site / f"editbench_example_adapter-{meta['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    lines = []
    for group, entries in meta["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The example pip-installed into a private target folder (from a copy, so the build leaves
    nothing in the source tree); written by hand where setuptools is absent. Returns (site
    folder, copy of the example, environment)."""
    import importlib.util

    base = tmp_path_factory.mktemp("example")
    src = base / "src-copy"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = base / "site"
    if importlib.util.find_spec("setuptools") is None or importlib.util.find_spec("pip") is None:
        _install_by_hand(src, site)
    else:
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                               "--no-build-isolation", "--disable-pip-version-check", "--target",
                               str(site), str(src)], capture_output=True, text=True, timeout=240)
        assert proc.returncode == 0, proc.stderr
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    env.setdefault("OMP_NUM_THREADS", "1")
    return site, src, env


def _editbench(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "benchmark", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd or ROOT, timeout=240)


def test_entry_point_is_installed(installed):
    site, _, _ = installed
    eps = next(site.glob("editbench_example_adapter-*.dist-info")) / "entry_points.txt"
    assert "[editbench.models]" in eps.read_text()
    assert "example-tone = editbench_example_adapter:ToneEditor" in eps.read_text()


def test_listed_by_editbench_and_runs(installed, tmp_path):
    _, _, env = installed
    listed = _editbench(env, "list", "models")
    assert listed.returncode == 0, listed.stderr
    line = next((ln for ln in listed.stdout.splitlines() if ln.startswith("example-tone")), None)
    assert line is not None, listed.stdout
    assert "editbench_example_adapter:ToneEditor" in line
    run = _editbench(env, "run", "--model", "example-tone", "--task", "synth-ma5k", "--limit", "2",
                     "--seeds", "0", "--output", tmp_path / "r.json", "--cache-dir", tmp_path / "c",
                     "--no-progress")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "r.json").is_file()


def test_not_listed_without_the_package(installed):
    _, _, env = installed
    bare = dict(env, PYTHONPATH=str(ROOT))
    assert "example-tone" not in _editbench(bare, "list", "models").stdout


def test_example_passes_its_own_test(installed):
    _, src, env = installed
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "tests"], cwd=src, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
