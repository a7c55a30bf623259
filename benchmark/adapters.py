"""``editbench validate-adapter NAME``: a conformance report for a model adapter.

An adapter (built in, from another package through the ``editbench.models`` entry-point group, or
given as ``module:object``) is loaded and run on a few samples of a synth task; each check is
PASS, FAIL, WARN or INFO:

- loads: ``factory(preset=..., device=...)`` returns an object (load time reported);
- interface: ``name``, ``preset``, ``config_hash`` (stable), ``weights_sha256``, batched ``edit``;
- results: one per request, in order, each an image the runner accepts;
- output: 8-bit RGB after conversion, same size as the source (WARN otherwise: metrics resize),
  values in range (WARN when floats outside [0, 1] would be clipped, FAIL on NaN/inf);
- determinism: the same requests twice give the same pixels;
- batch-size invariance: a batch, each request alone, and the batch reversed give the same pixels;
- global RNG untouched: ``edit`` neither seeds nor draws from torch's / numpy's global generators
  (draw noise from ``request.generator()``; WARN otherwise);
- seed dependence (INFO): whether another protocol seed changes the output;
- empty instruction and an odd-sized source: an image or an ordinary exception (the runner records
  it as that sample's failure) -- never ``SystemExit`` and the like;
- recovers: after any exception the next edit still gives the same pixels as before;
- seconds per edit (INFO): batched and one at a time.

Exit status 0 when nothing FAILs, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Check", "AdapterReport", "validate_adapter", "add_cli", "COMMANDS"]

COMMANDS = ("validate-adapter",)
PASS, FAIL, WARN, INFO, SKIP = "PASS", "FAIL", "WARN", "INFO", "SKIP"


@dataclass
class Check:
    name: str
    status: str
    detail: str = ""


@dataclass
class AdapterReport:
    adapter: str
    target: str
    preset: str | None
    task: str
    n_samples: int
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    def add(self, name: str, status: str, detail: str = "") -> None:
        self.checks.append(Check(name, status, detail))

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in (PASS, FAIL, WARN, INFO, SKIP)}
        for c in self.checks:
            out[c.status] += 1
        return out

    def format(self) -> str:
        width = max([len(c.name) for c in self.checks] + [5])
        lines = [f"adapter {self.adapter} ({self.target}), preset {self.preset or 'default'}, "
                 f"on {self.n_samples} samples of {self.task}"]
        for c in self.checks:
            lines.append(f"  {c.status:4s}  {c.name.ljust(width)}  {c.detail}".rstrip())
        n = self.counts()
        verdict = "conforms" if self.ok else "DOES NOT CONFORM"
        lines.append(f"conformance: {verdict} ({n[PASS]} checks pass, {n[FAIL]} fail, "
                     f"{n[WARN]} warnings)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "checks"},
                "ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def _one_line(exc: BaseException) -> str:
    from benchmark.runner import one_line

    return one_line(exc)


def _call(fn: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """Run ``fn``; an exception of any kind (SystemExit included) is returned, not raised."""
    try:
        return fn(), None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - judging how the adapter fails is the point
        return None, exc


def _arrays(results) -> list[Any]:
    import numpy as np

    from benchmark.files import to_rgb_image

    return [np.asarray(to_rgb_image(r.image)) for r in results]


def _diff(a: Sequence[Any], b: Sequence[Any]) -> tuple[int, int]:
    """(number of differing images, largest absolute pixel difference)."""
    import numpy as np

    n, worst = 0, 0
    for x, y in zip(a, b):
        if x.shape != y.shape:
            n += 1
            worst = 255
            continue
        d = int(np.abs(x.astype(np.int16) - y.astype(np.int16)).max()) if x.size else 0
        if d:
            n += 1
            worst = max(worst, d)
    return n, worst


def _rng_states():
    import numpy as np

    states: dict[str, Any] = {"numpy": np.random.get_state()[1].copy()}
    if "torch" in sys.modules:
        import torch

        states["torch"] = torch.random.get_rng_state().clone()
    return states


def _rng_changed(before, after) -> list[str]:
    import numpy as np

    changed = []
    if not np.array_equal(before["numpy"], after["numpy"]):
        changed.append("numpy")
    if "torch" in before and "torch" in after:
        import torch

        if not torch.equal(before["torch"], after["torch"]):
            changed.append("torch")
    return changed


def validate_adapter(name: str, preset: str | None = None, device: str = "cpu",
                     task: str = "synth-evr", n_samples: int = 4, seed: int = 0) -> AdapterReport:
    """Load adapter ``name`` and run every conformance check (see the module docstring)."""
    import numpy as np
    from PIL import Image

    from benchmark.api import EditModel, EditRequest, EditSample
    from benchmark.files import ImageError, to_rgb_image
    from benchmark.registry import MODELS
    from benchmark.runner import load_samples
    from benchmark.tasks import get_task

    if ":" not in name and name not in MODELS:
        raise MODELS.unknown(name)          # a usage error, with "did you mean"
    target = MODELS.target(name) if name in MODELS else name
    spec = get_task(task)
    samples = [s for s in load_samples(spec, n_samples) if isinstance(s, EditSample)][:n_samples]
    report = AdapterReport(name, str(target), preset, spec.name, len(samples))
    if not samples:
        report.add("samples", FAIL, f"task {spec.name} gave no samples")
        return report

    # ------------------------------------------------------------------ load
    factory, exc = _call(lambda: MODELS.get(name))
    if exc is not None:
        report.add("loads", FAIL, f"cannot import {target}: {_one_line(exc)}")
        return report
    t0 = time.perf_counter()
    model, exc = _call(lambda: factory(preset=preset, device=device))
    if exc is not None:
        report.add("loads", FAIL, f"factory(preset={preset!r}, device={device!r}) raised "
                                  f"{_one_line(exc)}")
        return report
    report.add("loads", PASS, f"{time.perf_counter() - t0:.2f} s")
    if isinstance(getattr(model, "preset", None), str):
        report.preset = model.preset

    # ------------------------------------------------------------------ interface
    problems = []
    for attr in ("name", "preset"):
        v = getattr(model, attr, None)
        if not isinstance(v, str) or not v:
            problems.append(f"{attr} is {v!r}, expected a non-empty str")
    h1, exc = _call(lambda: model.config_hash)
    h2, _ = _call(lambda: model.config_hash)
    if exc is not None or not isinstance(h1, str) or not h1:
        problems.append(f"config_hash: {_one_line(exc) if exc else repr(h1)}")
    elif h1 != h2:
        problems.append("config_hash changes between reads")
    w, exc = _call(lambda: model.weights_sha256)
    if exc is not None or not (w is None or isinstance(w, str)):
        problems.append(f"weights_sha256: {_one_line(exc) if exc else repr(w)}, expected str or None")
    if not callable(getattr(model, "edit", None)):
        problems.append("no callable edit(requests)")
    if not problems and not isinstance(model, EditModel):
        problems.append("does not satisfy benchmark.api.EditModel")
    if problems:
        report.add("interface", FAIL, "; ".join(problems))
        if not callable(getattr(model, "edit", None)):
            return report
    else:
        report.add("interface", PASS, f"name {model.name!r}, preset {model.preset!r}, config "
                                      f"{h1[:12]}, weights {(w or 'none')[:12]}")
    if getattr(model, "name", None) != name and ":" not in name and isinstance(getattr(model, "name", None), str):
        report.add("registered name", WARN, f"registered as {name!r} but model.name is {model.name!r}; "
                                            "results and stores use model.name")

    settings = dict(spec.settings)
    reqs = [EditRequest(sample=s, seed=seed, settings=settings) for s in samples]

    # ------------------------------------------------------------------ a batch
    rng_before = _rng_states()
    t0 = time.perf_counter()
    first, exc = _call(lambda: model.edit(reqs))
    batch_seconds = time.perf_counter() - t0
    rng_after = _rng_states()
    if exc is not None:
        report.add("edits a batch", FAIL, f"edit({len(reqs)} requests) raised {_one_line(exc)}")
        return report
    try:
        first = list(first)
    except TypeError:
        report.add("results", FAIL, f"edit returned {type(first).__name__}, expected a list")
        return report
    if len(first) != len(reqs):
        report.add("results", FAIL, f"{len(first)} results for {len(reqs)} requests")
        return report
    if not all(hasattr(r, "image") for r in first):
        report.add("results", FAIL, "results must be EditResult (with .image)")
        return report
    bad_expr = [i for i, r in enumerate(first) if getattr(r, "expressive", None) is not None
                and not isinstance(r.expressive, str)]
    report.add("results", FAIL if bad_expr else PASS,
               f"expressive of result {bad_expr[0]} is not str" if bad_expr
               else f"{len(first)} results for {len(reqs)} requests"
               + (", with expressive instructions" if any(getattr(r, 'expressive', None) for r in first) else ""))

    # ------------------------------------------------------------------ output format
    out_problems, warns, arrays = [], [], []
    for req, res in zip(reqs, first):
        raw = res.image
        try:
            im = to_rgb_image(raw)
        except ImageError as exc2:
            out_problems.append(f"{req.sample.id}: {exc2}")
            continue
        arr = np.asarray(im)
        arrays.append(arr)
        if hasattr(raw, "detach"):
            raw = raw.detach().cpu().float().numpy()
        if not isinstance(raw, Image.Image):
            values = np.asarray(raw)
            if np.issubdtype(values.dtype, np.floating) and values.size:
                lo, hi = float(values.min()), float(values.max())
                if lo < 0.0 or hi > 1.0:
                    warns.append(f"{req.sample.id}: float values in [{lo:.3g}, {hi:.3g}] are "
                                 "clipped to [0, 1]")
        if im.size != req.sample.source.size:
            warns.append(f"{req.sample.id}: output {im.size[0]}x{im.size[1]} vs source "
                         f"{req.sample.source.size[0]}x{req.sample.source.size[1]} (metrics resize "
                         "outputs to the target, bicubic)")
    if out_problems:
        report.add("output", FAIL, "; ".join(out_problems[:3]))
        return report
    report.add("output", WARN if warns else PASS,
               "; ".join(warns[:3]) if warns else
               f"8-bit RGB, {arrays[0].shape[1]}x{arrays[0].shape[0]} like the source, in range")

    # ------------------------------------------------------------------ determinism
    again, exc = _call(lambda: model.edit(reqs))
    if exc is not None:
        report.add("determinism", FAIL, f"second identical call raised {_one_line(exc)}")
    else:
        n, worst = _diff(arrays, _arrays(again))
        report.add("determinism", FAIL if n else PASS,
                   f"{n} of {len(reqs)} outputs differ on a repeat (max |diff| {worst}/255)" if n
                   else f"same seed, same pixels ({len(reqs)} outputs)")

    # ------------------------------------------------------------------ batch-size invariance
    singles, times, exc = [], [], None
    for r in reqs:
        t1 = time.perf_counter()
        got, exc = _call(lambda r=r: model.edit([r]))
        times.append(time.perf_counter() - t1)
        if exc is not None:
            break
        singles.extend(got)
    if exc is not None:
        report.add("batch-size invariance", FAIL, f"a batch of one raised {_one_line(exc)}")
    else:
        n1, w1 = _diff(arrays, _arrays(singles))
        rev, exc = _call(lambda: model.edit(list(reversed(reqs))))
        n2, w2 = (0, 0) if exc else _diff(arrays, list(reversed(_arrays(rev))))
        if exc is not None:
            report.add("batch-size invariance", FAIL, f"the reversed batch raised {_one_line(exc)}")
        elif n1 or n2:
            report.add("batch-size invariance", FAIL,
                       f"batch vs one at a time: {n1} outputs differ (max {w1}/255); reversed "
                       f"order: {n2} differ (max {w2}/255). Draw noise per request from "
                       "request.generator()")
        else:
            report.add("batch-size invariance", PASS,
                       f"batch of {len(reqs)} = one at a time = reversed order")

    # ------------------------------------------------------------------ global RNG
    touched = _rng_changed(rng_before, rng_after)
    report.add("global RNG untouched", WARN if touched else PASS,
               f"edit() changed the global {' and '.join(touched)} RNG state; draw noise from "
               "request.generator() instead" if touched else "torch and numpy global states unchanged")

    # ------------------------------------------------------------------ seed dependence
    other = [EditRequest(sample=r.sample, seed=seed + 1, settings=settings) for r in reqs]
    res_other, exc = _call(lambda: model.edit(other))
    if exc is not None:
        report.add("seed dependence", FAIL, f"seed {seed + 1} raised {_one_line(exc)}")
    else:
        n, _ = _diff(arrays, _arrays(res_other))
        report.add("seed dependence", INFO, f"seed {seed + 1} changes {n} of {len(reqs)} outputs"
                   + (" (a deterministic editor)" if n == 0 else ""))

    # ------------------------------------------------------------------ awkward inputs
    raised_any = False
    for label, sample in (("empty instruction", samples[0].replace(instruction="")),
                          ("odd-sized source", _odd_sized(samples[0]))):
        got, exc = _call(lambda s=sample: model.edit([EditRequest(sample=s, seed=seed, settings=settings)]))
        if exc is None:
            try:
                im = to_rgb_image(list(got)[0].image)
                report.add(label, PASS, f"returns a {im.size[0]}x{im.size[1]} image")
            except Exception as exc3:  # noqa: BLE001
                report.add(label, FAIL, f"returns something the runner cannot use: {_one_line(exc3)}")
        elif isinstance(exc, Exception):
            raised_any = True
            report.add(label, PASS, f"raises {_one_line(exc)} (recorded as that sample's failure)")
        else:
            raised_any = True
            report.add(label, FAIL, f"raises {type(exc).__name__}, which is not an Exception: it "
                                    "would end the whole run")

    # ------------------------------------------------------------------ recovery
    after, exc = _call(lambda: model.edit(reqs[:1]))
    if exc is not None:
        report.add("recovers", FAIL, f"a normal edit after the awkward inputs raised {_one_line(exc)}")
    else:
        n, worst = _diff(arrays[:1], _arrays(after))
        report.add("recovers", FAIL if n else PASS,
                   f"the same request gives other pixels afterwards (max {worst}/255)" if n else
                   ("state intact after an exception" if raised_any else "state intact after awkward inputs"))

    # ------------------------------------------------------------------ speed
    report.add("seconds per edit", INFO,
               f"{batch_seconds / len(reqs):.4g} s batched (batch of {len(reqs)}), "
               f"{sum(times) / max(len(times), 1):.4g} s one at a time, on {device}")
    return report


def _odd_sized(sample):
    from PIL import Image

    w, h = 37, 29
    return sample.replace(source=sample.source.resize((w, h), Image.BICUBIC),
                          target=None if sample.target is None else sample.target.resize((w, h), Image.BICUBIC),
                          mask=None if sample.mask is None else sample.mask.resize((w, h), Image.NEAREST))


def cmd_validate_adapter(args) -> int:
    report = validate_adapter(args.name, preset=args.preset, device=args.device, task=args.task,
                              n_samples=args.samples, seed=args.seed)
    print(report.format())
    if args.json:
        from benchmark.files import atomic_write_json

        atomic_write_json(args.json, report.to_dict())
    return 0 if report.ok else 1


def add_cli(sub) -> None:
    v = sub.add_parser("validate-adapter", help="conformance report for a model adapter")
    v.add_argument("name", help="registered model name (entry point) or module:object")
    v.add_argument("--preset", default=None)
    v.add_argument("--device", default="cpu")
    v.add_argument("--task", default="synth-evr", help="task whose samples are used (default synth-evr)")
    v.add_argument("--samples", type=int, default=4, help="number of samples (default 4)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--json", default=None, help="also write the report as JSON")
    v.set_defaults(func=cmd_validate_adapter)


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(validate_adapter(sys.argv[1]).to_dict(), indent=1))
