"""The service against a real Elasticsearch node.

* Two services, each with its own files, state directory and checkpoint (as on two
  hosts), write into one node: every event once, and the same ids and summary as
  one-shot ingests of their files.
* A dedicated node stopped in the middle of a run and started again on its data: the
  service reports the store blocked, its checkpoint stays, and nothing is lost.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from es_support import drop_es_prefix, es_unavailable

pytestmark = pytest.mark.es

ROOT = Path(__file__).resolve().parents[2]
ES_SCRIPT = ROOT / "scripts" / "elasticsearch.py"
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


def _lines(first_cycle: int, cycles: int) -> str:
    return "".join(_shifted(l, h) + "\n" for h in range(first_cycle, first_cycle + cycles) for l in REAL)


def _status(state: Path) -> Any:
    from regwatch.service.status import read_status

    return read_status(state, datetime.now(timezone.utc))


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _caught_up(state: Path, log: Path) -> Callable[[], bool]:
    def pred() -> bool:
        st = _status(state)
        size = log.stat().st_size
        return st is not None and st.running and bool(st.sources) and all(s.lag_bytes == 0 and s.size == size for s in st.sources)

    return pred


def _config(tmp: Path, name: str, url: str, prefix: str, log: Path) -> tuple[Path, Path]:
    state = tmp / f"state-{name}"
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(
        f"store: {{kind: elasticsearch, url: '{url}', index_prefix: {prefix}}}\n"
        f"sources:\n  - paths: [{log}]\n"
        f"service: {{state_dir: {state}, poll_interval: 0.05, idle_flush: 0.5}}\n"
    )
    return cfg, state


def _run(cfg: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "regwatch", "--config", str(cfg), "run"], env=env, stderr=subprocess.PIPE, text=True)


def _stop(p: subprocess.Popen[str]) -> str:
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=90)
    assert p.returncode == 0, err
    assert "Traceback" not in err, err
    return err


def _one_shot(tmp: Path, *logs: Path) -> tuple[list[str], dict[str, int]]:
    from regwatch.pipeline import ingest
    from regwatch.stores.base import Query
    from regwatch.stores.embedded import EmbeddedStore
    from regwatch.summary import summarize

    store = EmbeddedStore(tmp / f"one-{uuid.uuid4().hex[:6]}")
    try:
        ingest([str(p) for p in logs], store)
        return sorted(e.id for e in store.search(Query())), {k: v for k, v in summarize(store, Query()).items() if isinstance(v, int)}
    finally:
        store.close()


def _es_view(url: str, prefix: str) -> tuple[list[str], dict[str, int]]:
    from regwatch.stores.base import Query
    from regwatch.stores.elasticsearch import ElasticsearchStore
    from regwatch.summary import summarize

    store = ElasticsearchStore.from_env(url=url, environ={}, index_prefix=prefix)
    try:
        store._es.indices.refresh(index=store.pattern)  # what is written is searchable now
        return sorted(e.id for e in store.search(Query())), {k: v for k, v in summarize(store, Query()).items() if isinstance(v, int)}
    finally:
        store.close()


@pytest.mark.timeout(600)
def test_two_services_into_one_node_store_every_event_once(tmp_path: Path, es_node: dict[str, Any], es_client: Any) -> None:
    url = es_node["url"]
    prefix = f"rwsvc{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    logs = [tmp_path / "host-a" / "registry.log", tmp_path / "host-b" / "registry.log"]
    for i, log in enumerate(logs):
        log.parent.mkdir()
        log.write_text(_lines(10 * i, 2), encoding="utf-8")
    procs = []
    try:
        configs = [_config(tmp_path, f"svc{i}", url, prefix, log) for i, log in enumerate(logs)]
        procs = [_run(cfg, env) for cfg, _ in configs]
        # both keep reading while lines are appended
        for i, log in enumerate(logs):
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(_lines(10 * i + 2, 2))
        for (_, state), log in zip(configs, logs):
            _wait(_caught_up(state, log), 180, f"{log} to be stored")
        for p in procs:
            _stop(p)
        procs = []
        ids, summary = _es_view(url, prefix)
        want_ids, want = _one_shot(tmp_path, *logs)
        assert len(ids) == len(set(ids)), "an event is stored twice"
        assert ids == want_ids
        assert summary == want
        assert summary["pulls"] > 0 and summary["pushes"] > 0
    finally:
        for p in procs:
            p.kill()
        drop_es_prefix(es_client, prefix)


def _node(*args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(ES_SCRIPT), *args], capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        es_unavailable(f"scripts/elasticsearch.py {' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.timeout(900)
def test_node_stopped_and_restarted_mid_run_loses_nothing(tmp_path: Path, es_node: dict[str, Any]) -> None:
    if es_node.get("external"):
        pytest.skip("this test stops a node of its own; REGWATCH_TEST_ES_URL points at an external one")
    import tempfile

    rundir = Path(tempfile.mkdtemp(prefix="regwatch-es-outage-"))
    info = _node("start", "--dir", str(rundir), "--timeout", "240")
    url, port = info["url"], str(info["http_port"])
    prefix = "rwoutage"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "logs" / "registry.log"
    log.parent.mkdir()
    log.touch()
    cfg, state = _config(tmp_path, "svc", url, prefix, log)
    stop = threading.Event()

    def writer() -> None:
        cycle = 0
        with open(log, "a", encoding="utf-8") as fh:
            while not stop.is_set():
                fh.write(_lines(cycle, 1))
                fh.flush()
                cycle += 1
                time.sleep(0.3)

    svc = _run(cfg, env)
    w = threading.Thread(target=writer, daemon=True)
    w.start()
    try:
        _wait(lambda: (s := _status(state)) is not None and s.events_written > 100, 120, "the first events")
        _node("stop", "--dir", str(rundir), "--keep")
        _wait(lambda: (s := _status(state)) is not None and not s.store_ok, 120, "the service to report the store blocked")
        st = _status(state)
        assert st.store_blocked_reason
        before = "".join(p.read_text() for p in sorted(state.glob("tail-*.json")))
        time.sleep(3.0)
        assert "".join(p.read_text() for p in sorted(state.glob("tail-*.json"))) == before
        assert svc.poll() is None, "the service died while the node was down"
        _node("start", "--dir", str(rundir), "--port", port, "--timeout", "240")
        _wait(lambda: (s := _status(state)) is not None and s.store_ok, 240, "the service to resume")
        stop.set()
        w.join()
        _wait(_caught_up(state, log), 240, "the service to catch up")
        _stop(svc)
        ids, summary = _es_view(url, prefix)
        want_ids, want = _one_shot(tmp_path, log)
        assert len(ids) == len(set(ids))
        assert ids == want_ids
        assert summary == want
    finally:
        stop.set()
        if svc.poll() is None:
            svc.kill()
        subprocess.run([sys.executable, str(ES_SCRIPT), "stop", "--dir", str(rundir)], capture_output=True, timeout=120, check=False)
