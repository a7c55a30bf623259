import pytest

from benchmark.registry import METRICS, MODELS, Registry, UnknownNameError


def test_lazy_entries_are_not_imported_until_asked():
    import sys

    reg = Registry("thing", "editbench.test-group", {"json-dumps": "json:dumps"})
    assert reg.names() == ["json-dumps"]
    import json

    assert reg.get("json-dumps") is json.dumps
    reg2 = Registry("thing", "editbench.test-group", {"never": "module_that_does_not_exist:x"})
    assert "never" in reg2.names()  # listing does not import
    assert "module_that_does_not_exist" not in sys.modules


def test_did_you_mean():
    with pytest.raises(UnknownNameError) as err:
        MODELS.get("oracel")
    assert "did you mean 'oracle'" in str(err.value)
    with pytest.raises(UnknownNameError) as err:
        METRICS.get("ssmi")
    assert "'ssim'" in str(err.value)


def test_module_object_names_and_registration():
    assert MODELS.get("baselines.reference:IdentityEditor").name == "identity"
    reg = Registry("thing", "editbench.test-group", {})
    reg.register("x", "json:loads")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("x", "json:dumps")


def test_entry_point_plugins_are_found(monkeypatch):
    from importlib import metadata

    ep = metadata.EntryPoint(name="plugged", value="json:dumps", group="editbench.models")

    def fake(group=None):
        return [ep] if group == "editbench.models" else []

    monkeypatch.setattr(metadata, "entry_points", fake)
    reg = Registry("model", "editbench.models", {"identity": "baselines.reference:IdentityEditor"})
    assert reg.names() == ["identity", "plugged"]
