import pytest
import yaml

from benchmark.tasks import TASKS, TaskSpec, expand_tasks, get_task

SYNTH = ["synth-evr", "synth-gier", "synth-ma5k", "synth-magicbrush", "synth-complex"]


def test_builtin_tasks_load_and_group_expands():
    assert [t.name for t in expand_tasks("synth")] == SYNTH
    for name in TASKS.names():
        spec = get_task(name)
        if not spec.is_group:
            assert spec.seeds == [0, 1, 2, 3, 4]
            assert spec.settings["image_guidance_scale"] == 1.5
            assert spec.settings["text_guidance_scale"] == 7.5
            assert {"l1", "l2", "psnr", "ssim"} <= set(spec.metrics)


def test_hash_is_stable_and_sensitive():
    a = get_task("synth-evr")
    assert a.hash == get_task("synth-evr").hash and len(a.hash) == 64
    d = a.to_dict()
    assert TaskSpec.from_dict({**d, "description": "reworded"}).hash == a.hash
    assert TaskSpec.from_dict({**d, "settings": {**d["settings"], "steps": 50}}).hash != a.hash
    assert TaskSpec.from_dict({**d, "version": 2}).hash != a.hash
    # seeds and metrics change the task hash but not the output-store key
    other = TaskSpec.from_dict({**d, "seeds": [7], "metrics": ["l1"]})
    assert other.hash != a.hash and other.store_hash == a.store_hash
    assert get_task("synth-magicbrush").store_hash != get_task("synth-magicbrush-final").store_hash


def test_bad_specs_fail_with_a_reason(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        TaskSpec.from_dict({"name": "x", "version": 1})
    with pytest.raises(ValueError, match="turn_protocol"):
        TaskSpec.from_dict({"name": "x", "version": 1, "dataset": {}, "metrics": [], "settings": {},
                            "seeds": [0], "turn_protocol": "sometimes"})
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "version": 1, "dataset": {"name": "synth"},
                                    "metrics": ["l1"], "settings": {}, "seeds": [1, 1]}))
    with pytest.raises(ValueError, match="distinct"):
        get_task(str(path))


def test_unknown_task_suggests():
    from benchmark.registry import UnknownNameError

    with pytest.raises(UnknownNameError, match="synth-evr"):
        get_task("synth-evrr")
