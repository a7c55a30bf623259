"""Lazy name -> object registries for models, tasks, metrics, backbones and datasets.

An entry is a ``"module:attribute"`` string imported only when first asked for, so
``editbench list`` never imports torch-heavy model code. Out-of-tree plugins add entries
through Python entry points, one group per kind (``editbench.models``, ``editbench.tasks``,
``editbench.metrics``, ``editbench.backbones``, ``editbench.datasets``)::

    [project.entry-points."editbench.models"]
    my-editor = "my_pkg.adapter:MyEditor"

A name of the form ``"module:attribute"`` is always accepted as-is (handy for ad-hoc adapters).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

__all__ = ["Registry", "UnknownNameError", "import_object", "MODELS", "METRICS", "BACKBONES",
           "DATASETS", "TASK_PLUGINS"]


class UnknownNameError(KeyError):
    """An unknown registry name; the message suggests close matches."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want a plain sentence
        return str(self.args[0])


def import_object(target: str) -> Any:
    """Import ``"package.module:attr.sub"``; errors name the target that failed."""
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ValueError(f"expected 'module:object', got {target!r}")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"{module_name!r} has no attribute {attr_path!r}") from None
    return obj


class Registry:
    """Names -> lazily imported objects, with entry-point plugins and "did you mean" errors."""

    def __init__(self, kind: str, group: str, builtins: dict[str, str] | None = None):
        self.kind = kind
        self.group = group
        self._entries: dict[str, str | Any] = dict(builtins or {})
        self._loaded: dict[str, Any] = {}
        self._plugins_scanned = False
        self._extra_sources: list[Callable[[], dict[str, Any]]] = []

    def add_source(self, source: Callable[[], dict[str, Any]]) -> None:
        """Add a callable that returns more entries (e.g. task files found on disk)."""
        self._extra_sources.append(source)

    def register(self, name: str, target: str | Any, *, overwrite: bool = False) -> None:
        self._scan()
        if name in self._entries and not overwrite:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = target
        self._loaded.pop(name, None)

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)
        self._loaded.pop(name, None)

    def _scan(self) -> None:
        if self._plugins_scanned:
            return
        self._plugins_scanned = True
        for source in self._extra_sources:
            for name, target in source().items():
                self._entries.setdefault(name, target)
        for ep in metadata.entry_points(group=self.group):
            # Built-in names win: a plugin cannot silently replace a reference implementation.
            self._entries.setdefault(ep.name, ep.value)

    def names(self) -> list[str]:
        self._scan()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._scan()
        return name in self._entries

    def target(self, name: str) -> str | Any:
        self._scan()
        if name not in self._entries:
            raise self.unknown(name)
        return self._entries[name]

    def get(self, name: str) -> Any:
        """The registered object (imported on first use)."""
        self._scan()
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._entries:
            if ":" in name:
                obj = import_object(name)
                self._loaded[name] = obj
                return obj
            raise self.unknown(name)
        target = self._entries[name]
        obj = import_object(target) if isinstance(target, str) and ":" in target else target
        self._loaded[name] = obj
        return obj

    def unknown(self, name: str) -> UnknownNameError:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return UnknownNameError(
            f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names()) or 'none'})"
        )

    def items(self) -> Iterable[tuple[str, str | Any]]:
        self._scan()
        return sorted(self._entries.items(), key=lambda kv: kv[0])


MODELS = Registry(
    "model",
    "editbench.models",
    {
        "identity": "baselines.reference:IdentityEditor",
        "oracle": "baselines.reference:OracleEditor",
        "instruct-pix2pix": "baselines.instruct_pix2pix:InstructPix2Pix",
        "lgie": "baselines.lgie:LGIE",
        "mgie": "mgie.mgie:MGIE",
        "mgie-fz": "mgie.fz:MGIEFrozenEditor",
    },
)

METRICS = Registry(
    "metric",
    "editbench.metrics",
    {
        "l1": "benchmark.metrics.l1:L1",
        "l2": "benchmark.metrics.l2:L2",
        "psnr": "benchmark.metrics.psnr:PSNR",
        "ssim": "benchmark.metrics.ssim:SSIM",
        "l1_in_mask": "benchmark.metrics.masked_l1:L1InMask",
        "l1_out_mask": "benchmark.metrics.masked_l1:L1OutMask",
        "lpips": "benchmark.metrics.lpips:LPIPS",
        "dino": "benchmark.metrics.dino:DINO",
        "cvs": "benchmark.metrics.cvs:CVS",
        "cts": "benchmark.metrics.cts:CTS",
        "clip_dir": "benchmark.metrics.clip_dir:CLIPDirectional",
        "clip_img_input": "benchmark.metrics.clip_dir:CLIPImageInput",
        "clip_s_input": "benchmark.metrics.clip_s:CLIPScoreInput",
        "clip_s_goal": "benchmark.metrics.clip_s:CLIPScoreGoal",
        "fid": "benchmark.metrics.fid:FID",
        "kid": "benchmark.metrics.fid:KID",
        "expressive_exact_match": "benchmark.metrics.expressive:ExpressiveExactMatch",
        "expressive_token_f1": "benchmark.metrics.expressive:ExpressiveTokenF1",
    },
)

BACKBONES = Registry(
    "backbone",
    "editbench.backbones",
    {
        "clip-vit-b-32": "benchmark.metrics.backbones:clip_vit_b_32",
        "clip-vit-l-14": "benchmark.metrics.backbones:clip_vit_l_14",
        "dino-vits16": "benchmark.metrics.backbones:dino_vits16",
        "inception-v3-fid": "benchmark.metrics.backbones:inception_v3_fid",
        "lpips-alex-v0.1": "benchmark.metrics.backbones:lpips_alex_v0_1",
        "synth-clip": "benchmark.metrics.backbones:synth_clip",
        "synth-dino": "benchmark.metrics.backbones:synth_dino",
        "synth-classifier": "benchmark.metrics.backbones:synth_classifier",
        "synth-lpips-uncalibrated": "benchmark.metrics.backbones:synth_lpips_uncalibrated",
    },
)

DATASETS = Registry(
    "dataset",
    "editbench.datasets",
    {
        "synth": "benchmark.datasets.synth:load",
        "synth-referring": "benchmark.datasets.synth:load_referring",
        "magicbrush": "benchmark.datasets.magicbrush:load",
        "evr": "benchmark.datasets.evr:load",
        "gier": "benchmark.datasets.gier:load",
        "ma5k": "benchmark.datasets.ma5k:load",
        "complex-multistep": "benchmark.datasets.complex_multistep:load",
        "humanedit": "benchmark.datasets.humanedit:load",
        "ipr2pr": "benchmark.datasets.ipr2pr:load",
    },
)

# Task specs are data (YAML under benchmark/tasks/); plugins may point at more YAML files or at
# objects returning a spec dict. The task registry itself lives in benchmark.tasks.
TASK_PLUGINS = "editbench.tasks"
