"""The rendered leaderboard page, opened from file:// in headless Chromium: the tables are there
and sort, reported rows are marked, and every plot and grid image loads.

Needs the Debian package ``chromium`` (CI installs ``chromium chromium-driver``); skipped with the
reason when Chromium is absent. Chromium runs as a subprocess, so selenium is not needed:
``--dump-dom`` gives the DOM after the page's scripts ran (they sort the table named in
``#sort=...`` and mark each image loaded or broken), ``--screenshot`` checks pixels.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmark import leaderboard as lbm

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium not installed (Debian: apt-get install -y chromium chromium-driver)")


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """identity and oracle on synth-evr, a sweep curve, rendered to a folder."""
    from benchmark.registry import MODELS
    from benchmark.runner import run_task
    from benchmark.tasks import get_task

    base = tmp_path_factory.mktemp("page")
    cache, board = base / "cache", base / "lb"
    lb = lbm.Leaderboard(board)
    for name in ("identity", "oracle"):
        res = run_task(MODELS.get(name)(), get_task("synth-evr"), seeds=[0, 1, 2], limit=4,
                       cache_dir=str(cache), progress=False)
        lb.add(res)
    sweep_doc = {"kind": "editbench-sweep", "format": 1, "model": "oracle", "preset": "default",
                 "task": "synth-evr", "param": "image_guidance_scale", "x_metric": "clip_dir",
                 "y_metric": "clip_img_input", "backbone_label": "none",
                 "points": [{"value": v, "x": 0.1 + 0.05 * i, "y": 0.9 - 0.03 * i}
                            for i, v in enumerate([1.0, 1.2, 1.4, 1.6])]}
    (board / "sweeps" / "synth-evr").mkdir(parents=True)
    (board / "sweeps" / "synth-evr" / "oracle.json").write_text(json.dumps(sweep_doc))
    out = base / "site"
    report = lbm.render(board, out, cache_dir=cache)
    return out, report


def _dump_dom(url: str, profile: Path) -> str:
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                           "--virtual-time-budget=10000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_page_in_headless_chromium(site, tmp_path):
    out, report = site
    url = (out / "index.html").resolve().as_uri()
    table_id = "task-synth-evr-0"
    dom = _dump_dom(f"{url}#sort={table_id}:4:desc", tmp_path / "profile")   # column 4 = l1

    # The board table, sorted by the page's own script (l1 descending: identity first).
    table = dom.split(f'id="{table_id}"')[1].split("</table>")[0]
    assert re.search(r'data-sorted="4:desc"', dom)
    models = re.findall(r'<tr data-row-id="[0-9a-f]+"><td[^>]*>\d</td><td class="txt">([^<]+)</td>', table)
    assert models == ["identity", "oracle"]
    # Reported rows are marked, in their own table body.
    assert 'tbody class="reported"' in dom and dom.count('class="badge">reported') > 50
    # Every image (plots and the qualitative grid) loaded from file://.
    loaded = int(re.search(r'data-images-loaded="(\d+)"', dom).group(1))
    broken = int(re.search(r'data-images-broken="(\d+)"', dom).group(1))
    n_img = len(re.findall(r"<img ", dom))
    assert broken == 0 and loaded == n_img
    grid = re.findall(r'<img class="grid-image"', dom)
    assert len(grid) == 4 * (2 + 2) == report.grid_images     # 4 samples: source, target, 2 models
    plots = re.findall(r'<img class="plot[^"]*"', dom)
    if _have_matplotlib():
        assert len(plots) == 3 and 'class="plot tradeoff"' in dom   # seeds, categories, trade-off
    else:
        assert not plots and "matplotlib is not installed" in dom


def test_screenshot_shows_the_page(site, tmp_path):
    from PIL import Image

    out, _ = site
    shot = tmp_path / "shot.png"
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           "--window-size=1200,1600", f"--screenshot={shot}",
                           (out / "index.html").resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    im = Image.open(shot).convert("RGB")
    colours = im.resize((120, 160)).getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 20       # text, tables and images, not a blank page
