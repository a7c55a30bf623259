"""scripts/bench_train_step.py: the training-step throughput figures of docs/tiny-models.md."""

import re

import pytest
from _helpers import import_script


def _bench():
    return import_script("bench_train_step")


def test_times_the_tiny_training_step_and_reports_compute_and_data_separately(capsys):
    _bench().main(["--resolution", "32", "--batch-size", "2", "--steps", "2", "--warmup", "1",
                   "--threads", "1"])
    line = capsys.readouterr().out.strip()
    m = re.fullmatch(r"eager, 32 px, batch 2, 1 threads: ([\d.]+) steps/s \(([\d.]+) ms/sample "
                     r"compute; drawing a batch ([\d.]+) s, ([\d.]+) ms/sample; warm-up ([\d.]+) s\)",
                     line)
    assert m, line
    assert float(m.group(1)) > 0 and float(m.group(2)) > 0


def test_refuses_a_non_positive_step_count():
    with pytest.raises(SystemExit):
        _bench().main(["--steps", "0"])
