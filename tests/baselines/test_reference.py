"""The reference editors on the whole synth suite: oracle is perfect, identity is not."""

import pytest

from baselines.reference import IdentityEditor, OracleEditor
from benchmark.runner import run_task
from benchmark.tasks import TASKS, get_task

SYNTH_TASKS = [n for n in TASKS.names() if n.startswith("synth-")]


@pytest.mark.parametrize("name", SYNTH_TASKS)
def test_oracle_is_perfect_and_identity_is_not(name, cache_dir):
    task = get_task(name)
    oracle = run_task(OracleEditor(), task, seeds=[0, 1], limit=12, cache_dir=cache_dir,
                      progress=False)
    m = oracle["metrics"]
    assert oracle["failures"] == []
    assert m["l1"]["mean"] == 0.0 and m["l2"]["mean"] == 0.0
    assert m["ssim"]["mean"] == pytest.approx(1.0, abs=1e-12)
    if "l1_in_mask" in m:
        assert m["l1_in_mask"]["mean"] == 0.0 and m["l1_out_mask"]["mean"] == 0.0
    identity = run_task(IdentityEditor(), task, seeds=[0, 1], limit=12, cache_dir=cache_dir,
                        progress=False)
    im = identity["metrics"]
    assert im["l1"]["mean"] > 0.0 and im["ssim"]["mean"] < 1.0
    if "l1_out_mask" in im and task.turn_protocol != "final-turn":
        # outside the edit region the synth target equals the source bit for bit (under
        # final-turn, earlier turns' regions lie outside the last turn's mask)
        assert im["l1_out_mask"]["mean"] == 0.0 and im["l1_in_mask"]["mean"] > 0.0
    assert identity["by_category"] and "referring" in identity["by_category"]
