"""`make retrain-tiny` against the shipped tiny checkpoints: it must run exactly the commands their
manifests record, in an order where each fine-tuned model's base is trained first, and the shipped
LGIE-/MGIE-tiny must have been fine-tuned from the shipped InstructPix2Pix-tiny."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmark.diffusion.checkpoints import manifest_digest

ROOT = Path(__file__).resolve().parents[1]
IP2P = ROOT / "baselines/checkpoints/instruct-pix2pix-tiny"
FINE_TUNED = [ROOT / "mgie/checkpoints/lgie-tiny", ROOT / "mgie/checkpoints/mgie-tiny"]


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def _retrain_commands() -> list[str]:
    # BIN= so the lines read as the manifests write them; -n prints without running
    out = subprocess.run(["make", "-n", "-s", "retrain-tiny", "BIN=.", "VENV=/nonexistent-venv"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [line.strip().removeprefix("./") for line in out.splitlines()
            if line.strip().startswith("./editbench train")]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_retrain_tiny_runs_every_shipped_command_with_bases_first():
    commands = _retrain_commands()
    position = {}
    for folder in [IP2P, *FINE_TUNED]:
        recorded = _manifest(folder)["command"].split(" && ")
        assert all(c in commands for c in recorded), (folder.name, recorded, commands)
        position[folder.name] = [commands.index(c) for c in recorded]
        assert position[folder.name] == sorted(position[folder.name])  # stages in order
    ip2p_done = max(position[IP2P.name])
    assert all(min(position[f.name]) > ip2p_done for f in FINE_TUNED)
    recorded_all = sum((_manifest(f)["command"].split(" && ") for f in [IP2P, *FINE_TUNED]), [])
    assert sorted(commands) == sorted(recorded_all)  # nothing the manifests do not record


def test_shipped_fine_tuned_models_start_from_the_shipped_instruct_pix2pix():
    ip2p = manifest_digest(_manifest(IP2P))
    for folder in FINE_TUNED:
        assert _manifest(folder)["config"]["base_checkpoint"] == ip2p, folder.name


def test_a_staged_ip2p_manifest_records_each_stage():
    m = _manifest(IP2P)
    stages = m.get("stages")
    if not stages:  # a one-command checkpoint
        assert " && " not in m["command"]
        return
    assert " && ".join(s["command"] for s in stages) == m["command"]
    assert sum(s["steps"] for s in stages) == m["total_steps"]
    assert stages[-1]["steps"] == m["steps"] and stages[-1]["final_loss"] == m["final_loss"]
    assert m["config"]["base_checkpoint"] == manifest_digest(stages[-2])
