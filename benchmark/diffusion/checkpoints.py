"""Checkpoints as safetensors plus a JSON manifest; never pickles.

A shipped checkpoint folder holds ``<module>.safetensors`` files, ``tokenizer.json`` where the
model has an offline tokenizer, and ``manifest.json``: the sha256 of every file, the config needed
to rebuild the modules, and how it was made (exact command, seed, steps, wall time, final loss).
``weights_sha256`` of a model is the sha256 of the manifest's file table, so any changed weight
changes it. Training state for ``--resume`` (optimizer moments, step, loss history) is stored the
same way, with tensors in safetensors and everything else in JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from benchmark.api import stable_hash
from benchmark.files import atomic_write_json, sha256_file

MANIFEST = "manifest.json"


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp),
              metadata=metadata)
    tmp.replace(path)


def write_checkpoint(out: str | Path, modules: dict[str, torch.nn.Module], tokenizer=None,
                     config: dict | None = None, info: dict | None = None,
                     dtype: torch.dtype | None = None) -> dict[str, Any]:
    """Write ``<name>.safetensors`` per module (floating tensors cast to ``dtype`` when given:
    shipped tiny checkpoints are stored in float16 to stay small and loaded back into float32
    modules), the tokenizer, and the manifest."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for name, module in modules.items():
        path = out / f"{name}.safetensors"
        state = dict(module.state_dict())
        if dtype is not None:
            state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        _save_tensors(state, path)
        files[path.name] = sha256_file(path)
    if tokenizer is not None:
        from benchmark.diffusion.text import save_tokenizer

        save_tokenizer(tokenizer, out / "tokenizer.json")
        files["tokenizer.json"] = sha256_file(out / "tokenizer.json")
    manifest = {"format": "editbench-checkpoint/1", "files": files, "config": config or {},
                "stored_dtype": str(dtype or "as trained").replace("torch.", ""), **(info or {})}
    atomic_write_json(out / MANIFEST, json.loads(json.dumps(manifest, default=_jsonable)))
    return manifest


def folder_digests(out: Path) -> dict[str, str]:
    """sha256 of every file of a saved folder (diffusers layout), by relative path, leaving out
    the manifest and the ``training-state/`` a run keeps for ``--resume``."""
    out = Path(out)
    return {str(f.relative_to(out)): sha256_file(f) for f in sorted(out.rglob("*"))
            if f.is_file() and f.name != MANIFEST and f.relative_to(out).parts[0] != "training-state"}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    return str(obj)


def manifest_digest(manifest: dict) -> str:
    return stable_hash(manifest["files"])


def load_manifest(ckpt: str | Path, *, what: str, how: str, verify: bool = True) -> dict:
    """The manifest of a checkpoint folder, with every file's sha256 checked; a missing or
    altered file is one clear error naming it and the command that rebuilds the checkpoint."""
    ckpt = Path(ckpt)
    path = ckpt / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path} is missing; build it with `{how}`")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for name, digest in manifest.get("files", {}).items():
        f = ckpt / name
        if not f.is_file():
            raise FileNotFoundError(f"{what}: {f} is missing; rebuild with `{how}`")
        if verify and sha256_file(f) != digest:
            raise ValueError(f"{what}: {f} does not match the sha256 in its manifest; "
                             f"rebuild with `{how}`")
    return manifest


def load_module_weights(module: torch.nn.Module, path: str | Path) -> None:
    state = load_file(str(path))
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit the model (missing {list(missing)[:3]}, "
                         f"unexpected {list(unexpected)[:3]})")


# ------------------------------------------------------------------ training state (resume)
def save_training_state(work: Path, step: int, history: list, elapsed: float,
                        unet: torch.nn.Module, text_encoder: torch.nn.Module | None,
                        optimizer: torch.optim.Optimizer, lr_scheduler, tokenizer=None,
                        extra: dict[str, dict[str, torch.Tensor]] | None = None) -> None:
    """Everything a run needs to go on (``--resume``), as safetensors + JSON; ``extra``: more
    tensor files, ``{name: tensors}`` -> ``<name>.safetensors`` (the caller reloads them)."""
    work = Path(work)
    _save_tensors(dict(unet.state_dict()), work / "unet.safetensors")
    if text_encoder is not None:
        _save_tensors(dict(text_encoder.state_dict()), work / "text_encoder.safetensors")
    for name, tensors in (extra or {}).items():
        _save_tensors(tensors, work / f"{name}.safetensors")
    opt = optimizer.state_dict()
    tensors = {f"{idx}.{k}": v for idx, st in opt["state"].items() for k, v in st.items()
               if isinstance(v, torch.Tensor)}
    _save_tensors(tensors, work / "optimizer.safetensors")
    atomic_write_json(work / "state.json", {
        "step": step, "history": history, "elapsed": elapsed,
        "param_groups": opt["param_groups"], "lr_scheduler": lr_scheduler.state_dict(),
    })


def load_training_state(work: Path, unet, text_encoder, optimizer, lr_scheduler):
    work = Path(work)
    meta = json.loads((work / "state.json").read_text())
    load_module_weights(unet, work / "unet.safetensors")
    if text_encoder is not None:
        load_module_weights(text_encoder, work / "text_encoder.safetensors")
    flat = load_file(str(work / "optimizer.safetensors"))
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in flat.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    lr_scheduler.load_state_dict(meta["lr_scheduler"])
    return meta["step"], meta["history"], meta["elapsed"]
