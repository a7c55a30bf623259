"""benchmark.diffusion.training: recipe resolution."""

import pytest

from benchmark.diffusion.training import resolve_recipe

DEFAULTS = {"learning_rate": 1e-3, "steps": 4000, "lr_schedule": "cosine", "ema": False}


def test_overrides_then_explicit_values_win_and_unknown_keys_are_refused():
    r = resolve_recipe(DEFAULTS, {"steps": 10, "lr_schedule": "constant"}, steps=20, learning_rate=None)
    assert r == {"learning_rate": 1e-3, "steps": 20, "lr_schedule": "constant", "ema": False}
    with pytest.raises(ValueError, match="unknown recipe key"):
        resolve_recipe(DEFAULTS, {"learning_rat": 1e-3})


def test_a_number_given_as_text_becomes_a_number():
    # YAML 1.1 (the CLI's --recipe KEY=VALUE) reads 5e-4 as the string "5e-4"
    r = resolve_recipe(DEFAULTS, {"learning_rate": "5e-4", "steps": "300", "lr_schedule": "5e-4"})
    assert r["learning_rate"] == 5e-4 and isinstance(r["learning_rate"], float)
    assert r["steps"] == 300 and isinstance(r["steps"], int)
    assert r["lr_schedule"] == "5e-4"  # a text-valued entry stays text
    assert resolve_recipe(DEFAULTS, {"steps": "1e3"})["steps"] == 1000
    assert isinstance(resolve_recipe(DEFAULTS, {"steps": "1e3"})["steps"], int)
    with pytest.raises(ValueError, match="recipe learning_rate takes a number .*got 'fast'"):
        resolve_recipe(DEFAULTS, {"learning_rate": "fast"})
