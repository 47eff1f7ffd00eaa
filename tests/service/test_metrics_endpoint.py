"""A real `regwatch run` with ``metrics.listen`` on a free loopback port, tailing real
registry lines (sample_logs/distribution, appended after the start): its /metrics over
HTTP emits exactly the catalog's series names, passes `promtool check metrics`, counts
the lines it read, and, the lines being months old, counts them as backfill: stored, no
traffic counter moved.

Then `regwatch metrics --textfile` on the same store: the snapshot counts those events
like `regwatch summary` does and passes `promtool check metrics` too.

promtool missing: fails under CI=true, skips otherwise."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from regwatch.metrics.catalog import default_catalog

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "sample_logs" / "distribution" / "registry-text.log"


def require_tool(name: str, package: str) -> str:
    """The path of ``name``; fails under CI=true when it is missing, else skips."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} not found on PATH: apt-get install {package} (scripts/install-sysdeps.sh)"
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        return resp.read().decode()


def _samples(text: str) -> dict[str, float]:
    """series{labels} -> value, for the lines that are samples."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def _promtool_check(promtool: str, text: str) -> None:
    res = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.timeout(180)
def test_the_service_endpoint_emits_the_catalog_and_lints(tmp_path: Path) -> None:
    promtool = require_tool("promtool", "prometheus")
    port = _free_port()
    log_path = tmp_path / "registry.log"
    log_path.touch()
    db, state = tmp_path / "db", tmp_path / "state"
    cfg = tmp_path / "regwatch.yaml"
    cfg.write_text(
        f"store: {{kind: embedded, path: {db}}}\n"
        f"sources:\n  - paths: [{log_path}]\n"
        f"metrics: {{listen: '127.0.0.1:{port}'}}\n"
        f"service: {{state_dir: {state}, poll_interval: 0.05, idle_flush: 0.3}}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    svc = subprocess.Popen([sys.executable, "-m", "regwatch", "--config", str(cfg), "run"], env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/metrics"
    lines = LOG.read_bytes().count(b"\n")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _scrape(url)
                break
            except OSError:
                assert time.monotonic() < deadline and svc.poll() is None, "the endpoint never came up"
                time.sleep(0.2)
        with log_path.open("ab") as fh:
            fh.write(LOG.read_bytes())
        source = f'regwatch_collector_read_lines_total{{source="{log_path}"}}'
        while True:
            text = _scrape(url)
            got = _samples(text)
            if got.get(source) == lines and got.get(f'regwatch_collector_lag_bytes{{source="{log_path}"}}') == 0:
                break
            assert time.monotonic() < deadline, {k: v for k, v in got.items() if "collector" in k}
            time.sleep(0.2)
        time.sleep(1.5)  # one more status pass after the last write
        text = _scrape(url)
    finally:
        svc.send_signal(signal.SIGTERM)
        _, err = svc.communicate(timeout=60)
    assert svc.returncode == 0, err
    assert f"metrics: {url}" in err  # the URL is printed at start

    catalog = default_catalog()
    declared = re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)
    assert len(declared) == len(set(declared))
    # every declared metric is emitted, nothing else (a counter's _created series appear
    # once it has a child; a labelled counter without one is its HELP and TYPE only)
    assert {d for d in declared if not d.endswith("_created")} == set(catalog.names)
    assert set(declared) <= catalog.series_names()
    names = {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert names <= catalog.series_names()
    _promtool_check(promtool, text)

    got = _samples(text)
    from regwatch.stores.base import Query
    from regwatch.stores.embedded import EmbeddedStore

    store = EmbeddedStore(db)
    try:
        stored = len(store.search(Query()))
    finally:
        store.close()
    assert stored > 50
    assert got['regwatch_collector_stored_events_total{mode="backfill"}'] == stored
    assert got['regwatch_collector_stored_events_total{mode="live"}'] == 0
    traffic = [k for k, v in got.items() if v and k.startswith(("regwatch_registry_", "regwatch_image_", "regwatch_auth_", "regwatch_anonymous_", "regwatch_pulled_", "regwatch_pushed_")) and "_created" not in k]
    assert traffic == []
    assert got['regwatch_collector_dropped_lines_total{reason="merged"}'] > 0
    assert got["regwatch_collector_start_time_seconds"] <= datetime.now(UTC).timestamp()

    # the one-shot textfile over the same store
    out = tmp_path / "textfile" / "regwatch.prom"
    out.parent.mkdir()
    res = subprocess.run([sys.executable, "-m", "regwatch", "metrics", "--db", str(db), "--textfile", str(out)],
                         env=env, capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    snap = out.read_text()
    _promtool_check(promtool, snap)
    assert [p.name for p in out.parent.iterdir()] == ["regwatch.prom"]  # no temporary file left
    summary = json.loads(subprocess.run([sys.executable, "-m", "regwatch", "summary", "--db", str(db), "--json"],
                                        env=env, capture_output=True, text=True, timeout=120, check=True).stdout)
    s = _samples(snap)
    assert sum(v for k, v in s.items() if k.startswith("regwatch_image_pulls_total")) == summary["pulls"] > 0
    assert s["regwatch_auth_failures_total"] == summary["auth_failures"] > 0
    assert sum(v for k, v in s.items() if k.startswith("regwatch_pulled_bytes_total")) == summary["bytes_pulled"]
    assert not any(k.startswith("regwatch_collector_") for k in s)  # a snapshot has no collector
