"""`service.dashboard: true`: `regwatch run` starts the dashboard beside itself on the
configured port, prints its URL, the dashboard serves the service's store (its Ingest
health page shows the running service), and stopping the service stops the dashboard."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dashboard_support import ROOT, TIMEOUT, app_test, free_port, metrics, wait_http


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_service_starts_and_stops_the_dashboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, state, port = tmp_path / "db", tmp_path / "state", free_port()
    cfg = tmp_path / "regwatch.yaml"
    cfg.write_text(
        f"store: {{kind: embedded, path: {db}}}\n"
        f"sources:\n  - paths: [{ROOT / 'sample_logs' / 'distribution' / 'registry-text.log'}]\n    start_at: beginning\n"
        f"service: {{state_dir: {state}, poll_interval: 0.05, idle_flush: 0.5, dashboard: true, dashboard_port: {port}}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGWATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    svc = subprocess.Popen([sys.executable, "-m", "regwatch", "--config", str(cfg), "run"], env=env,
                           stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert svc.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(svc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    dash: list[int] = []
    try:
        deadline = time.monotonic() + TIMEOUT
        want = f"dashboard: http://127.0.0.1:{port}"
        while not any(want in ln for ln in lines) and time.monotonic() < deadline and svc.poll() is None:
            time.sleep(0.2)
        assert any(want in ln for ln in lines), "".join(lines)
        wait_http(f"http://127.0.0.1:{port}/_stcore/health")
        children = [int(p) for p in Path(f"/proc/{svc.pid}/task/{svc.pid}/children").read_text().split()]
        dash = [p for p in children if b"streamlit" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(dash) == 1
        argv = Path(f"/proc/{dash[0]}/cmdline").read_bytes().split(b"\0")
        assert argv[argv.index(b"--config") + 1] == str(cfg).encode()

        # the same app, on the same config, reads the service's store and status
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            at = app_test(monkeypatch, None, config=cfg, now=None)
            at.run()
            at.switch_page("views/ingest_health.py")
            at.run()
            m = metrics(at)
            if m.get("Service") == "running" and m.get("Events") not in (None, "0", "–"):
                break
            time.sleep(1)
        assert m.get("Service") == "running", m
        assert not at.exception and not at.error
    finally:
        svc.send_signal(signal.SIGTERM)
        svc.wait(timeout=60)
        reader.join(timeout=10)
    assert svc.returncode == 0, "".join(lines)
    assert not any("Traceback" in ln for ln in lines), "".join(lines)
    deadline = time.monotonic() + 15
    while _alive(dash[0]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(dash[0]), "the dashboard outlived the service"
