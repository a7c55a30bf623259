"""Tasks as data: a task = dataset + split + turn protocol + metric set + generation settings
+ seeds + version, declared in a YAML file in this folder (or a plugin's) and hashed.

The task hash is the sha256 of the canonical JSON of the spec without its display-only fields
(``description``, ``headline``), so rewording a description keeps cached outputs valid while any
change to data, protocol, metrics, settings or seeds gives a new hash.

Turn protocols (MagicBrush's evaluation script): ``single`` (one edit per sample),
``all-turn`` (each turn edited from the ground-truth previous turn; every turn scored) and
``final-turn`` (each turn edited from the model's own previous output; last turn scored).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmark.api import stable_hash
from benchmark.registry import TASK_PLUGINS, Registry, import_object

__all__ = ["TaskSpec", "TASKS", "get_task", "expand_tasks", "TURN_PROTOCOLS"]

TASK_DIR = Path(__file__).resolve().parent
TURN_PROTOCOLS = ("single", "all-turn", "final-turn")
_DISPLAY_ONLY = ("description", "headline")
_REQUIRED = ("name", "version", "dataset", "metrics", "settings", "seeds")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    version: int
    dataset: dict[str, Any]
    metrics: list[str]
    settings: dict[str, Any]
    seeds: list[int]
    turn_protocol: str = "single"
    headline: list[str] = field(default_factory=list)
    description: str = ""
    group: list[str] | None = None
    source: str | None = None  # the file the spec came from (not hashed)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> "TaskSpec":
        where = f" in {source}" if source else ""
        if not isinstance(data, dict) or "name" not in data:
            raise ValueError(f"task spec{where} must be a mapping with a 'name'")
        if "group" in data:
            members = data["group"]
            if not isinstance(members, list) or not members:
                raise ValueError(f"group task {data['name']!r}{where}: 'group' must be a list")
            return cls(name=data["name"], version=int(data.get("version", 1)), dataset={},
                       metrics=[], settings={}, seeds=[], group=[str(m) for m in members],
                       description=str(data.get("description", "")).strip(), source=source)
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ValueError(f"task {data['name']!r}{where} lacks {', '.join(missing)}")
        protocol = data.get("turn_protocol", "single")
        if protocol not in TURN_PROTOCOLS:
            raise ValueError(f"task {data['name']!r}{where}: turn_protocol {protocol!r} is not one "
                             f"of {', '.join(TURN_PROTOCOLS)}")
        seeds = [int(s) for s in data["seeds"]]
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"task {data['name']!r}{where}: seeds must be distinct and non-empty")
        return cls(
            name=str(data["name"]),
            version=int(data["version"]),
            dataset=dict(data["dataset"]),
            metrics=[str(m) for m in data["metrics"]],
            settings=dict(data["settings"]),
            seeds=seeds,
            turn_protocol=protocol,
            headline=[str(m) for m in data.get("headline", [])],
            description=str(data.get("description", "")).strip(),
            source=source,
        )

    @property
    def is_group(self) -> bool:
        return self.group is not None

    def to_dict(self) -> dict[str, Any]:
        if self.is_group:
            return {"name": self.name, "version": self.version, "group": list(self.group or []),
                    "description": self.description}
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "dataset": copy.deepcopy(self.dataset),
            "turn_protocol": self.turn_protocol,
            "headline": list(self.headline),
            "metrics": list(self.metrics),
            "settings": copy.deepcopy(self.settings),
            "seeds": list(self.seeds),
        }

    @property
    def hash(self) -> str:
        data = {k: v for k, v in self.to_dict().items() if k not in _DISPLAY_ONLY}
        return stable_hash(data)

    def with_seeds(self, seeds: list[int] | None) -> "TaskSpec":
        """The same task run under other seeds. Seeds are not part of the output-store key
        (each output is stored per seed), so the hash used for caching excludes them."""
        if seeds is None:
            return self
        return TaskSpec.from_dict({**self.to_dict(), "seeds": list(seeds)}, self.source)

    @property
    def store_hash(self) -> str:
        """Hash of what determines one output: everything but the seed list and scoring."""
        data = {k: v for k, v in self.to_dict().items()
                if k not in _DISPLAY_ONLY + ("seeds", "metrics")}
        return stable_hash(data)


def _load_yaml(path: Path) -> TaskSpec:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return TaskSpec.from_dict(data, source=str(path))


def _builtin_task_files() -> dict[str, Any]:
    return {path.stem: path for path in sorted(TASK_DIR.glob("*.yaml"))}


TASKS = Registry("task", TASK_PLUGINS, {})
TASKS.add_source(_builtin_task_files)


def get_task(name: str) -> TaskSpec:
    """A task by name (built-in YAML, plugin entry point, or a path to a YAML file)."""
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return _load_yaml(Path(name))
    target = TASKS.target(name)
    if isinstance(target, Path):
        spec = _load_yaml(target)
    elif isinstance(target, TaskSpec):
        spec = target
    elif isinstance(target, str) and target.endswith((".yaml", ".yml")):
        spec = _load_yaml(Path(target))
    elif isinstance(target, str):
        obj = import_object(target)
        spec = obj if isinstance(obj, TaskSpec) else TaskSpec.from_dict(obj() if callable(obj) else obj)
    else:
        spec = TaskSpec.from_dict(target)
    if spec.name != name and not name.endswith((".yaml", ".yml")):
        raise ValueError(f"task file for {name!r} declares name {spec.name!r}")
    return spec


def expand_tasks(name: str) -> list[TaskSpec]:
    """A task, or the members of a group task, in order."""
    spec = get_task(name)
    if not spec.is_group:
        return [spec]
    out: list[TaskSpec] = []
    for member in spec.group or []:
        out.extend(expand_tasks(member))
    return out
