"""scripts/bench_full_size.py runs the adapters' own edit path on random parts (its GPU figures
are taken by hand; here the shrunken stand-in keeps the code path working)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model", ["instruct-pix2pix", "mgie"])
def test_full_size_bench_runs_its_tiny_stand_in(model, subprocess_env):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_full_size.py"), "--model", model,
                          "--tiny", "--steps", "2", "--resolution", "64", "--repeats", "1", "--device", "cpu"],
                         capture_output=True, text=True, env=subprocess_env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"{model} full-size (tiny stand-in), random weights" in out.stdout
    assert "batch 1, 2 steps, 64 px" in out.stdout


def test_full_size_bench_fuses_qkv_on_request(subprocess_env):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_full_size.py"), "--model",
                          "instruct-pix2pix", "--tiny", "--steps", "2", "--resolution", "64", "--repeats", "1",
                          "--device", "cpu", "--fuse-qkv"],
                         capture_output=True, text=True, env=subprocess_env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "UNet bf16 channels-last fused-qkv: best" in out.stdout


def test_inductor_tuning_without_compile_is_refused(subprocess_env):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_full_size.py"), "--tiny",
                          "--inductor-tuning"], capture_output=True, text=True, env=subprocess_env, timeout=300)
    assert out.returncode == 2
    assert "--inductor-tuning sets how torch.compile builds kernels: add --compile" in out.stderr
