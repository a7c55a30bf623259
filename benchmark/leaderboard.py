"""Leaderboards: versioned tables from result JSONs, paper-reported rows, a rendered page, the
drift check, and validated submissions.

Storage (``leaderboards/`` by default; see ``leaderboards/README.md``)::

    tables/<task>/v<N>.json     one leaderboard version of a task: its signature and its rows
    reference/*.yaml            numbers reported by papers, with their source (never ranked)
    golden/drift.json           golden values of the drift check, with the history of updates
    sweeps/<task>/*.json        `editbench sweep` curves (plotted by `render`)

Rows. A row is keyed by (task, model, preset, weights sha256, backbone set, task version, limit);
adding a result with the key of an existing row replaces that row. Its columns are every metric's
mean ± std over seeds and 95% CI, timing, device, date, package version and git commit.

Versions. A leaderboard version is fixed by its signature: task name, task version, task hash and
the version of every metric (``metrics.<key>.version`` when a result records one). A result whose
signature matches no version starts version N+1; older versions stay in place, readable.

Backbones. Rows made with different metric backbones (``metrics.<key>.backbone`` and
``backbone_sha256``) form separate groups: each group is its own table and ranking, so numbers
from synth backbones never sit in a ranking with numbers from standard ones.

Concurrency. Every update takes an exclusive lock (``<dir>/.lock``, ``fcntl.flock``), re-reads
the version file, changes it, and replaces it atomically (temp file + rename): two runs updating
the board at once both land, and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import html
import io
import json
import math
import os
import re
import sys
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.api import stable_hash
from benchmark.files import atomic_write_bytes, atomic_write_json, sha256_bytes
from benchmark.results import device_label

__all__ = [
    "DEFAULT_DIR", "Leaderboard", "AddOutcome", "row_key", "make_row", "board_signature",
    "backbone_set", "backbone_label", "load_reference", "reported_records", "render",
    "DriftSpec", "run_drift", "compare_drift", "check_drift", "update_golden",
    "bundle", "submit", "SubmissionRejected", "add_cli", "COMMANDS",
]

DEFAULT_DIR = "leaderboards"
DEFAULT_GOLDEN = os.path.join(DEFAULT_DIR, "golden", "drift.json")
COMMANDS = ("leaderboard", "check-drift", "bundle", "submit")
_VERSION_FILE = re.compile(r"^v(\d+)\.json$")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _short(text: str | None, n: int = 12) -> str:
    return "-" if not text else str(text)[:n]


# =========================================================================== locking
@contextlib.contextmanager
def locked(root: str | os.PathLike) -> Iterator[None]:
    """An exclusive lock on a leaderboard folder, held across processes."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / ".lock"
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        from filelock import FileLock

        with FileLock(str(path)):
            yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# =========================================================================== rows
def backbone_set(result: Mapping[str, Any]) -> dict[str, list[str | None]]:
    """``{metric: [backbone, backbone_sha256]}`` for every metric that used a backbone."""
    out = {}
    for key, m in sorted(result["metrics"].items()):
        if m.get("backbone") or m.get("backbone_sha256"):
            out[key] = [m.get("backbone"), m.get("backbone_sha256")]
    return out


def backbone_label(backbones: Mapping[str, Sequence[str | None]]) -> str:
    """A short readable id of a backbone set: ``none`` or ``name@sha12, ...``."""
    if not backbones:
        return "none"
    uniq = sorted({f"{b or '?'}@{_short(s)}" for b, s in backbones.values()})
    return ", ".join(uniq)


def board_signature(result: Mapping[str, Any]) -> dict[str, Any]:
    """What fixes a leaderboard version: the task (name, version, hash) and metric versions."""
    task = result["task"]
    return {
        "task": task["name"],
        "task_version": task["version"],
        "task_hash": task["hash"],
        "metric_versions": {k: m.get("version") for k, m in sorted(result["metrics"].items())},
    }


def row_key(result: Mapping[str, Any]) -> dict[str, Any]:
    model = result["model"]
    key = {
        "task": result["task"]["name"],
        "model": model["name"],
        "preset": model.get("preset"),
        "weights_sha256": model.get("weights_sha256"),
        "backbones": backbone_set(result),
        "task_version": result["task"]["version"],
        "limit": result["protocol"].get("limit"),
    }
    if model.get("variant"):  # e.g. bfloat16 inference: same weights, other numbers, own row
        key["variant"] = model["variant"]
    return key


def make_row(result: Mapping[str, Any], source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A leaderboard row from a result (schema-checked first)."""
    from benchmark.results import validate_result

    validate_result(result)
    key = row_key(result)
    timing = result.get("timing", {})
    env = result.get("env", {})
    protocol = result["protocol"]
    blob = json.dumps(result, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return {
        "row_id": stable_hash(key)[:16],
        "key": key,
        "model": result["model"]["name"],
        "preset": result["model"].get("preset") + (f" ({key['variant']})" if "variant" in key else ""),
        "config_hash": result["model"].get("config_hash"),
        "weights_sha256": result["model"].get("weights_sha256"),
        "backbones": key["backbones"],
        "backbone_label": backbone_label(key["backbones"]),
        "metrics": {k: dict(v) for k, v in result["metrics"].items()},
        "by_category": result.get("by_category", {}),
        "protocol": {"seeds": list(protocol["seeds"]), "n_samples": protocol["n_samples"],
                     "limit": protocol.get("limit"), "settings": protocol.get("settings", {})},
        "failures": len(result.get("failures", [])),
        "timing": {k: timing.get(k) for k in ("seconds_per_edit", "edits_per_second",
                                              "peak_memory_mb", "device", "processor", "threads",
                                              "batch_size")},
        "env": {k: env.get(k) for k in ("package_version", "git_commit", "torch", "python",
                                        "platform")},
        "outputs": {"task_store_hash": result["task"].get("store_hash")},
        "headline": list(result["task"].get("headline", [])),
        "date": _now(),
        "source": {"result_sha256": sha256_bytes(blob.encode("utf-8")), **dict(source or {})},
    }


# =========================================================================== storage
@dataclass
class AddOutcome:
    task: str
    version: int
    row_id: str
    new_version: bool
    replaced: bool
    path: Path
    unchanged: bool = False

    def describe(self) -> str:
        if self.unchanged:
            return f"{self.task} v{self.version}: row {self.row_id} unchanged (same result)"
        what = "replaced row" if self.replaced else "added row"
        new = " (new leaderboard version)" if self.new_version else ""
        return f"{self.task} v{self.version}{new}: {what} {self.row_id}"


class Leaderboard:
    """Versioned tables under ``root/tables/<task>/v<N>.json``."""

    def __init__(self, root: str | os.PathLike = DEFAULT_DIR):
        self.root = Path(root)

    # ------------------------------------------------------------------ reading
    def task_dir(self, task: str) -> Path:
        from benchmark.store import safe_name

        return self.root / "tables" / safe_name(task)

    def tasks(self) -> list[str]:
        base = self.root / "tables"
        if not base.is_dir():
            return []
        names = []
        for d in sorted(base.iterdir()):
            if d.is_dir() and self.versions_in(d):
                names.append(self._load_path(d / f"v{self.versions_in(d)[-1]}.json")["signature"]["task"])
        return names

    @staticmethod
    def versions_in(d: Path) -> list[int]:
        if not d.is_dir():
            return []
        return sorted(int(m.group(1)) for p in d.iterdir() if (m := _VERSION_FILE.match(p.name)))

    def versions(self, task: str) -> list[int]:
        return self.versions_in(self.task_dir(task))

    @staticmethod
    def _load_path(path: Path) -> dict[str, Any]:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)

    def load(self, task: str, version: int | None = None) -> dict[str, Any]:
        versions = self.versions(task)
        if not versions:
            raise FileNotFoundError(f"no leaderboard for task {task!r} in {self.root}")
        version = versions[-1] if version is None else version
        if version not in versions:
            raise FileNotFoundError(f"task {task!r} has no leaderboard version v{version} "
                                    f"(versions: {', '.join(f'v{v}' for v in versions)})")
        return self._load_path(self.task_dir(task) / f"v{version}.json")

    # ------------------------------------------------------------------ writing
    def add(self, result: Mapping[str, Any], source: Mapping[str, Any] | None = None) -> AddOutcome:
        """Add (or replace) the row of ``result`` in the version matching its signature."""
        row = make_row(result, source)
        sig = board_signature(result)
        d = self.task_dir(sig["task"])
        with locked(self.root):
            versions = self.versions_in(d)
            target = None
            for v in versions:
                board = self._load_path(d / f"v{v}.json")
                if board["signature"] == sig:
                    target = (v, board)
                    break
            new_version = target is None
            if new_version:
                v = (versions[-1] + 1) if versions else 1
                board = {"format": 1, "leaderboard_version": v, "signature": sig,
                         "created": _now(), "reason": _version_reason(d, versions, sig), "rows": []}
            else:
                v, board = target
            rows = [r for r in board["rows"] if r["row_id"] != row["row_id"]]
            replaced = len(rows) != len(board["rows"])
            path = d / f"v{v}.json"
            if replaced:
                old = next(r for r in board["rows"] if r["row_id"] == row["row_id"])
                if old.get("source", {}).get("result_sha256") == row["source"]["result_sha256"]:
                    # The very same result again (e.g. `leaderboard add results/` after each
                    # run): nothing to change, the file is left as it is.
                    return AddOutcome(sig["task"], v, row["row_id"], False, False, path, unchanged=True)
                row["first_added"] = old.get("first_added", old.get("date"))
            else:
                row["first_added"] = row["date"]
            rows.append(row)
            board["rows"] = sorted(rows, key=lambda r: (r["model"], str(r["preset"]), r["row_id"]))
            board["updated"] = _now()
            atomic_write_json(path, board)
        return AddOutcome(sig["task"], v, row["row_id"], new_version, replaced, path)

    def add_file(self, path: str | os.PathLike, source: Mapping[str, Any] | None = None) -> AddOutcome:
        with open(path, encoding="utf-8") as fh:
            result = json.load(fh)
        return self.add(result, {"kind": "run", "path": str(path), **dict(source or {})})

    # ------------------------------------------------------------------ tables
    def frame(self, task: str, version: int | None = None):
        return board_frame(self.load(task, version))


def _version_reason(d: Path, versions: list[int], sig: Mapping[str, Any]) -> str:
    if not versions:
        return "first version"
    prev = Leaderboard._load_path(d / f"v{versions[-1]}.json")["signature"]
    reasons = []
    if prev["task_version"] != sig["task_version"]:
        reasons.append(f"task version {prev['task_version']} -> {sig['task_version']}")
    elif prev["task_hash"] != sig["task_hash"]:
        reasons.append(f"task hash {_short(prev['task_hash'])} -> {_short(sig['task_hash'])}")
    changed = sorted(k for k in set(prev["metric_versions"]) | set(sig["metric_versions"])
                     if prev["metric_versions"].get(k) != sig["metric_versions"].get(k))
    if changed:
        reasons.append("metric versions changed: " + ", ".join(
            f"{k} {prev['metric_versions'].get(k)} -> {sig['metric_versions'].get(k)}" for k in changed))
    return "; ".join(reasons) or "signature changed"


def expand_result_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Result files named, and every ``*.json`` under folders named (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*.json") if q.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"result file not found: {p}")
    return out


# =========================================================================== pandas tables
def _metric_order(board: Mapping[str, Any]) -> list[str]:
    keys: list[str] = []
    headline: list[str] = []
    for r in board["rows"]:
        for k in r.get("headline", []):
            if k not in headline:
                headline.append(k)
        for k in r["metrics"]:
            if k not in keys:
                keys.append(k)
    return [k for k in headline if k in keys] + sorted(k for k in keys if k not in headline)


def primary_metric(board: Mapping[str, Any]) -> str | None:
    order = _metric_order(board)
    return order[0] if order else None


def board_frame(board: Mapping[str, Any]):
    """One row per leaderboard row: identity, every metric's mean/std/CI, timing, provenance.
    ``rank`` is by the primary metric (first headline metric present), within a backbone group."""
    import pandas as pd

    metrics = _metric_order(board)
    records = []
    for r in board["rows"]:
        rec: dict[str, Any] = {
            "row_id": r["row_id"], "model": r["model"], "preset": r["preset"],
            "weights": _short(r.get("weights_sha256")), "backbones": r["backbone_label"],
            "n_samples": r["protocol"]["n_samples"], "n_seeds": len(r["protocol"]["seeds"]),
            "limit": r["protocol"].get("limit"), "failures": r.get("failures", 0),
        }
        for k in metrics:
            m = r["metrics"].get(k) or {}
            ci = m.get("ci95") or [None, None]
            rec[k] = m.get("mean")
            rec[f"{k}_std"] = m.get("std")
            rec[f"{k}_ci_lo"], rec[f"{k}_ci_hi"] = ci[0], ci[1]
        t = r.get("timing", {})
        rec.update({"seconds_per_edit": t.get("seconds_per_edit"), "device": device_label(t),
                    "date": r.get("date"), "package_version": r["env"].get("package_version"),
                    "git_commit": _commit(r["env"].get("git_commit"))})
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    if df.empty:
        return df
    for k in metrics:
        df[k] = pd.to_numeric(df[k], errors="coerce")
    primary = primary_metric(board)
    hib = _higher_is_better(board, primary)
    if primary is not None:
        df["rank"] = (df.groupby("backbones")[primary]
                      .rank(method="min", ascending=not hib).astype("Int64"))
        df = df.sort_values(["backbones", "rank", "model"], na_position="last", kind="stable")
    return df.reset_index(drop=True)


def _higher_is_better(board: Mapping[str, Any], key: str | None,
                      reported: Sequence[Mapping[str, Any]] = ()) -> bool:
    for r in board["rows"]:
        if key in r["metrics"]:
            return bool(r["metrics"][key]["higher_is_better"])
    for rep in reported:
        if key in rep["values"] and rep["values"][key].get("higher_is_better") is not None:
            return bool(rep["values"][key]["higher_is_better"])
    return False


def _commit(c: str | None) -> str:
    if not c:
        return "-"
    return c[:8] + ("-dirty" if c.endswith("-dirty") else "")


def fmt_num(v: float | None, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    v = float(v)
    if abs(v) >= 1000:
        return f"{v:.1f}"
    if abs(v) >= 10:
        return f"{v:.2f}"
    return f"{v:.{digits}f}"


def fmt_cell(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return fmt_num(mean) if std is None else f"{fmt_num(mean)} ± {fmt_num(std)}"


def format_board_text(board: Mapping[str, Any]) -> str:
    """A plain-text view of one leaderboard version (``editbench leaderboard show``)."""
    df = board_frame(board)
    sig = board["signature"]
    head = (f"{sig['task']} v{board['leaderboard_version']} (task version {sig['task_version']}, "
            f"hash {_short(sig['task_hash'])})")
    if df.empty:
        return head + "\n(no rows)"
    metrics = _metric_order(board)
    lines = [head]
    for group, sub in df.groupby("backbones", sort=True):
        lines.append(f"backbones: {group}")
        table = [["rank", "model", "preset", *metrics, "s/edit", "device"]]
        for _, row in sub.iterrows():
            table.append([str(row.get("rank", "")) if row.get("rank") is not None else "-",
                          str(row["model"]), str(row["preset"]),
                          *[fmt_cell(_nan_none(row[k]), _nan_none(row[f"{k}_std"])) for k in metrics],
                          fmt_num(_nan_none(row["seconds_per_edit"]), 5), str(row["device"])])
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        for i, r in enumerate(table):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _nan_none(v: Any) -> Any:
    try:
        import pandas as pd

        if v is None or pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


# =========================================================================== reference rows
SHIPPED_REFERENCE = Path(__file__).resolve().parent.parent / DEFAULT_DIR / "reference"


def reference_dir(root: str | os.PathLike) -> Path:
    """``<root>/reference`` when it exists, else the reference rows shipped with editbench."""
    d = Path(root) / "reference"
    return d if d.is_dir() else SHIPPED_REFERENCE


def _reference_files(root: Path) -> list[Path]:
    d = reference_dir(root)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.suffix in (".yaml", ".yml", ".json"))


def load_reference(root: str | os.PathLike = DEFAULT_DIR) -> list[dict[str, Any]]:
    """Every reported table: ``{paper, id, table, caption, setting, columns, rows}``, each row's
    ``values`` parsed into floats (None for "-"). Raises ValueError naming a malformed row."""
    import yaml

    tables = []
    for path in _reference_files(Path(root)):
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) if path.suffix != ".json" else json.load(fh)
        paper = doc["paper"]
        for t in doc.get("tables", []):
            cols = t["columns"]
            rows = []
            for r in t["rows"]:
                tokens = str(r["values"]).split()
                if len(tokens) != len(cols):
                    raise ValueError(f"{path.name} {t['table']} row {r['method']!r}: "
                                     f"{len(tokens)} values for {len(cols)} columns")
                try:
                    values = [None if tok == "-" else float(tok) for tok in tokens]
                except ValueError:
                    raise ValueError(f"{path.name} {t['table']} row {r['method']!r}: "
                                     f"non-numeric value in {r['values']!r}") from None
                rows.append({**r, "tokens": tokens, "parsed": values})
            tables.append({"paper": paper, "file": path.name, "id": t["id"], "table": t["table"],
                           "caption": t.get("caption", ""), "setting": t.get("setting"),
                           "columns": cols, "rows": rows})
    return tables


def reported_records(root: str | os.PathLike = DEFAULT_DIR) -> list[dict[str, Any]]:
    """One record per reported number, with its source and the value in editbench's units
    (``value / scale``)."""
    out = []
    for t in load_reference(root):
        for r in t["rows"]:
            for col, tok, val in zip(t["columns"], r["tokens"], r["parsed"]):
                if val is None:
                    continue
                scale = float(col.get("scale", 1))
                out.append({
                    "paper": t["paper"]["name"], "paper_id": t["paper"]["id"],
                    "table": t["table"], "table_id": t["id"], "setting": col.get("setting", t["setting"]),
                    "method": r["method"], "variant": r.get("variant"),
                    "dataset": col.get("dataset", r.get("dataset")), "task": col.get("task"),
                    "metric": col["metric"], "label": col.get("label", col["metric"]),
                    "reported": tok, "value": val / scale, "scale": scale,
                    "higher_is_better": col.get("higher_is_better"),
                    "source": f"{t['paper']['name']}, {t['table']}",
                })
    return out


def reported_rows_for_task(task: str, root: str | os.PathLike = DEFAULT_DIR) -> list[dict[str, Any]]:
    """Reported rows whose columns belong to ``task``: ``{source, method, variant, setting,
    values: {metric: {value, reported, scale, higher_is_better}}}``. A row repeated with the same
    numbers in several tables of a paper (e.g. the baseline in MGIE's Tables 1, 3, 5 and 6) is
    shown once, naming every table."""
    rows: dict[tuple, dict[str, Any]] = {}
    for rec in reported_records(root):
        if rec["task"] != task:
            continue
        key = (rec["paper_id"], rec["table_id"], rec["method"], rec["variant"], rec["setting"])
        row = rows.setdefault(key, {"source": rec["source"], "paper": rec["paper"],
                                    "tables": [rec["table"]], "method": rec["method"],
                                    "variant": rec["variant"], "setting": rec["setting"],
                                    "values": {}})
        row["values"][rec["metric"]] = {"value": rec["value"], "reported": rec["reported"],
                                        "scale": rec["scale"],
                                        "higher_is_better": rec["higher_is_better"]}
    # Merge rows of one (paper, method, variant, setting) whose numbers never disagree: the
    # baseline printed again in later tables, or FID from the appendix beside Table 1's metrics.
    merged: list[dict[str, Any]] = []
    for row in rows.values():
        for m in merged:
            same = all(m[k] == row[k] for k in ("paper", "method", "variant", "setting"))
            if same and all(m["values"][k]["reported"] == v["reported"]
                            for k, v in row["values"].items() if k in m["values"]):
                for k, v in row["values"].items():
                    m["values"].setdefault(k, {**v, "table": row["tables"][0]})
                m["tables"].extend(t for t in row["tables"] if t not in m["tables"])
                break
        else:
            merged.append({**row, "values": {k: {**v, "table": row["tables"][0]}
                                             for k, v in row["values"].items()}})
    for m in merged:
        m["source"] = f"{m['paper']}, {'; '.join(m['tables'])}"
    return merged


# =========================================================================== rendering
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1b1b;max-width:1400px}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer;user-select:none}th.sorted-asc::after{content:" ▲"}th.sorted-desc::after{content:" ▼"}
td.txt,th.txt{text-align:left}td.src{white-space:normal;min-width:220px;text-align:left}tbody.reported td{background:#fbf7e9;color:#555}
.badge{display:inline-block;font-size:11px;padding:0 5px;border-radius:3px;background:#c9a227;color:#fff;margin-left:4px}
.note{color:#666;font-size:13px}.plots img{max-width:560px;margin:6px;border:1px solid #eee}
.grid td{text-align:center;vertical-align:top;font-size:11px}.grid img{width:96px;height:96px;image-rendering:pixelated}
img.broken{outline:2px solid #c00}code{background:#f5f5f5;padding:0 3px}
"""

_JS = r"""
(function(){
  function val(td){var s=td.getAttribute('data-sort');if(s===null)s=td.textContent;
    if(s===''||s==='-')return null;var f=parseFloat(s);return isNaN(f)?s.toLowerCase():f;}
  function sortBy(table,col,dir){
    Array.prototype.forEach.call(table.tBodies,function(tb){
      var rows=Array.prototype.slice.call(tb.rows);
      rows.sort(function(a,b){var x=val(a.cells[col]),y=val(b.cells[col]);
        if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
        var c=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));
        return dir==='desc'?-c:c;});
      rows.forEach(function(r){tb.appendChild(r);});});
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      th.classList.remove('sorted-asc','sorted-desc');if(i===col)th.classList.add('sorted-'+dir);});
    table.setAttribute('data-sorted',col+':'+dir);}
  document.querySelectorAll('table.sortable').forEach(function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      th.addEventListener('click',function(){
        var cur=table.getAttribute('data-sorted')||'';
        sortBy(table,i,cur===i+':asc'?'desc':'asc');});});});
  var m=/sort=([^:&]+):(\d+):(asc|desc)/.exec(decodeURIComponent(location.hash||''));
  if(m){var t=document.getElementById(m[1]);if(t)sortBy(t,parseInt(m[2],10),m[3]);}
  window.addEventListener('load',function(){var ok=0,bad=0;
    document.querySelectorAll('img').forEach(function(img){
      if(img.complete&&img.naturalWidth>0){ok++;}else{bad++;img.classList.add('broken');}});
    document.body.setAttribute('data-images-loaded',ok);document.body.setAttribute('data-images-broken',bad);
    var s=document.getElementById('image-status');
    if(s)s.textContent=ok+' images loaded'+(bad?', '+bad+' missing':'');});
})();
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _matplotlib():
    """pyplot with the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _save_fig(plt, fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _row_label(r: Mapping[str, Any]) -> str:
    return r["model"] if r.get("preset") in (None, "default") else f"{r['model']} ({r['preset']})"


def plot_seed_spread(plt, rows: Sequence[Mapping[str, Any]], metric: str, path: Path, title: str) -> bool:
    rows = [r for r in rows if metric in r["metrics"]]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(rows) + 2), 3.2))
    for i, r in enumerate(rows):
        vals = [v for v in r["metrics"][metric]["per_seed"] if v is not None]
        ax.scatter([i] * len(vals), vals, s=22, alpha=0.75, label=None)
        if vals:
            mean = sum(vals) / len(vals)
            ax.hlines(mean, i - 0.3, i + 0.3, colors="k", linewidth=1.5)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([_row_label(r) for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    _save_fig(plt, fig, path)
    return True


def plot_category_bars(plt, rows: Sequence[Mapping[str, Any]], metric: str, path: Path, title: str) -> bool:
    cats = sorted({c for r in rows for c, block in r.get("by_category", {}).items() if metric in block})
    rows = [r for r in rows if any(metric in b for b in r.get("by_category", {}).values())]
    if not cats or not rows:
        return False
    fig, ax = plt.subplots(figsize=(max(4.5, 0.9 * len(cats) * max(1, len(rows)) * 0.5 + 2), 3.2))
    width = 0.8 / len(rows)
    for j, r in enumerate(rows):
        means, errs = [], []
        for c in cats:
            m = r["by_category"].get(c, {}).get(metric, {})
            means.append(m.get("mean") if m.get("mean") is not None else float("nan"))
            errs.append(m.get("std") or 0.0)
        xs = [i + (j - (len(rows) - 1) / 2) * width for i in range(len(cats))]
        ax.bar(xs, means, width=width, yerr=errs, capsize=2, label=_row_label(r))
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels(cats, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    _save_fig(plt, fig, path)
    return True


def plot_tradeoff(plt, sweeps: Sequence[Mapping[str, Any]], path: Path, title: str) -> bool:
    """MGIE Fig. 3 style: one curve per model, x = edit metric, y = input-consistency metric,
    each point labelled with the swept value."""
    sweeps = [s for s in sweeps if s.get("points")]
    if not sweeps:
        return False
    fig, ax = plt.subplots(figsize=(4.8, 3.8))
    for s in sweeps:
        pts = [p for p in s["points"] if p.get("x") is not None and p.get("y") is not None]
        if not pts:
            continue
        label = s["model"] if s.get("preset") in (None, "default") else f"{s['model']} ({s['preset']})"
        ax.plot([p["x"] for p in pts], [p["y"] for p in pts], marker="o", markersize=4, label=label)
        for p in pts:
            ax.annotate(f"{p['value']:g}", (p["x"], p["y"]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
    s0 = sweeps[0]
    ax.set_xlabel(f"{s0['x_metric']} (edit)")
    ax.set_ylabel(f"{s0['y_metric']} (input consistency)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    _save_fig(plt, fig, path)
    return True


def load_sweeps(root: str | os.PathLike) -> list[dict[str, Any]]:
    d = Path(root) / "sweeps"
    out = []
    if d.is_dir():
        for p in sorted(d.rglob("*.json")):
            try:
                with open(p, encoding="utf-8") as fh:
                    doc = json.load(fh)
            except (OSError, ValueError):
                continue
            if doc.get("kind") == "editbench-sweep":
                out.append(doc)
    return out


def _thumb(image, path: Path, size: int = 96) -> None:
    from benchmark.files import png_bytes

    im = image.convert("RGB")
    if max(im.size) > 256:
        im.thumbnail((256, 256))
    atomic_write_bytes(path, png_bytes(im))


def build_grid(board: Mapping[str, Any], out_dir: Path, cache_dir: str | os.PathLike,
               n_samples: int = 4) -> tuple[list[str], list[dict[str, Any]], str | None]:
    """Source, target and each row's output (first seed) for the task's first samples, as PNG
    files under ``out_dir/grid/<task>/``. Returns (column labels, grid rows, note)."""
    from benchmark.api import EditSample
    from benchmark.runner import load_samples, scored_samples
    from benchmark.store import OutputStore, safe_name
    from benchmark.tasks import get_task

    sig = board["signature"]
    try:
        task = get_task(sig["task"])
    except Exception as exc:  # noqa: BLE001 - a grid is optional
        return [], [], f"no qualitative grid: task {sig['task']!r} cannot be loaded ({exc})"
    if task.hash != sig["task_hash"]:
        return [], [], "no qualitative grid: this leaderboard version is for an older task spec"
    try:
        items = load_samples(task, n_samples)
    except Exception as exc:  # noqa: BLE001 - real datasets need --data-dir
        return [], [], f"no qualitative grid: samples not available here ({type(exc).__name__})"
    scored = set(scored_samples(task, items))
    samples = [it for it in items if isinstance(it, EditSample) and it.id in scored][:n_samples]
    models: dict[tuple, dict[str, Any]] = {}
    for r in board["rows"]:
        k = (r["model"], r["preset"], r["config_hash"], r["weights_sha256"])
        models.setdefault(k, r)
    columns = ["source", "target"] + [_row_label(r) for r in models.values()]
    gdir = out_dir / "grid" / safe_name(sig["task"])
    grid_rows = []
    found_any = False
    for s in samples:
        outputs = []
        for r in models.values():
            store = OutputStore(cache_dir, sig["task"], r["outputs"].get("task_store_hash") or "",
                                r["model"], r["preset"], r["config_hash"] or "", r["weights_sha256"])
            seed = r["protocol"]["seeds"][0]
            got = store.get(seed, s.id) if r["outputs"].get("task_store_hash") else None
            outputs.append((r, got))
        if not any(got for _, got in outputs):
            continue          # a sample no model of this board has an output for
        found_any = True
        cells = []
        for role, im in (("source", s.source), ("target", s.target)):
            if im is None:
                cells.append(None)
                continue
            p = gdir / f"{safe_name(s.id)}--{role}.png"
            _thumb(im, p)
            cells.append(p.relative_to(out_dir).as_posix())
        for r, got in outputs:
            if got is None:
                cells.append(None)
                continue
            p = gdir / f"{safe_name(s.id)}--{r['row_id']}.png"
            _thumb(got.image, p)
            cells.append(p.relative_to(out_dir).as_posix())
        grid_rows.append({"sample": s.id, "instruction": s.instruction, "cells": cells})
    note = None if found_any else (f"model outputs not found in the output store {cache_dir} "
                                   "(pass --cache-dir where the runs stored them)")
    return columns, grid_rows, note


def _board_table_html(table_id: str, board: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                      reported: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> str:
    """One sortable table: ranked reproduced rows, then reported rows in their own tbody."""
    import pandas as pd

    sub = {"rows": list(rows), "signature": board["signature"], "leaderboard_version": 0}
    df = board_frame(sub) if rows else pd.DataFrame()
    by_id = {r["row_id"]: r for r in rows}
    head = ["rank", "model", "preset", "weights"] + [
        f"{k} {'↑' if _higher_is_better(board, k, reported) else '↓'}" for k in metrics] + [
        "seeds × samples", "failures", "s/edit", "device", "date", "version", "commit", "source"]
    txt_cols = {1, 2, 3, len(head) - 4, len(head) - 3, len(head) - 2, len(head) - 1}
    out = [f'<table class="sortable board" id="{_e(table_id)}"><thead><tr>']
    out += [f'<th class="{"txt" if i in txt_cols else "num"}">{_e(h)}</th>' for i, h in enumerate(head)]
    out.append("</tr></thead><tbody class=\"reproduced\">")
    for _, rec in df.iterrows():
        r = by_id[rec["row_id"]]
        rank = rec.get("rank")
        cells = [f'<td data-sort="{"" if pd.isna(rank) else int(rank)}">{"-" if pd.isna(rank) else int(rank)}</td>',
                 f'<td class="txt">{_e(r["model"])}</td>', f'<td class="txt">{_e(r["preset"])}</td>',
                 f'<td class="txt"><code>{_e(_short(r.get("weights_sha256")))}</code></td>']
        for k in metrics:
            m = r["metrics"].get(k)
            if not m or m.get("mean") is None:
                cells.append('<td data-sort="">-</td>')
                continue
            ci = m.get("ci95")
            tip = f"95% CI [{fmt_num(ci[0])}, {fmt_num(ci[1])}]" if ci else "one seed: no CI"
            tip += f"; per seed: {', '.join(fmt_num(v) for v in m.get('per_seed', []))}"
            if m.get("backbone"):
                tip += f"; backbone {m['backbone']} {_short(m.get('backbone_sha256'))}"
            cells.append(f'<td data-sort="{m["mean"]!r}" title="{_e(tip)}">'
                         f'{_e(fmt_cell(m["mean"], m.get("std")))}</td>')
        t = r.get("timing", {})
        spe = t.get("seconds_per_edit")
        src = r.get("source", {})
        src_text = "submission" if src.get("kind") == "submission" else "run"
        cells += [f'<td data-sort="{r["protocol"]["n_samples"]}">{len(r["protocol"]["seeds"])} × {r["protocol"]["n_samples"]}</td>',
                  f'<td>{r.get("failures", 0)}</td>',
                  f'<td data-sort="{"" if spe is None else spe!r}">{_e(fmt_num(spe, 5))}</td>',
                  f'<td class="txt">{_e(device_label(t))}</td>',
                  f'<td class="txt">{_e((r.get("date") or "")[:10])}</td>',
                  f'<td class="txt">{_e(r["env"].get("package_version"))}</td>',
                  f'<td class="txt"><code>{_e(_commit(r["env"].get("git_commit")))}</code></td>',
                  f'<td class="txt">{_e(src_text)}</td>']
        out.append(f'<tr data-row-id="{_e(r["row_id"])}">' + "".join(cells) + "</tr>")
    out.append('</tbody><tbody class="reported">')
    for rep in reported:
        label = rep["method"] + (f" ({rep['variant']})" if rep.get("variant") else "")
        cells = ['<td data-sort="">-</td>',
                 f'<td class="txt">{_e(label)}<span class="badge">reported</span></td>',
                 f'<td class="txt">{_e(rep.get("setting"))}</td>', '<td class="txt">-</td>']
        for k in metrics:
            v = rep["values"].get(k)
            if v is None:
                cells.append('<td data-sort="">-</td>')
                continue
            tip = f"{rep['paper']}, {v.get('table', '')}: printed as {v['reported']}"
            if v["scale"] != 1:
                tip += f" (× {v['scale']:g})"
            cells.append(f'<td data-sort="{v["value"]!r}" title="{_e(tip)}">{_e(fmt_num(v["value"]))}</td>')
        cells += ['<td>-</td>'] * 7 + [f'<td class="src">{_e(rep["source"])}</td>']
        out.append('<tr class="reported-row">' + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _reference_html(tables: Sequence[Mapping[str, Any]]) -> str:
    out = ['<section id="reference"><h2>Reported in papers</h2><p class="note">Numbers exactly as '
           'printed in each paper (never reproduced here, never ranked). Sources and the list of '
           'what was not transcribed: <code>leaderboards/reference/</code>.</p>']
    for i, t in enumerate(tables):
        tid = f"ref-{i}"
        out.append(f'<h3>{_e(t["paper"]["name"])}: {_e(t["table"])}</h3>'
                   f'<p class="note">{_e(t["caption"])}</p>')
        has_dataset_col = any("dataset" not in c for c in t["columns"]) and any(r.get("dataset") for r in t["rows"])
        has_variant = any(r.get("variant") for r in t["rows"])
        head = ["method"] + (["variant"] if has_variant else []) + (["dataset"] if has_dataset_col else [])
        head += [f"{c['dataset']} {c['label']}" if c.get("dataset") and not has_dataset_col else c["label"]
                 for c in t["columns"]]
        out.append(f'<table class="sortable reference" id="{tid}"><thead><tr>'
                   + "".join(f"<th class=\"txt\">{_e(h)}</th>" for h in head) + "</tr></thead><tbody class=\"reported\">")
        for r in t["rows"]:
            cells = [f'<td class="txt">{_e(r["method"])}<span class="badge">reported</span></td>']
            if has_variant:
                cells.append(f'<td class="txt">{_e(r.get("variant") or "")}</td>')
            if has_dataset_col:
                cells.append(f'<td class="txt">{_e(r.get("dataset") or "")}</td>')
            cells += [f'<td data-sort="{"" if v is None else v!r}">{_e(tok)}</td>'
                      for tok, v in zip(r["tokens"], r["parsed"])]
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
    out.append("</section>")
    return "".join(out)


@dataclass
class RenderReport:
    index: Path
    markdown: Path
    plots: list[Path] = field(default_factory=list)
    grid_images: int = 0
    notes: list[str] = field(default_factory=list)


def _all_tasks_for_render(lb: Leaderboard, other_tasks: Iterable[str]) -> list[str]:
    """Tasks with reproduced rows first, then those with only reported rows or sweeps."""
    have = set(lb.tasks())
    return sorted(have) + sorted({t for t in other_tasks if t} - have)


def render(root: str | os.PathLike = DEFAULT_DIR, output: str | os.PathLike = "build/leaderboard",
           cache_dir: str | os.PathLike | None = None, grid_samples: int = 4) -> RenderReport:
    """Write ``output/index.html`` (static, works from file://), ``output/leaderboard.md``,
    plots under ``output/plots/`` and qualitative-grid images under ``output/grid/``."""
    from benchmark.store import DEFAULT_CACHE_DIR, safe_name

    lb = Leaderboard(root)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = cache_dir or DEFAULT_CACHE_DIR
    plt = _matplotlib()
    report = RenderReport(index=out / "index.html", markdown=out / "leaderboard.md")
    if plt is None:
        report.notes.append("plots skipped: matplotlib is not installed (pip install matplotlib)")
    ref_tables = load_reference(root)
    ref_tasks = {c.get("task") for t in ref_tables for c in t["columns"]}
    sweeps = load_sweeps(root)
    body: list[str] = []
    md: list[str] = ["# editbench leaderboard", "",
                     f"Rendered {_now()} from `{Path(root).as_posix()}`. Reproduced rows are "
                     "ranked by the first headline metric within each backbone set; rows marked "
                     "*reported* are numbers printed in papers (not ranked).", ""]
    toc: list[str] = []
    for task in _all_tasks_for_render(lb, ref_tasks | {s.get("task") for s in sweeps}):
        versions = lb.versions(task)
        board = lb.load(task) if versions else {
            "signature": {"task": task, "task_version": None, "task_hash": None, "metric_versions": {}},
            "leaderboard_version": None, "rows": []}
        reported = reported_rows_for_task(task, root)
        metrics = _metric_order(board)
        for rep in reported:
            for k in rep["values"]:
                if k not in metrics:
                    metrics.append(k)
        anchor = f"task-{safe_name(task)}"
        toc.append(f'<li><a href="#{anchor}">{_e(task)}</a> ({len(board["rows"])} rows'
                   f'{", " + str(len(reported)) + " reported" if reported else ""})</li>')
        sig = board["signature"]
        sec = [f'<section class="task" id="{anchor}"><h2>{_e(task)}</h2>']
        if versions:
            sec.append(f'<p class="note">leaderboard v{board["leaderboard_version"]} · task version '
                       f'{_e(sig["task_version"])} · task hash <code>{_e(_short(sig["task_hash"]))}</code>'
                       f' · {_e(board.get("reason", ""))}</p>')
            older = versions[:-1]
            if older:
                sec.append('<details><summary>older versions</summary><ul>')
                for v in older:
                    ob = lb.load(task, v)
                    sec.append(f'<li>v{v}: task version {_e(ob["signature"]["task_version"])}, hash '
                               f'<code>{_e(_short(ob["signature"]["task_hash"]))}</code>, '
                               f'{len(ob["rows"])} rows (<code>tables/{_e(safe_name(task))}/v{v}.json</code>)</li>')
                sec.append("</ul></details>")
        else:
            sec.append('<p class="note">No reproduced rows yet: run <code>editbench run --task '
                       f'{_e(task)}</code> and <code>editbench leaderboard add</code>.</p>')
        groups: dict[str, list[dict]] = defaultdict(list)
        for r in board["rows"]:
            groups[r["backbone_label"]].append(r)
        if not groups:
            groups["none"] = []
        md.append(f"## {task}")
        md.append("")
        # Papers' numbers were made with the standard backbones: show them beside the group that
        # is not on synth backbones when there is one (still unranked).
        labels = sorted(groups)
        rep_label = next((lab for lab in labels if "synth" not in lab), labels[0])
        for gi, (label, rows) in enumerate(sorted(groups.items())):
            if len(groups) > 1 or label != "none":
                sec.append(f'<h3>backbones: {_e(label)}</h3>')
                md.append(f"Backbones: {label}")
                md.append("")
            table_id = f"{anchor}-{gi}"
            shown = reported if label == rep_label else []
            sec.append(_board_table_html(table_id, board, rows, shown, metrics))
            md.extend(_board_markdown(board, rows, shown, metrics))
            md.append("")
            primary = next((k for k in metrics if any(k in r["metrics"] for r in rows)), None)
            if plt is not None and primary and rows:
                stem = f"{safe_name(task)}-{gi}"
                pics = []
                p = out / "plots" / f"{stem}-seeds.png"
                if plot_seed_spread(plt, rows, primary, p, f"{task}: {primary} per seed"):
                    pics.append(p)
                p = out / "plots" / f"{stem}-categories.png"
                if plot_category_bars(plt, rows, primary, p, f"{task}: {primary} by category"):
                    pics.append(p)
                report.plots.extend(pics)
                md.extend(f"![{q.stem}]({q.relative_to(out).as_posix()})" for q in pics)
                md.append("")
                if pics:
                    sec.append('<div class="plots">' + "".join(
                        f'<img class="plot" src="{_e(q.relative_to(out).as_posix())}" alt="{_e(q.stem)}">'
                        for q in pics) + "</div>")
        task_sweeps = [s for s in sweeps if s.get("task") == task]
        if task_sweeps and plt is not None:
            sgroups: dict[tuple, list] = defaultdict(list)
            for s in task_sweeps:
                sgroups[(s["param"], s["x_metric"], s["y_metric"], s.get("backbone_label", "none"))].append(s)
            for si, ((param, xm, ym, bl), ss) in enumerate(sorted(sgroups.items())):
                p = out / "plots" / f"{safe_name(task)}-sweep-{si}.png"
                if plot_tradeoff(plt, ss, p, f"{task}: {param} sweep ({bl})"):
                    report.plots.append(p)
                    md.extend([f"![{param} sweep]({p.relative_to(out).as_posix()})", ""])
                    sec.append(f'<div class="plots"><img class="plot tradeoff" src="{_e(p.relative_to(out).as_posix())}" '
                               f'alt="trade-off {_e(param)}"></div>')
        if board["rows"]:
            columns, grid_rows, note = build_grid(board, out, cache_dir, grid_samples)
            if grid_rows:
                sec.append('<h3>Qualitative grid</h3><table class="grid"><thead><tr><th class="txt">sample</th>'
                           + "".join(f"<th>{_e(c)}</th>" for c in columns) + "</tr></thead><tbody>")
                for g in grid_rows:
                    cells = [f'<td class="txt" title="{_e(g["instruction"])}">{_e(g["sample"])}<br>'
                             f'{_e(g["instruction"][:60])}</td>']
                    for c in g["cells"]:
                        if c is None:
                            cells.append("<td>(not in store)</td>")
                        else:
                            report.grid_images += 1
                            cells.append(f'<td><img class="grid-image" src="{_e(c)}" alt="{_e(c)}"></td>')
                    sec.append("<tr>" + "".join(cells) + "</tr>")
                sec.append("</tbody></table>")
            if note:
                sec.append(f'<p class="note">{_e(note)}</p>')
                report.notes.append(f"{task}: {note}")
        sec.append("</section>")
        body.append("".join(sec))
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in report.notes if "plots skipped" in n)
    page = ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>editbench leaderboard</title><style>{_CSS}</style></head><body>"
            "<h1>editbench leaderboard</h1>"
            f'<p class="note">Rendered {_e(_now())}. Click a column to sort; hover a number for its '
            "95% CI, per-seed values and backbone. Rows marked <span class=\"badge\">reported</span> "
            "are numbers printed in papers: shown for comparison, never ranked. "
            '<span id="image-status"></span></p>' + notes
            + f"<ul>{''.join(toc)}</ul>" + "".join(body) + _reference_html(ref_tables)
            + f"<script>{_JS}</script></body></html>")
    atomic_write_bytes(report.index, page.encode("utf-8"))
    md.extend(_reference_markdown(ref_tables))
    atomic_write_bytes(report.markdown, ("\n".join(md) + "\n").encode("utf-8"))
    return report


def _md_escape(text: Any) -> str:
    return str(text if text is not None else "-").replace("|", "\\|")


def _board_markdown(board, rows, reported, metrics) -> list[str]:
    import pandas as pd

    head = ["rank", "model", "preset"] + list(metrics) + ["s/edit", "device", "source"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    if rows:
        df = board_frame({"rows": list(rows), "signature": board["signature"]})
        by_id = {r["row_id"]: r for r in rows}
        for _, rec in df.iterrows():
            r = by_id[rec["row_id"]]
            rank = rec.get("rank")
            cells = ["-" if pd.isna(rank) else str(int(rank)), _md_escape(r["model"]), _md_escape(r["preset"])]
            for k in metrics:
                m = r["metrics"].get(k)
                cells.append(fmt_cell(m.get("mean"), m.get("std")) if m else "-")
            cells += [fmt_num(r["timing"].get("seconds_per_edit"), 5), _md_escape(device_label(r["timing"])),
                      "run" if r.get("source", {}).get("kind") != "submission" else "submission"]
            lines.append("| " + " | ".join(cells) + " |")
    for rep in reported:
        label = rep["method"] + (f" ({rep['variant']})" if rep.get("variant") else "")
        cells = ["-", f"{_md_escape(label)} *(reported)*", _md_escape(rep.get("setting"))]
        cells += [fmt_num(rep["values"][k]["value"]) if k in rep["values"] else "-" for k in metrics]
        cells += ["-", "-", _md_escape(rep["source"])]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _reference_markdown(tables) -> list[str]:
    out = ["## Reported in papers", "", "Numbers as printed (DINO/CVS/SSIM ×100 in the MGIE paper).", ""]
    for t in tables:
        out.append(f"### {t['paper']['name']}: {t['table']}")
        out.append("")
        head = ["method", "variant", "dataset"] + [c["label"] if not c.get("dataset") else
                                                   f"{c['dataset']} {c['label']}" for c in t["columns"]]
        out.append("| " + " | ".join(_md_escape(h) for h in head) + " |")
        out.append("|" + "---|" * len(head))
        for r in t["rows"]:
            out.append("| " + " | ".join([_md_escape(r["method"]) + " *(reported)*",
                                          _md_escape(r.get("variant") or ""),
                                          _md_escape(r.get("dataset") or "")] + r["tokens"]) + " |")
        out.append("")
    return out


# =========================================================================== drift check
DRIFT_TASKS = ("synth-evr", "synth-gier", "synth-ma5k", "synth-magicbrush",
               "synth-magicbrush-final", "synth-complex")
# The shipped tiny models run on 2 samples per task (their checkpoints live in the repo; one that
# is absent is skipped, and said so). They record no KID: on 2 samples KID is a difference of
# large kernel sums, and the few output pixels that round the other way on another CPU moved it
# by 3.9e-3 relative (Intel Xeon against values recorded on an AMD EPYC), more than a tolerance
# that still catches a 1% change allows; identity's and oracle's KID (4 samples, outputs that are
# the dataset's own images) still check the metric.
DRIFT_MODELS = ({"name": "identity", "preset": None},
                {"name": "oracle", "preset": None},
                {"name": "instruct-pix2pix", "preset": "tiny", "limit": 2, "skip_metrics": ["kid"]},
                {"name": "lgie", "preset": "tiny", "limit": 2, "skip_metrics": ["kid"]},
                {"name": "mgie", "preset": "tiny", "limit": 2, "skip_metrics": ["kid"]})
# Relative tolerances (|new - old| <= tol * (1 + |old|)). The slice must pass on any x86 CPU, not
# only the one that recorded it: oneDNN picks different float32 kernels per CPU, a few output pixels
# round the other way, and the ill-conditioned metrics amplify that. Measured on an AMD EPYC
# (avx512) against golden values recorded on an Intel CPU (AMX), largest relative differences:
# fid 5.0e-4, kid 3.0e-4, clip_dir 1.5e-4, cts 1.3e-4, dino 2.0e-5, cvs 2.2e-5, pixel metrics
# <= 4e-6. The tolerances below leave a 4-8x margin over those and stay far below what a real
# change moves (1e-2 and up in the golden file's history).
DEFAULT_TOLERANCE = {"default": 1e-6, "metrics": {"lpips": 1e-5, "dino": 1e-5, "cvs": 1e-5,
                                                   "cts": 1e-3, "clip_dir": 1e-3,
                                                   "clip_s_input": 1e-3, "clip_s_goal": 1e-3,
                                                   "fid": 2e-3, "kid": 2e-3},
                     "models": {"instruct-pix2pix/tiny": 1e-4, "lgie/tiny": 1e-4,
                                "mgie/tiny": 1e-4}}


@dataclass
class DriftSpec:
    """The fixed slice: tasks, seeds, sample limit, models (each may override the limit and the
    tasks), and the metric backbones (``synth``: the in-repo tiny backbones, the same on every
    machine, so a machine with standard weights checks the same numbers as CI)."""

    tasks: list[str] = field(default_factory=lambda: list(DRIFT_TASKS))
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    limit: int = 4
    backbones: str = "synth"
    models: list[dict[str, Any]] = field(default_factory=lambda: [dict(m) for m in DRIFT_MODELS])
    tolerance: dict[str, Any] = field(default_factory=lambda: json.loads(json.dumps(DEFAULT_TOLERANCE)))

    @classmethod
    def from_golden(cls, golden: Mapping[str, Any] | None) -> "DriftSpec":
        spec = cls()
        if golden:
            s = golden.get("slice", {})
            spec.tasks = list(s.get("tasks", spec.tasks))
            spec.seeds = [int(x) for x in s.get("seeds", spec.seeds)]
            spec.limit = int(s.get("limit", spec.limit))
            spec.backbones = s.get("backbones", spec.backbones)
            spec.models = [dict(m) for m in s.get("models", spec.models)]
            spec.tolerance = dict(golden.get("tolerance", spec.tolerance))
        return spec

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "seeds": self.seeds, "limit": self.limit,
                "backbones": self.backbones, "models": self.models}

    def tol(self, model_key: str, metric: str) -> float:
        t = self.tolerance
        vals = [float(t.get("default", 1e-6))]
        if metric in t.get("metrics", {}):
            vals.append(float(t["metrics"][metric]))
        if model_key in t.get("models", {}):
            vals.append(float(t["models"][model_key]))
        return max(vals)


def _backbone_kwargs(fn, mode: str | None) -> dict[str, Any]:
    """``{"backbones": mode}`` when ``fn`` (run_task / score_task) takes a backbone choice."""
    import inspect

    if mode and "backbones" in inspect.signature(fn).parameters:
        return {"backbones": mode}
    return {}


def _model_key(name: str, preset: str | None) -> str:
    return f"{name}/{preset or 'default'}"


@dataclass
class DriftRun:
    values: dict[str, dict[str, Any]]      # model key -> task -> entry
    skipped: dict[str, str]                 # model key -> reason (checkpoint absent)
    seconds: float
    errors: dict[str, str] = field(default_factory=dict)   # model key -> why it cannot load


def run_drift(spec: DriftSpec, models: Sequence[str] | None = None, progress: bool = False) -> DriftRun:
    """Run the slice in a fresh output store (nothing cached can hide a change)."""
    import time

    from benchmark.registry import MODELS
    from benchmark.runner import run_task
    from benchmark.tasks import get_task

    t0 = time.perf_counter()
    values: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="editbench-drift-") as cache:
        for m in spec.models:
            key = _model_key(m["name"], m.get("preset"))
            if models and m["name"] not in models and key not in models:
                continue
            try:
                model = MODELS.get(m["name"])(preset=m.get("preset"), device="cpu")
            except FileNotFoundError as exc:
                where = str(Path(__file__).resolve().parent.parent) + os.sep
                skipped[key] = f"checkpoint absent ({str(exc).splitlines()[0].replace(where, '')[:200]})"
                continue
            except Exception as exc:  # noqa: BLE001 - a model that is there but broken is drift
                errors[key] = f"cannot be loaded: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                continue
            per_task = {}
            extra = _backbone_kwargs(run_task, spec.backbones)
            for tname in m.get("tasks", spec.tasks):
                task = get_task(tname)
                res = run_task(model, task, seeds=spec.seeds, limit=int(m.get("limit", spec.limit)),
                               batch_size=4, device="cpu", cache_dir=cache, progress=progress,
                               **extra)
                per_task[tname] = {
                    "task_hash": task.hash,
                    "n_samples": res["protocol"]["n_samples"],
                    "n_failures": len(res["failures"]),
                    "metrics": {k: {"per_seed": v["per_seed"], "mean": v["mean"],
                                    "backbone": v.get("backbone"),
                                    "backbone_sha256": v.get("backbone_sha256")}
                                for k, v in sorted(res["metrics"].items())
                                if k not in m.get("skip_metrics", ())},
                }
            values[key] = per_task
    return DriftRun(values, skipped, time.perf_counter() - t0, errors)


@dataclass
class Drift:
    model: str
    task: str
    metric: str
    what: str
    old: Any
    new: Any
    tol: float | None = None

    def describe(self) -> str:
        if self.old is None and self.new is None:
            return f"{self.model}: {self.what}"
        if self.tol is None:
            return f"{self.model} {self.task} {self.metric}: {self.what} ({self.old!r} -> {self.new!r})"
        return (f"{self.model} {self.task} {self.metric} {self.what}: golden {self.old!r}, now "
                f"{self.new!r} (|diff| {abs(self.new - self.old):.3g} > tol {self.tol:g})")


def _close(a: float | None, b: float | None, tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= tol + tol * abs(a)


def compare_drift(golden: Mapping[str, Any], run: DriftRun, spec: DriftSpec) -> list[Drift]:
    """Every difference between the golden values and this run, metric by metric."""
    drifts: list[Drift] = [Drift(k, "*", "*", reason, None, None) for k, reason in sorted(run.errors.items())]
    entries = golden.get("entries", {})
    for mkey, per_task in run.values.items():
        g_model = entries.get(mkey)
        if g_model is None:
            drifts.append(Drift(mkey, "*", "*", "no golden values for this model", None, "present"))
            continue
        for task, cur in per_task.items():
            g = g_model.get(task)
            if g is None:
                drifts.append(Drift(mkey, task, "*", "no golden values for this task", None, "present"))
                continue
            if g.get("task_hash") != cur["task_hash"]:
                drifts.append(Drift(mkey, task, "*", "task spec changed", _short(g.get("task_hash")),
                                    _short(cur["task_hash"])))
            for k in ("n_samples", "n_failures"):
                if g.get(k) != cur[k]:
                    drifts.append(Drift(mkey, task, k, "count changed", g.get(k), cur[k]))
            gm, cm = g.get("metrics", {}), cur["metrics"]
            for metric in sorted(set(gm) | set(cm)):
                if metric not in cm:
                    drifts.append(Drift(mkey, task, metric, "metric no longer computed", "present", None))
                    continue
                if metric not in gm:
                    drifts.append(Drift(mkey, task, metric, "metric has no golden value", None, "present"))
                    continue
                a, b = gm[metric], cm[metric]
                if (a.get("backbone"), a.get("backbone_sha256")) != (b.get("backbone"), b.get("backbone_sha256")):
                    drifts.append(Drift(mkey, task, metric, "backbone changed",
                                        f"{a.get('backbone')}@{_short(a.get('backbone_sha256'))}",
                                        f"{b.get('backbone')}@{_short(b.get('backbone_sha256'))}"))
                tol = spec.tol(mkey, metric)
                pa, pb = a.get("per_seed", []), b.get("per_seed", [])
                if len(pa) != len(pb):
                    drifts.append(Drift(mkey, task, metric, "number of seeds changed", len(pa), len(pb)))
                    continue
                for i, (x, y) in enumerate(zip(pa, pb)):
                    if not _close(x, y, tol):
                        if x is None or y is None:
                            drifts.append(Drift(mkey, task, metric, f"seed {spec.seeds[i] if i < len(spec.seeds) else i}", x, y))
                        else:
                            drifts.append(Drift(mkey, task, metric,
                                                f"seed {spec.seeds[i] if i < len(spec.seeds) else i}", x, y, tol))
    return drifts


def _read_golden(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _git_commit() -> str | None:
    from benchmark.results import _git_commit as gc

    return gc()


def check_drift(golden_path: str | os.PathLike = DEFAULT_GOLDEN, models: Sequence[str] | None = None,
                out=None, json_path: str | os.PathLike | None = None) -> int:
    """Run the slice and compare with the golden values: 0 when everything matches, 1 on drift."""
    out = out or sys.stdout
    path = Path(golden_path)
    golden = _read_golden(path)
    if golden is None:
        print(f"check-drift: no golden values at {path}; record them with "
              f"`editbench check-drift --update --reason \"initial values\"`", file=out)
        return 1
    spec = DriftSpec.from_golden(golden)
    run = run_drift(spec, models)
    drifts = compare_drift(golden, run, spec)
    for key, reason in sorted(run.skipped.items()):
        print(f"skipped {key}: {reason}", file=out)
    checked = sum(len(t["metrics"]) for per in run.values.values() for t in per.values())
    print(f"check-drift: {len(run.values)} models x {len(spec.tasks)} tasks, {checked} metric "
          f"values (limit {spec.limit}, seeds {','.join(map(str, spec.seeds))}) in "
          f"{run.seconds:.1f} s against {path}", file=out)
    if json_path:
        atomic_write_json(json_path, {"drifts": [d.__dict__ for d in drifts], "skipped": run.skipped,
                                      "models": sorted(run.values), "seconds": run.seconds})
    if drifts:
        print(f"DRIFT: {len(drifts)} differences from the golden values:", file=out)
        for d in drifts[:50]:
            print(f"  {d.describe()}", file=out)
        if len(drifts) > 50:
            print(f"  ... and {len(drifts) - 50} more", file=out)
        print("If the change is intended, record it: editbench check-drift --update --reason \"...\"",
              file=out)
        return 1
    print("check-drift: OK, every metric matches its golden value", file=out)
    return 0


def update_golden(golden_path: str | os.PathLike = DEFAULT_GOLDEN, reason: str = "",
                  models: Sequence[str] | None = None, out=None) -> int:
    """Rerun the slice and record its values, with the reason and every old -> new value."""
    out = out or sys.stdout
    if not reason or not reason.strip():
        raise ValueError("--update needs --reason \"why the golden values change\"")
    path = Path(golden_path)
    golden = _read_golden(path) or {"format": 1, "entries": {}, "history": []}
    spec = DriftSpec.from_golden(golden if golden.get("slice") else None)
    run = run_drift(spec, models)
    if run.errors:
        for key, why in sorted(run.errors.items()):
            print(f"check-drift: {key} {why}", file=out)
        print("check-drift: nothing recorded; fix the models that cannot be loaded first", file=out)
        return 1
    changes = []
    for d in compare_drift(golden, run, spec):
        new_value = d.new
        if d.what.startswith("no golden values") or d.what == "metric has no golden value":
            # A first recording: the new values themselves (means), so the history shows them.
            per_task = run.values[d.model]
            tasks = per_task if d.task == "*" else {d.task: per_task[d.task]}
            new_value = {t: {k: m["mean"] for k, m in e["metrics"].items()
                             if d.metric in ("*", k)} for t, e in tasks.items()}
        changes.append({"model": d.model, "task": d.task, "metric": d.metric, "what": d.what,
                        "old": d.old, "new": new_value})
    entries = dict(golden.get("entries", {}))
    for mkey, per_task in run.values.items():
        entries[mkey] = per_task          # skipped models keep their recorded values
    for key, reason_skip in sorted(run.skipped.items()):
        print(f"skipped {key}: {reason_skip} (its golden values, if any, are kept)", file=out)
    new = {"format": 1,
           "about": "Golden values of `editbench check-drift`: the slice below run on CPU in a fresh "
                    "output store, compared metric by metric (|new - old| <= tol * (1 + |old|)). "
                    "Change only with `editbench check-drift --update --reason ...`.",
           "slice": spec.to_dict(), "tolerance": spec.tolerance, "entries": entries,
           "history": list(golden.get("history", []))}
    if changes or not golden.get("history"):
        new["history"].append({"date": _now(), "reason": reason.strip(), "git_commit": _git_commit(),
                               "package_version": _package_version(),
                               "models": sorted(run.values), "skipped": run.skipped,
                               "changes": changes})
        atomic_write_json(path, new)
        print(f"check-drift: recorded {len(changes)} changes in {path} (reason: {reason.strip()})", file=out)
        for c in changes[:50]:
            text = f"  {c['model']} {c['task']} {c['metric']} {c['what']}: {c['old']!r} -> {c['new']!r}"
            print(text if len(text) <= 240 else text[:237] + "...", file=out)
    else:
        print("check-drift: nothing changed; golden values left as they are", file=out)
    return 0


def _package_version() -> str:
    from benchmark import __version__

    return __version__


# =========================================================================== submissions
BUNDLE_FORMAT = 1
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
MAX_BUNDLE_BYTES = 4 << 30
MAX_MEMBER_BYTES = 256 << 20


class SubmissionRejected(Exception):
    """A bundle that does not check out; the message is the reason."""


def _zip_write(zf: zipfile.ZipFile, name: str, data: bytes, compress: bool) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def _task_yaml(task) -> bytes:
    import yaml

    return yaml.safe_dump(task.to_dict(), sort_keys=False, allow_unicode=True).encode("utf-8")


def _expected_ids(task, limit, data_dir) -> tuple[list[str], list[str]]:
    """(scored sample ids, all edited item ids) of the task under ``limit``."""
    from benchmark.runner import load_samples, scored_samples

    items = load_samples(task, limit, data_dir)
    return scored_samples(task, items), [it.id for it in items]


def bundle(result_path: str | os.PathLike, output: str | os.PathLike,
           cache_dir: str | os.PathLike | None = None, outputs_dir: str | os.PathLike | None = None,
           data_dir: str | None = None) -> dict[str, Any]:
    """Pack a result, its task spec and every output image into one zip with a sha256 manifest.

    Outputs come from the output store (``cache_dir``, for ``editbench run`` results) or from
    ``outputs_dir`` (``DIR/<seed>/<id>.png``, for ``editbench score`` results)."""
    from benchmark.results import validate_result
    from benchmark.runner import find_output_layout
    from benchmark.store import DEFAULT_CACHE_DIR, OutputStore, safe_name
    from benchmark.tasks import TaskSpec, get_task

    with open(result_path, encoding="utf-8") as fh:
        raw = fh.read()
    result = json.loads(raw)
    validate_result(result)
    task = get_task(result["task"]["name"])
    if task.hash != result["task"]["hash"]:
        raise ValueError(f"task {task.name!r} has changed since this result was made (hash "
                         f"{_short(result['task']['hash'])} in the result, {_short(task.hash)} now); "
                         "rerun it before bundling")
    task = TaskSpec.from_dict(task.to_dict())
    seeds = [int(s) for s in result["protocol"]["seeds"]]
    limit = result["protocol"].get("limit")
    scored, edited = _expected_ids(task, limit, data_dir)
    failed = {(f["sample_id"], f["seed"]) for f in result["failures"]}
    model = result["model"]
    if outputs_dir is not None:
        layout = find_output_layout(outputs_dir, seeds)

        def fetch(seed: int, sid: str) -> bytes | None:
            p = Path(layout[seed]) / f"{safe_name(sid)}.png"
            return p.read_bytes() if p.is_file() else None
    else:
        store = OutputStore.for_result(cache_dir or DEFAULT_CACHE_DIR, result, task.store_hash)

        def fetch(seed: int, sid: str) -> bytes | None:
            png, _meta = store._paths(seed, sid)
            return png.read_bytes() if store.has(seed, sid) else None

    outputs: dict[str, dict[str, Any]] = {}
    missing = []
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    scored_set = set(scored)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for seed in seeds:
                for sid in edited:
                    data = fetch(seed, sid)
                    if data is None:
                        if sid in scored_set and (sid, seed) not in failed:
                            missing.append(f"{sid}@seed{seed}")
                        continue
                    name = f"outputs/seed{seed}/{safe_name(sid)}.png"
                    _zip_write(zf, name, data, compress=False)
                    outputs[name] = {"sample_id": sid, "seed": seed, "sha256": sha256_bytes(data),
                                     "scored": sid in scored_set}
            if missing:
                raise FileNotFoundError(
                    f"{len(missing)} outputs are missing ({', '.join(missing[:5])}"
                    f"{', ...' if len(missing) > 5 else ''}); rerun `editbench run` with the same "
                    "arguments (it resumes) or pass --cache-dir / --outputs where they are")
            files = {"result.json": raw.encode("utf-8"), "task.yaml": _task_yaml(task)}
            for name, data in files.items():
                _zip_write(zf, name, data, compress=True)
            manifest = {
                "bundle_format": BUNDLE_FORMAT, "created": _now(), "editbench": _package_version(),
                "task": {k: result["task"][k] for k in ("name", "version", "hash")},
                "model": {k: model.get(k) for k in ("name", "preset", "config_hash", "weights_sha256")},
                "seeds": seeds, "limit": limit, "samples": scored, "edited": edited,
                "files": {name: sha256_bytes(data) for name, data in files.items()},
                "outputs": outputs,
            }
            _zip_write(zf, "manifest.json", json.dumps(manifest, indent=1).encode("utf-8"), compress=True)
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with open(out, "rb") as fh:
        digest = sha256_bytes(fh.read())
    return {"path": str(out), "sha256": digest, "outputs": len(outputs), "samples": len(scored),
            "seeds": seeds}


def _safe_member(name: str) -> bool:
    if not name or name.startswith(("/", "\\")) or "\\" in name or ":" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


@dataclass
class SubmitOutcome:
    added: AddOutcome
    bundle_sha256: str
    rescored: bool
    notes: list[str]


def submit(bundle_path: str | os.PathLike, leaderboard_dir: str | os.PathLike = DEFAULT_DIR,
           data_dir: str | None = None, rescore: bool = True) -> SubmitOutcome:
    """Check a bundle (layout, hashes, schema, versions, completeness, and, where the task's data
    is here, the scores recomputed from its images) and only then add its row.
    Raises SubmissionRejected with the reason."""
    from benchmark.results import SCHEMA_VERSION, validate_result
    from benchmark.tasks import TaskSpec, get_task

    import yaml

    path = Path(bundle_path)
    notes: list[str] = []
    try:
        raw_bundle = path.read_bytes()
        zf = zipfile.ZipFile(io.BytesIO(raw_bundle))
    except (OSError, zipfile.BadZipFile) as exc:
        raise SubmissionRejected(f"not a readable zip: {exc}") from None
    with zf:
        infos = zf.infolist()
        total = 0
        for info in infos:
            if not _safe_member(info.filename) or info.is_dir():
                raise SubmissionRejected(f"unsafe or unexpected entry {info.filename!r}")
            if info.file_size > MAX_MEMBER_BYTES:
                raise SubmissionRejected(f"entry {info.filename} is too large ({info.file_size} bytes)")
            total += info.file_size
        if total > MAX_BUNDLE_BYTES:
            raise SubmissionRejected(f"bundle unpacks to {total} bytes, over the {MAX_BUNDLE_BYTES} limit")
        names = {i.filename for i in infos}
        if len(names) != len(infos):
            raise SubmissionRejected("duplicate entries in the zip")
        for req in ("manifest.json", "result.json", "task.yaml"):
            if req not in names:
                raise SubmissionRejected(f"bundle lacks {req}")

        def read(name: str) -> bytes:
            try:
                return zf.read(name)
            except (zipfile.BadZipFile, OSError, RuntimeError) as exc:  # CRC errors and the like
                raise SubmissionRejected(f"entry {name} cannot be read: {exc}") from None

        try:
            manifest = json.loads(read("manifest.json"))
        except ValueError:
            raise SubmissionRejected("manifest.json is not valid JSON") from None
        if manifest.get("bundle_format") != BUNDLE_FORMAT:
            raise SubmissionRejected(f"bundle format {manifest.get('bundle_format')!r}, expected {BUNDLE_FORMAT}")
        # ---- hashes: every file listed, every listed file present and intact
        listed = dict(manifest.get("files", {}))
        listed.update({n: o["sha256"] for n, o in manifest.get("outputs", {}).items()})
        extra = sorted(names - set(listed) - {"manifest.json"})
        if extra:
            raise SubmissionRejected(f"entries not in the manifest: {', '.join(extra[:5])}")
        absent = sorted(set(listed) - names)
        if absent:
            raise SubmissionRejected(f"incomplete: manifest lists {len(absent)} files the zip lacks "
                                     f"({', '.join(absent[:5])})")
        blobs: dict[str, bytes] = {}
        for name, digest in sorted(listed.items()):
            data = read(name)
            if sha256_bytes(data) != digest:
                raise SubmissionRejected(f"hash mismatch: {name} does not match its sha256 in the "
                                         "manifest (tampered or corrupted)")
            blobs[name] = data
        # ---- schema
        try:
            result = json.loads(blobs["result.json"])
        except ValueError:
            raise SubmissionRejected("result.json is not valid JSON") from None
        if result.get("schema_version") != SCHEMA_VERSION:
            raise SubmissionRejected(f"mis-versioned: result schema_version {result.get('schema_version')!r}, "
                                     f"this leaderboard takes {SCHEMA_VERSION}")
        try:
            validate_result(result)
        except ValueError as exc:
            raise SubmissionRejected(f"schema: {exc}") from None
        # ---- versions: the bundled spec, the result and the current task agree
        try:
            spec = TaskSpec.from_dict(yaml.safe_load(blobs["task.yaml"]))
        except Exception as exc:  # noqa: BLE001
            raise SubmissionRejected(f"task.yaml is not a task spec: {exc}") from None
        rt = result["task"]
        if (spec.name, spec.version, spec.hash) != (rt["name"], rt["version"], rt["hash"]):
            raise SubmissionRejected(f"mis-versioned: task.yaml is {spec.name} v{spec.version} "
                                     f"({_short(spec.hash)}), the result says {rt['name']} "
                                     f"v{rt['version']} ({_short(rt['hash'])})")
        if manifest.get("task") != {k: rt[k] for k in ("name", "version", "hash")}:
            raise SubmissionRejected("manifest task does not match the result's task")
        try:
            current = get_task(rt["name"])
        except Exception as exc:  # noqa: BLE001
            raise SubmissionRejected(f"unknown task {rt['name']!r}: {exc}") from None
        if (current.version, current.hash) != (rt["version"], rt["hash"]):
            raise SubmissionRejected(f"mis-versioned: the bundle is for {rt['name']} version "
                                     f"{rt['version']} (hash {_short(rt['hash'])}); the current task "
                                     f"is version {current.version} (hash {_short(current.hash)})")
        # ---- completeness: every scored sample x seed has an output or a recorded failure
        seeds = [int(s) for s in result["protocol"]["seeds"]]
        if [int(s) for s in manifest.get("seeds", [])] != seeds:
            raise SubmissionRejected("manifest seeds differ from the result's")
        samples = list(manifest.get("samples", []))
        limit = result["protocol"].get("limit")
        dataset_here = True
        try:
            expected, _edited = _expected_ids(spec, limit, data_dir)
        except Exception as exc:  # noqa: BLE001 - a real dataset needs --data-dir
            dataset_here = False
            expected = samples
            notes.append(f"task data not available here ({type(exc).__name__}); completeness "
                         "checked against the manifest's sample list, scores not recomputed")
        if samples != expected:
            raise SubmissionRejected(f"incomplete: the bundle lists {len(samples)} samples, the task "
                                     f"(limit {limit}) has {len(expected)}")
        if len(expected) != result["protocol"]["n_samples"]:
            raise SubmissionRejected(f"incomplete: result says {result['protocol']['n_samples']} "
                                     f"samples, the task has {len(expected)}")
        have = {(o["sample_id"], int(o["seed"])) for o in manifest.get("outputs", {}).values()}
        failed = {(f["sample_id"], f["seed"]) for f in result["failures"]}
        lacking = [f"{sid}@seed{s}" for s in seeds for sid in expected
                   if (sid, s) not in have and (sid, s) not in failed]
        if lacking:
            raise SubmissionRejected(f"incomplete: {len(lacking)} of {len(expected) * len(seeds)} "
                                     f"sample x seed outputs are missing and not listed as failures "
                                     f"({', '.join(lacking[:5])}{', ...' if len(lacking) > 5 else ''})")
        # ---- scores recomputed from the bundled images
        rescored = False
        if rescore and dataset_here:
            rescored = _rescore(spec, result, manifest, blobs, seeds, limit, data_dir)
            if not rescored:
                notes.append("scores not recomputed: the result's metric backbones are not "
                             "available here")
        elif not rescore:
            notes.append("scores not recomputed (--no-rescore)")
    lb = Leaderboard(leaderboard_dir)
    added = lb.add(result, {"kind": "submission", "bundle_sha256": sha256_bytes(raw_bundle),
                            "bundle": path.name, "rescored": rescored})
    return SubmitOutcome(added, sha256_bytes(raw_bundle), rescored, notes)


def _rescore(spec, result, manifest, blobs, seeds, limit, data_dir) -> bool:
    from benchmark.runner import score_task

    with tempfile.TemporaryDirectory(prefix="editbench-submit-") as tmp:
        for name, o in manifest["outputs"].items():
            if not o.get("scored", True):
                continue
            p = Path(tmp) / str(int(o["seed"])) / Path(name).name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(blobs[name])
        for s in seeds:
            (Path(tmp) / str(s)).mkdir(exist_ok=True)
        wanted = {k: (m.get("backbone"), m.get("backbone_sha256")) for k, m in result["metrics"].items()}
        again = None
        # The result names each metric's backbone; rescore with the backbone choice that gives
        # the same ones (standard weights may be absent here, synth ones are always present).
        for mode in ("auto", "synth", "standard"):
            kwargs = _backbone_kwargs(score_task, mode)
            try:
                got = score_task(spec, tmp, seeds=seeds, limit=limit, data_dir=data_dir, **kwargs)
            except Exception:  # noqa: BLE001 - e.g. standard weights not on this machine
                continue
            have = {k: (m.get("backbone"), m.get("backbone_sha256")) for k, m in got["metrics"].items()}
            if all(have.get(k) == v for k, v in wanted.items()):
                again = got
                break
            if not kwargs:
                break
        if again is None:
            return False
    tol = DriftSpec()
    for key, m in result["metrics"].items():
        a = again["metrics"][key]
        for s, x, y in zip(seeds, m["per_seed"], a["per_seed"]):
            if not _close(x, y, tol.tol("submission", key)):
                raise SubmissionRejected(f"scores do not match the bundled images: {key} seed {s} "
                                         f"is {x!r} in the result, {y!r} recomputed")
    return True


# =========================================================================== CLI
def _usage(msg: str) -> Exception:
    from benchmark.cli import UsageError

    return UsageError(msg)


def cmd_leaderboard(args) -> int:
    action = getattr(args, "lb_action", None) or "show"
    lb = Leaderboard(args.dir)
    if action in ("add", "update"):
        paths = expand_result_paths(args.results)
        if not paths:
            raise _usage("no result JSON files found in " + ", ".join(args.results))
        bad = 0
        for p in paths:
            try:
                outcome = lb.add_file(p)
            except (ValueError, KeyError) as exc:
                bad += 1
                print(f"skipped {p}: not a valid result ({exc})", file=sys.stderr)
                continue
            print(f"{p}: {outcome.describe()}")
        if args.render:
            rep = render(args.dir, args.render, cache_dir=args.cache_dir)
            print(f"rendered {rep.index}")
        return 1 if bad else 0
    if action == "render":
        rep = render(args.dir, args.output, cache_dir=args.cache_dir, grid_samples=args.grid_samples)
        print(f"wrote {rep.index} ({len(rep.plots)} plots, {rep.grid_images} grid images) and {rep.markdown}")
        for n in rep.notes:
            print(f"note: {n}", file=sys.stderr)
        return 0
    tasks = [args.task] if getattr(args, "task", None) else lb.tasks()
    if not tasks:
        print(f"(no leaderboards in {args.dir}; add results with `editbench leaderboard add RESULT.json`)")
    for t in tasks:
        print(format_board_text(lb.load(t, getattr(args, "version", None))))
        print()
    return 0


def cmd_check_drift(args) -> int:
    models = [m for m in (args.models or "").split(",") if m] or None
    if args.update:
        if not args.reason:
            raise _usage('--update needs --reason "why the golden values change"')
        return update_golden(args.golden, args.reason, models)
    if args.reason:
        raise _usage("--reason goes with --update")
    return check_drift(args.golden, models, json_path=args.json)


def cmd_bundle(args) -> int:
    info = bundle(args.result, args.output, cache_dir=args.cache_dir, outputs_dir=args.outputs,
                  data_dir=args.data_dir)
    print(f"wrote {info['path']}: {info['outputs']} outputs for {info['samples']} samples x "
          f"{len(info['seeds'])} seeds; sha256 {info['sha256']}")
    return 0


def cmd_submit(args) -> int:
    try:
        outcome = submit(args.bundle, args.leaderboard_dir, data_dir=args.data_dir,
                         rescore=not args.no_rescore)
    except SubmissionRejected as exc:
        print(f"editbench: submission rejected: {exc}", file=sys.stderr)
        return 1
    for n in outcome.notes:
        print(f"note: {n}", file=sys.stderr)
    print(f"accepted {args.bundle} (sha256 {outcome.bundle_sha256[:16]}, scores "
          f"{'recomputed and matching' if outcome.rescored else 'not recomputed'}): "
          f"{outcome.added.describe()}")
    return 0


def add_cli(sub) -> None:
    """Add ``leaderboard``, ``check-drift``, ``bundle`` and ``submit`` to ``editbench``."""
    import argparse

    from benchmark.store import DEFAULT_CACHE_DIR

    lb = sub.add_parser("leaderboard", help="versioned leaderboard tables: show, add results, render")
    lb.add_argument("--dir", default=DEFAULT_DIR, help=f"leaderboard folder (default {DEFAULT_DIR}/)")
    lb.set_defaults(func=cmd_leaderboard, lb_action="show", task=None, version=None)
    lsub = lb.add_subparsers(dest="lb_action", metavar="ACTION")
    show = lsub.add_parser("show", help="print a task's leaderboard (default: every task)")
    show.add_argument("task", nargs="?", default=None)
    show.add_argument("--version", type=int, default=None, help="leaderboard version (default: latest)")
    show.add_argument("--dir", default=argparse.SUPPRESS)
    for name in ("add", "update"):
        a = lsub.add_parser(name, help="add (or replace) the rows of result JSONs" if name == "add"
                            else "same as add")
        a.add_argument("results", nargs="+", help="result JSON files or folders of them")
        a.add_argument("--dir", default=argparse.SUPPRESS)
        a.add_argument("--render", default=None, metavar="DIR", help="render the page to DIR afterwards")
        a.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="output store (for the grid)")
    r = lsub.add_parser("render", help="write DIR/index.html (+ plots, grid) and DIR/leaderboard.md")
    r.add_argument("--output", required=True, help="folder for index.html, leaderboard.md, plots/, grid/")
    r.add_argument("--dir", default=argparse.SUPPRESS)
    r.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="output store the qualitative grid reads")
    r.add_argument("--grid-samples", type=int, default=4)

    d = sub.add_parser("check-drift", help="rerun a fixed synth slice and compare with golden values")
    d.add_argument("--golden", default=DEFAULT_GOLDEN)
    d.add_argument("--models", default=None, help="comma-separated subset of the slice's models")
    d.add_argument("--update", action="store_true", help="record new golden values (needs --reason)")
    d.add_argument("--reason", default=None, help="why the golden values change (recorded)")
    d.add_argument("--json", default=None, help="also write the comparison as JSON")
    d.set_defaults(func=cmd_check_drift)

    b = sub.add_parser("bundle", help="pack a result, its task spec and every output into a zip")
    b.add_argument("result", help="result JSON")
    b.add_argument("--output", required=True, help="the zip to write")
    b.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="output store of the run")
    b.add_argument("--outputs", default=None, help="outputs folder (for `editbench score` results)")
    b.add_argument("--data-dir", default=None, help="the benchmark's files (real benchmarks)")
    b.set_defaults(func=cmd_bundle)

    s = sub.add_parser("submit", help="check a bundle and add its row to the leaderboard")
    s.add_argument("bundle", help="zip made by `editbench bundle`")
    s.add_argument("--leaderboard-dir", default=DEFAULT_DIR)
    s.add_argument("--data-dir", default=None, help="the benchmark's files (real benchmarks)")
    s.add_argument("--no-rescore", action="store_true", help="do not recompute the scores from the images")
    s.set_defaults(func=cmd_submit)
