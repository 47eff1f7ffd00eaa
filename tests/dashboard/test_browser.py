"""The dashboard in a real browser: `regwatch dashboard` serves a seeded store on a free
loopback port, headless Chromium loads every page, a screenshot of each is kept in
test-artifacts/dashboard/ (gitignored; CI keeps it as an artifact), and the DOM holds the
headings and numbers, no exception box, and no markup injected from log lines.

Under CI=true a missing chromium fails the test; elsewhere it is skipped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import (
    ARTIFACTS,
    HOSTILE_REPO,
    NOW,
    Browser,
    chromium,
    dashboard_server,
    seed_store,
)

from regwatch import insights
from regwatch.dashboard_app.common import fmt_int, fmt_ratio
from regwatch.stores.base import Query
from regwatch.stores.embedded import EmbeddedStore
from regwatch.summary import summarize


def _not_blank(path: Path) -> None:
    from PIL import Image, ImageStat

    with Image.open(path) as img:
        assert img.size == (1400, 1000)
        gray = img.convert("L")
        assert ImageStat.Stat(gray).stddev[0] > 15, f"{path.name} is (nearly) blank"
        assert sum(gray.histogram()[:110]) > 3000, f"{path.name}: too little ink"


def _no_injection(b: Browser) -> None:
    """No element came out of a log line: no script, image, iframe or javascript: link
    with the seeded payloads, and the payloads are in the page only as text."""
    found = b.evaluate(
        "JSON.stringify({"
        "scripts: [...document.scripts].filter(s => (s.textContent || '').includes('alert(')).length,"
        "imgs: document.querySelectorAll('img[src=\"x\"], [onerror]').length,"
        "links: document.querySelectorAll('a[href^=\"javascript:\"]').length,"
        "bold: [...document.querySelectorAll('strong, b')].filter(e => e.textContent.includes('bold')).length})"
    )
    assert found == '{"scripts":0,"imgs":0,"links":0,"bold":0}', found


def test_every_page_in_headless_chromium(tmp_path: Path) -> None:
    exe = chromium()
    db = seed_store(tmp_path / "db")
    store = EmbeddedStore(db)
    try:
        bounds = insights.event_bounds(store)
        assert bounds is not None
        s = summarize(store, Query(since=bounds[0], until=bounds[1] + insights._US))
        deletes = insights.audit_deletes(store, insights.AuditFilter(since=bounds[0], until=bounds[1] + insights._US))
        events = store.count()
    finally:
        store.close()
    ratio = fmt_ratio(s["pulls_failed"] / (s["pulls"] + s["pulls_failed"]))
    pages: list[tuple[str, str, list[str]]] = [
        ("", "overview", ["Overview", "Pull failure ratio", ratio, "Pulls", fmt_int(s["pulls"]), "Pushes",
                          fmt_int(s["pushes"]), "87.5%", "Alerts that would fire now"]),
        ("audit", "audit", ["Audit", "Matching deletes", fmt_int(len(deletes)), "Raw line (secrets redacted)"]),
        ("repositories", "repositories", ["Repositories", "Repositories with activity",
                                          fmt_int(len(s["repositories"])), "Retention candidates"]),
        ("security", "security", ["Security", "Auth failures", fmt_int(s["auth_failures"]), "Anonymous denials",
                                  "Unusual activity"]),
        ("ingest-health", "ingest-health", ["Ingest health", "Store", "ok", fmt_int(events), "Dropped lines"]),
    ]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with dashboard_server(db, env_now=NOW) as url:
        b = Browser(exe, tmp_path / "chrome")
        try:
            for path, name, expected in pages:
                text = b.load(f"{url}/{path}", expected)
                shot = ARTIFACTS / f"{name}.png"
                shot.unlink(missing_ok=True)
                b.screenshot(shot)
                dom = b.dom()
                assert 'data-testid="stException"' not in dom, name
                assert "Page not found" not in text, name
                title = expected[0]
                assert b.evaluate("[...document.querySelectorAll('h1')].map(h => h.textContent).join('|')") == title
                for want in expected:
                    assert want in text, (name, want)
                _not_blank(shot)
                _no_injection(b)

            # the disk with its forecast band, further down the Overview
            b.load(f"{url}/", ["Disk", "Used: /var/lib/registry", "87.5%"])
            assert b.evaluate("(() => { const h = [...document.querySelectorAll('h3')].find(e => e.textContent === 'Disk');"
                              " if (!h) return false; h.scrollIntoView(); return true; })()")
            time.sleep(1.0)
            b.screenshot(ARTIFACTS / "overview-disk.png")
            _not_blank(ARTIFACTS / "overview-disk.png")

            # the hostile deletes, found by a link, shown as text in the detail view
            text = b.load(f"{url}/audit?repo=evil/*", ["Matching deletes", "Raw line (secrets redacted)", "manifests/v1"])
            b.screenshot(ARTIFACTS / "audit-hostile.png")
            assert f"DELETE /v2/{HOSTILE_REPO}/manifests/v1 note=<script>alert(1)</script>" in text
            dom = b.dom()
            assert "<script>alert(1)</script>" not in dom and "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
            assert "\x1b" not in dom
            _no_injection(b)
        finally:
            b.close()


def test_a_page_refreshes_on_its_own_while_the_store_grows(tmp_path: Path) -> None:
    """Refresh every 10 s: events written into the store after the page loaded show up on
    it without a reload (another process writes, the dashboard reads the new files)."""
    from datetime import UTC, datetime, timedelta

    from regwatch.events import Action, Event, Outcome, Tally

    exe = chromium()
    db = seed_store(tmp_path / "db", samples=False, storage=False)
    with dashboard_server(db, env_now=None, extra_env={"REGWATCH_DASHBOARD_REFRESH": "10"}) as url:
        b = Browser(exe, tmp_path / "chrome")
        try:
            text = b.load(f"{url}/audit?repo=late/*", ["Matching deletes", "No deletes match these filters"])
            shown = b.evaluate("document.querySelector('input[aria-label=\"Refresh every\"]').value")
            assert shown == "10 s", shown  # the sidebar starts at the interval it was given
            t = datetime.now(UTC) - timedelta(minutes=1)
            store = EmbeddedStore(db)
            store.write([Event(id=f"late{i}", timestamp=t + timedelta(seconds=i), source="distribution",
                               component="registry", action=Action.DELETE.value, tally=Tally.DELETE.value,
                               outcome=Outcome.SUCCESS.value, repository="late/app", user="latecomer",
                               raw=f"DELETE /v2/late/app/manifests/v{i}") for i in range(3)])
            store.close()
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline:
                text = str(b.evaluate("document.body.innerText"))
                if "Matching deletes\n\n3" in text and "Download CSV (3 rows)" in text:
                    break
                time.sleep(0.5)
            else:
                raise AssertionError(f"the page did not refresh to 3 deletes: {text[-800:]!r}")
            b.screenshot(ARTIFACTS / "audit-refreshed.png")
        finally:
            b.close()


def _listening(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net/tcp{,6} print them) listening on ``port``."""
    out = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            addr, hexport = f[1].split(":")
            if f[3] == "0A" and int(hexport, 16) == port:
                out.add(addr)
    return out


def test_the_dashboard_binds_to_loopback_only(tmp_path: Path) -> None:
    """`regwatch dashboard` listens on 127.0.0.1 only, unless told otherwise."""
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to read the listening sockets from")
    db = seed_store(tmp_path / "db", samples=False, storage=False)
    with dashboard_server(db) as url:
        port = int(url.rsplit(":", 1)[1])
        assert _listening(port) == {"0100007F"}  # 127.0.0.1, and no wildcard or IPv6 socket


def test_dashboard_command_keeps_the_services_signature() -> None:
    from regwatch.dashboard import APP, dashboard_command

    cmd: list[Any] = dashboard_command("regwatch.example.yaml", "regwatch-data", 8599)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4] == str(APP) and APP.exists()
    i = cmd.index("--server.address")
    assert cmd[i + 1] == "127.0.0.1" and cmd[cmd.index("--server.port") + 1] == "8599"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    rest = cmd[cmd.index("--") + 1:]
    assert rest[0] == "--config" and rest[1].endswith("regwatch.example.yaml") and Path(rest[1]).is_absolute()
    assert rest[2] == "--db" and rest[3].endswith("regwatch-data")
    assert dashboard_command(None, None, 1, host="0.0.0.0")[-1] == "--"
