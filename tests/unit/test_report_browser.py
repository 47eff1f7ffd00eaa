"""The report page in a real browser: Debian's headless Chromium renders it, the screenshot
is not blank, and the DOM it built holds the headings and numbers.

The screenshot is kept as test-artifacts/report.png (gitignored). Under CI=true a missing
chromium fails the test (scripts/install-sysdeps.sh installs it); elsewhere it is skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from report_data import DAY_START, day_events, storage_records

from regwatch.reports import build_report, write_report
from regwatch.stores.embedded import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail("chromium is required when CI=true: run scripts/install-sysdeps.sh", pytrace=False)
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    return exe


def _run(exe: str, args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}  # a profile of its own, never the user's
    return subprocess.run([exe, *FLAGS, f"--user-data-dir={home / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120, env=env, check=False)


def test_the_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    exe = _chromium()
    store = EmbeddedStore(tmp_path / "db")
    store.write(day_events())
    store.put_records(storage_records())  # type: ignore[arg-type]
    report = build_report(store, DAY_START.date(), "UTC", DAY_START.replace(day=11, hour=7))
    store.close()
    html_path, _ = write_report(report, tmp_path / "out")
    url = html_path.resolve().as_uri()

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    proc = _run(exe, [f"--screenshot={shot}", "--window-size=1000,1600", "--hide-scrollbars", url], tmp_path)
    assert shot.exists(), proc.stderr[-2000:]

    from PIL import Image, ImageStat

    with Image.open(shot) as img:
        assert img.size == (1000, 1600)
        gray = img.convert("L")
        stat = ImageStat.Stat(gray)
        assert stat.stddev[0] > 20, "the screenshot is (nearly) blank"
        hist = gray.histogram()
        dark = sum(hist[:100])  # text and lines
        assert dark > 2000, f"too little ink on the page ({dark} dark pixels)"
        colors = img.convert("RGB").getcolors(maxcolors=1 << 20) or []
        red = sum(n for n, (r, g, b) in colors if r > 150 and g < 90 and b < 90)
        assert red > 300, "the failed-pulls bars and the 100% line are not drawn"
        blue = sum(n for n, (r, g, b) in colors if b > 150 and r < 200 and b - r > 40)
        assert blue > 300, "the forecast (line and band) is not drawn"

    proc = _run(exe, ["--dump-dom", url], tmp_path)
    dom = proc.stdout
    assert "<h1>regwatch daily report: 2026-03-10</h1>" in dom, proc.stderr[-2000:]
    for heading in ("Storage", "Fastest-growing repositories", "Pull failures and auth failures",
                    "Deletes of the day", "Capacity actions"):
        assert f"<h2>{heading}</h2>" in dom
    assert re.search(r'id="total-pulls">6<', dom) and re.search(r'id="total-pulls_failed">3<', dom)
    assert "carol" in dom and "300.00 MB" in dom
    assert "<h3>/var/lib/registry</h3>" in dom and "<svg" in dom and "<polygon" in dom
    assert re.search(r"<td>85%</td><td>\d+\.\d d</td>", dom), "days to 85% missing"
    assert "<script>" not in dom
