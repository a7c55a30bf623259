"""``editbench datasets verify NAME --data-dir D``: is a download complete and readable?

For each split it loads every item through the dataset's own loader (so it checks exactly what a
run would read), counts them against the published numbers, and lists missing files (the first
few by name, all of them counted), unreadable images and other per-item failures. The result is
a ``VerifyReport`` (``format()`` for people, ``to_dict()`` for JSON) and an exit code: 0 when
every split found matches and nothing failed, 1 otherwise. A split whose annotation file is
absent is reported and, unless asked for by ``--split``, not counted as a failure (a user may
have downloaded only the test set); no split found at all is a failure.

The cli hook: ``add_cli(subparsers)`` adds ``datasets verify`` to ``editbench``'s parser.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
from dataclasses import dataclass, field
from typing import Any

from benchmark.api import FailedSample

__all__ = ["Published", "PUBLISHED", "SplitReport", "VerifyReport", "verify", "add_cli", "cmd_verify"]

FIRST_FEW = 5
APPROX_TOLERANCE = 0.02  # "about 120", "29.9K": within 2%


@dataclass(frozen=True)
class Published:
    module: str
    splits: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict)     # exact published numbers
    approx: dict[str, int] = field(default_factory=dict)     # "about N"
    sessions: dict[str, int] = field(default_factory=dict)   # multi-turn sessions
    total_approx: int | None = None                          # a total over all splits
    options: dict[str, Any] = field(default_factory=dict)    # loader options for verifying
    source: str = ""


PUBLISHED: dict[str, Published] = {
    "magicbrush": Published(
        "benchmark.datasets.magicbrush", ("train", "dev", "test"),
        {"train": 8807, "dev": 528, "test": 1053}, sessions={"test": 535},
        options={"captions": "none"},
        source="train/dev: hub card osunlp/MagicBrush; test: 1,053 turns / 535 sessions (paper)"),
    "evr": Published(
        "benchmark.datasets.evr", ("train", "valid", "test"),
        {"train": 3061, "valid": 1149, "test": 1485}, options={"resize": "none"},
        source="one triple per sentence, as MGIE counts them (5.7K in total)"),
    "gier": Published(
        "benchmark.datasets.gier", ("train", "val", "test"), total_approx=29900,
        options={"resize": "none"}, source="29.9K triples in total (per-split numbers unpublished)"),
    "ma5k": Published(
        "benchmark.datasets.ma5k", ("train", "val", "test"),
        {"train": 17325, "val": 2475, "test": 4950}, options={"resize": "none"},
        source="jshi31/T2ONet README (7:1:2 of 4,950 x 5)"),
    "humanedit": Published(
        "benchmark.datasets.humanedit", ("test", "train"), {"test": 500, "train": 5251},
        source="hub card BryanW/HumanEdit: 5,751 rows; our reproducible 500-pair test split "
               "(MIND-Edit reports 5,244 / 500)"),
    "complex-multistep": Published(
        "benchmark.datasets.complex_multistep", ("test",), approx={"test": 120},
        source="about 120 rows (MIND-Edit; hub listing)"),
    "ipr2pr": Published(
        "benchmark.datasets.ipr2pr", ("train",), {"train": 313010},
        source="hub card timbrooks/instructpix2pix-clip-filtered (the folder layout has no "
               "published count)"),
}


@dataclass
class SplitReport:
    split: str
    found: int | None = None            # items loaded (None: split absent or schema error)
    expected: int | None = None
    approx: bool = False
    sessions: int | None = None
    expected_sessions: int | None = None
    missing: list[str] = field(default_factory=list)
    n_missing: int = 0
    unreadable: list[str] = field(default_factory=list)
    n_unreadable: int = 0
    other: list[str] = field(default_factory=list)
    n_other: int = 0
    absent: str | None = None           # why the split could not be read at all
    error: str | None = None            # a schema error
    required: bool = False              # asked for explicitly

    @property
    def count_ok(self) -> bool | None:
        if self.found is None or self.expected is None:
            return None
        if self.approx:
            return abs(self.found - self.expected) <= APPROX_TOLERANCE * self.expected
        ok = self.found == self.expected
        if self.expected_sessions is not None and self.sessions is not None:
            ok = ok and self.sessions == self.expected_sessions
        return ok

    @property
    def ok(self) -> bool:
        if self.error is not None:
            return False
        if self.absent is not None:
            return not self.required
        return (self.count_ok is not False and not self.n_missing and not self.n_unreadable
                and not self.n_other)

    def to_dict(self) -> dict[str, Any]:
        return {"split": self.split, "found": self.found, "expected": self.expected,
                "approx": self.approx, "count_ok": self.count_ok, "sessions": self.sessions,
                "expected_sessions": self.expected_sessions, "missing": self.missing,
                "n_missing": self.n_missing, "unreadable": self.unreadable,
                "n_unreadable": self.n_unreadable, "other": self.other, "n_other": self.n_other,
                "absent": self.absent, "error": self.error, "ok": self.ok}


@dataclass
class VerifyReport:
    name: str
    data_dir: str | None
    splits: list[SplitReport]
    source: str = ""
    total_approx: int | None = None

    @property
    def total(self) -> int | None:
        if any(s.found is None for s in self.splits):
            return None
        return sum(s.found or 0 for s in self.splits)

    @property
    def total_ok(self) -> bool | None:
        if self.total_approx is None or self.total is None:
            return None
        return abs(self.total - self.total_approx) <= APPROX_TOLERANCE * self.total_approx

    @property
    def ok(self) -> bool:
        present = [s for s in self.splits if s.found is not None]
        return bool(present) and all(s.ok for s in self.splits) and self.total_ok is not False

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "data_dir": self.data_dir, "ok": self.ok, "source": self.source,
                "total": self.total, "total_expected_approx": self.total_approx,
                "splits": [s.to_dict() for s in self.splits]}

    def format(self) -> str:
        lines = [f"{self.name} in {self.data_dir or '(hub)'}"]
        for s in self.splits:
            head = f"  {s.split}: "
            if s.error is not None:
                lines.append(head + f"ERROR {s.error}")
                continue
            if s.absent is not None:
                lines.append(head + f"{'MISSING' if s.required else 'not found'} ({s.absent})")
                continue
            if s.expected is None:
                verdict = "no published number"
            else:
                verdict = (f"published {'about ' if s.approx else ''}{s.expected}: "
                           f"{'ok' if s.count_ok else 'MISMATCH'}")
            text = f"{s.found} items ({verdict})"
            if s.sessions is not None:
                text += f", {s.sessions} sessions" + (
                    f" (published {s.expected_sessions})" if s.expected_sessions is not None else "")
            lines.append(head + text)
            for label, first, n in (("missing files", s.missing, s.n_missing),
                                    ("unreadable images", s.unreadable, s.n_unreadable),
                                    ("other failures", s.other, s.n_other)):
                if n:
                    more = f" (and {n - len(first)} more)" if n > len(first) else ""
                    lines.append(f"    {label}: {n}{more}")
                    lines.extend(f"      {x}" for x in first)
        if self.total_approx is not None:
            verdict = {None: "not all splits found", True: "ok", False: "MISMATCH"}[self.total_ok]
            lines.append(f"  total: {self.total if self.total is not None else '-'} "
                         f"(published about {self.total_approx}: {verdict})")
        if self.source:
            lines.append(f"  published numbers: {self.source}")
        lines.append("OK" if self.ok else "NOT OK")
        return "\n".join(lines)


_MISSING_PATH = re.compile(r"missing: (.+)$")


def _classify(item: FailedSample, report: SplitReport) -> None:
    msg = item.error
    m = _MISSING_PATH.search(msg)
    if m or " not found: " in msg:
        report.n_missing += 1
        if len(report.missing) < FIRST_FEW:
            report.missing.append(m.group(1) if m else msg)
    elif "cannot be decoded" in msg:
        report.n_unreadable += 1
        if len(report.unreadable) < FIRST_FEW:
            report.unreadable.append(f"{item.id}: {msg}")
    else:
        report.n_other += 1
        if len(report.other) < FIRST_FEW:
            report.other.append(f"{item.id}: {msg}")


def _unknown(name: str) -> Exception:
    from benchmark.registry import UnknownNameError

    close = difflib.get_close_matches(name, list(PUBLISHED), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return UnknownNameError(f"unknown dataset {name!r}{hint} (verifiable: {', '.join(PUBLISHED)})")


def verify(name: str, data_dir: str | None, splits: list[str] | None = None,
           workers: int | None = None, options: dict[str, Any] | None = None) -> VerifyReport:
    """Load every split of ``name`` from ``data_dir`` and compare it with what was published."""
    if name not in PUBLISHED:
        raise _unknown(name)
    pub = PUBLISHED[name]
    module = importlib.import_module(pub.module)
    wanted = list(splits) if splits else list(pub.splits)
    opts = {**pub.options, **(options or {})}
    if workers is not None:
        opts["workers"] = workers
    reports = []
    for split in wanted:
        rep = SplitReport(split=split, required=bool(splits))
        if split in pub.counts:
            rep.expected = pub.counts[split]
        elif split in pub.approx:
            rep.expected, rep.approx = pub.approx[split], True
        rep.expected_sessions = pub.sessions.get(split)
        try:
            items = module.iterate(data_dir=data_dir, split=split, **opts)
            found, sessions = 0, set()
            for item in items:
                found += 1
                if item.session_id is not None:
                    sessions.add(item.session_id)
                if isinstance(item, FailedSample):
                    _classify(item, rep)
            rep.found = found
            if rep.expected_sessions is not None or sessions:
                rep.sessions = len(sessions)
        except FileNotFoundError as exc:
            rep.absent = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        except ValueError as exc:
            rep.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reports.append(rep)
    return VerifyReport(name=name, data_dir=None if data_dir is None else str(data_dir),
                        splits=reports, source=pub.source,
                        total_approx=pub.total_approx if not splits else None)


# --------------------------------------------------------------------------- command line
def cmd_verify(args: argparse.Namespace) -> int:
    opts = {}
    for text in args.option or []:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise ValueError(f"--option takes KEY=VALUE, got {text!r}")
        opts[key] = value
    report = verify(args.name, args.data_dir, splits=args.split, workers=args.workers, options=opts)
    print(report.format())
    if args.json:
        from benchmark.files import atomic_write_json

        atomic_write_json(args.json, report.to_dict())
    return report.exit_code


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``datasets verify`` to the ``editbench`` parser's subcommands; returns its parser."""
    p = subparsers.add_parser("datasets", help="check benchmark downloads")
    sub = p.add_subparsers(dest="datasets_command", required=True, metavar="ACTION")
    v = sub.add_parser("verify", help="count a download against the published numbers and list "
                       "missing or unreadable files (exit 1 when something is off)")
    v.add_argument("name", help=f"dataset: {', '.join(PUBLISHED)}")
    v.add_argument("--data-dir", default=None, help="where the benchmark was unpacked (hub "
                   "datasets are fetched when omitted and the hub is reachable)")
    v.add_argument("--split", action="append", default=None,
                   help="split to check (repeatable; default: every published split)")
    v.add_argument("--option", action="append", default=None, metavar="KEY=VALUE",
                   help="loader option, e.g. image_dir=pairs (repeatable)")
    v.add_argument("--workers", type=int, default=None, help="decoding threads")
    v.add_argument("--json", default=None, help="also write the report as JSON to this path")
    v.set_defaults(func=cmd_verify)
    return p
