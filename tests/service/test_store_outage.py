"""The embedded store made unwritable in the middle of a run, then writable again, while
a writer keeps appending real registry lines: the service says it is blocked and why,
its checkpoint does not move while the store refuses, and at the end the store holds
exactly what a one-shot ingest of the log holds (same ids, same summary).

CI runs as root, and root ignores permission bits; the store's tree is made immutable
instead (``chattr -R +i``, ext4 and most Linux filesystems), which refuses every write
to root as well: a real failure of the store's own file operations, not a stand-in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REAL = [l for l in (ROOT / "sample_logs" / "distribution" / "registry-text.log").read_text().splitlines() if l.strip()]
_APP = re.compile(r'^time="([^"]+)"')
_ACC = re.compile(r"\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2}) \+0000\]")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _shifted(line: str, hours: int) -> str:
    def app(m: re.Match[str]) -> str:
        t = datetime.fromisoformat(m.group(1)[:26].rstrip("Z"))
        return 'time="' + (t + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + '"'

    def acc(m: re.Match[str]) -> str:
        t = datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S")
        return "[" + (t + timedelta(hours=hours)).strftime("%d/%b/%Y:%H:%M:%S") + " +0000]"

    line = _UUID.sub(lambda m: f"{hours:08x}" + m.group(0)[8:], line)
    return _ACC.sub(acc, _APP.sub(app, line))


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _immutable(path: Path, on: bool) -> None:
    chattr = shutil.which("chattr")
    if chattr is None:
        msg = "chattr (e2fsprogs) is needed to make the store unwritable for root"
        if _in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    res = subprocess.run([chattr, "-R", "+i" if on else "-i", str(path)], capture_output=True, text=True, check=False)
    if res.returncode != 0:
        msg = f"chattr failed here ({res.stderr.strip()}): the filesystem has no immutable flag"
        if _in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


def _status(state: Path):  # type: ignore[no-untyped-def]
    from regwatch.service.status import read_status

    return read_status(state, datetime.now(timezone.utc))


def _wait(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _checkpoint(state: Path) -> str:
    return "".join(p.read_text() for p in sorted(state.glob("tail-*.json")))


@pytest.mark.timeout(300)
def test_unwritable_embedded_store_blocks_then_resumes_losing_nothing(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("runs as root (as CI does): it uses chattr, which needs CAP_LINUX_IMMUTABLE")
    logs, db, state = tmp_path / "logs", tmp_path / "db", tmp_path / "state"
    logs.mkdir()
    log = logs / "registry.log"
    log.touch()
    cfg = tmp_path / "regwatch.yaml"
    cfg.write_text(
        f"store: {{kind: embedded, path: {db}}}\n"
        f"sources:\n  - paths: [{log}]\n"
        f"service: {{state_dir: {state}, poll_interval: 0.05, idle_flush: 0.5}}\n"
    )
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        seq = 0
        with open(log, "a", encoding="utf-8") as fh:
            while not stop.is_set():
                fh.write("".join(_shifted(REAL[(seq + i) % len(REAL)], (seq + i) // len(REAL)) + "\n" for i in range(20)))
                fh.flush()
                seq += 20
                written[0] = seq
                time.sleep(0.02)

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    svc = subprocess.Popen([sys.executable, "-m", "regwatch", "--config", str(cfg), "run"], env=env, stderr=subprocess.PIPE, text=True)
    w = threading.Thread(target=writer, daemon=True)
    w.start()
    try:
        _wait(lambda: (s := _status(state)) is not None and s.events_written > 200, 60, "the first events")
        _immutable(db, True)
        try:
            _wait(lambda: (s := _status(state)) is not None and not s.store_ok, 30, "the service to report the store blocked")
            st = _status(state)
            assert st is not None and st.store_blocked_reason and st.store_errors.get("write", 0) >= 1
            out = subprocess.run([sys.executable, "-m", "regwatch", "--config", str(cfg), "status"], env=env, capture_output=True, text=True, check=False)
            assert "BLOCKED" in out.stdout, out.stdout + out.stderr
            before = _checkpoint(state)
            time.sleep(3.0)  # the writer goes on; the service must not move its checkpoint
            assert _checkpoint(state) == before
            assert svc.poll() is None, "the service died during the outage"
        finally:
            _immutable(db, False)
        _wait(lambda: (s := _status(state)) is not None and s.store_ok, 90, "the service to resume")
        stop.set()
        w.join()
        size = log.stat().st_size
        _wait(
            lambda: (s := _status(state)) is not None and bool(s.sources) and all(x.lag_bytes == 0 and x.size == size for x in s.sources),
            120,
            "the service to catch up",
        )
    finally:
        stop.set()
        svc.send_signal(signal.SIGTERM)
        _, err = svc.communicate(timeout=60)
    assert svc.returncode == 0, err
    assert "Traceback" not in err, err

    from regwatch.pipeline import ingest
    from regwatch.stores.base import Query
    from regwatch.stores.embedded import EmbeddedStore
    from regwatch.summary import summarize

    one = EmbeddedStore(tmp_path / "one")
    got = EmbeddedStore(db)
    try:
        ingest([str(log)], one)
        ids = [e.id for e in got.search(Query())]
        assert len(ids) == len(set(ids))
        assert sorted(ids) == sorted(e.id for e in one.search(Query()))
        s1 = {k: v for k, v in summarize(got, Query()).items() if isinstance(v, int)}
        s2 = {k: v for k, v in summarize(one, Query()).items() if isinstance(v, int)}
        assert s1 == s2
        print(f"\n{written[0]} lines written, {len(ids)} events, outage handled: {json.dumps(s1)[:120]}")
    finally:
        one.close()
        got.close()
