"""`regwatch dashboard`: the store comes from --db, else REGWATCH_DB (as the other
commands), the URL is printed, and a bad port is one error line with exit code 2."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dashboard_support import free_port, wait_http

from regwatch.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _regwatch() -> str:
    exe = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "regwatch"
    return str(exe) if exe.exists() else "regwatch"


@pytest.mark.parametrize("how", ["env", "flag"])
def test_dashboard_takes_the_store_from_regwatch_db_or_db(tmp_path: Path, how: str) -> None:
    port = free_port()
    db = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGWATCH_")}
    cmd = [_regwatch(), "dashboard", "--port", str(port)]
    if how == "env":
        env["REGWATCH_DB"] = str(db)
    else:
        env["REGWATCH_DB"] = str(tmp_path / "not-this-one")
        cmd += ["--db", str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(f"regwatch dashboard: http://127.0.0.1:{port}/ (embedded store at {db})"), first
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc=proc)
        # the process became Streamlit's server, handed the same store directory
        argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"streamlit" in argv and argv[argv.index(b"--db") + 1] == str(db).encode()
        assert argv[argv.index(b"--server.address") + 1] == b"127.0.0.1"
    finally:
        proc.terminate()
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_bad_port_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", "--port", "70000"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "regwatch: error: --port 70000 is not a port number; use 1-65535, e.g. --port 8501"


def test_app_settings_from_arguments_then_environment() -> None:
    from regwatch.dashboard import Settings, app_settings

    env = {"REGWATCH_DB": "/env/db", "REGWATCH_CONFIG": "/env/c.yaml", "REGWATCH_DASHBOARD_REFRESH": "30",
           "REGWATCH_DASHBOARD_NOW": "2026-12-01T12:00:00Z"}
    assert app_settings(["--db", "/arg/db", "--refresh", "10"], env) == Settings(
        config_path="/env/c.yaml", db="/arg/db", now="2026-12-01T12:00:00Z", refresh=10)
    assert app_settings([], {}) == Settings()
    assert app_settings(["--refresh", "soon"], {}).refresh is None  # the sidebar's default then
    assert app_settings(["-x", "--config", "/a.yaml", "stray"], {}).config_path == "/a.yaml"


def test_the_quarantine_is_the_services_when_it_keeps_one(tmp_path: Path) -> None:
    from regwatch.dashboard import open_dashboard_store
    from regwatch.stores.base import Record
    from regwatch.stores.embedded import EmbeddedStore

    db, state = tmp_path / "db", tmp_path / "state"
    s = EmbeddedStore(db)
    s.put_records([Record("note", "k", datetime.now(UTC), {})])
    s.close()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"store: {{kind: embedded, path: {db}}}\nservice: {{state_dir: {state}}}\n")
    opened = open_dashboard_store(str(cfg), None)
    try:
        assert opened.state_dir == state and opened.quarantine_dir == db / "quarantine"  # no service quarantine yet
        (state / "quarantine").mkdir(parents=True)
        assert opened.quarantine_dir == state / "quarantine"
    finally:
        opened.store.close()
    plain = open_dashboard_store(None, str(db))
    try:
        assert plain.state_dir == db and plain.quarantine_dir == db / "quarantine"
    finally:
        plain.store.close()
