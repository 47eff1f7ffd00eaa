"""Helpers of the dashboard tests (a uniquely named module: several test folders have a
conftest.py, so nothing here is imported from a conftest).

* :func:`seed_store`: an embedded store filled the way an operator fills it (the library's
  ingest of sample_logs/), plus hand-made events for what the samples lack (auth failure
  bursts, hostile log content) and storage samples for the disk forecast;
* :func:`app_test`: a ``streamlit.testing.v1.AppTest`` of the packaged app on a store;
* :class:`Browser`: real headless Chromium driven over the DevTools protocol. Streamlit
  pages build themselves over a websocket after load, which ``--screenshot`` and
  ``--virtual-time-budget`` do not wait for; the protocol lets the test wait until the
  page shows what it must, then take the screenshot and read the DOM.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from regwatch.events import Action, AuthClass, Event, Outcome, Tally

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "regwatch" / "dashboard_app" / "app.py"
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
SAMPLES = [ROOT / "sample_logs" / "distribution", ROOT / "sample_logs" / "harbor"]
#: the fixed "now" of the seeded pages: the hand-made events end just before it
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOSTILE = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "**bold** [x](javascript:alert(3))",
    "\x1b[31mred\x1b[0m",
)
HOSTILE_REPO = "evil/<script>alert(1)</script>"
HOSTILE_USER = "**bold** [x](javascript:alert(3))"
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT = 60  # seconds: AppTest runs and page loads on a busy 2-core CI machine


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def seeded_events() -> list[Event]:
    """Events the sample logs do not have: a burst of auth failures from one address, an
    anonymous denial, and deletes, pushes and auth failures whose repository, user and
    raw line carry HTML, JavaScript, markdown and ANSI codes. All in the hour before NOW."""
    t0 = NOW - timedelta(minutes=50)
    out: list[Event] = []

    def add(minutes: float, **kw: Any) -> None:
        kw.setdefault("source", "distribution")
        kw.setdefault("component", "registry")
        out.append(Event(id=f"seed{len(out):05d}", timestamp=t0 + timedelta(minutes=minutes), **kw))

    for i in range(30):  # a burst: 30 failed logins of mallory within 3 minutes
        add(20 + i * 0.1, action=Action.AUTH.value, auth=AuthClass.AUTH_FAILURE.value, outcome=Outcome.FAILURE.value,
            user="mallory", client_ip="203.0.113.9", status=401, raw=f"login failed for mallory attempt {i}")
    add(1, action=Action.PULL.value, tally=Tally.PULL_FAILED.value, auth=AuthClass.ANONYMOUS_DENIAL.value,
        outcome=Outcome.FAILURE.value, repository="team/private", client_ip="198.51.100.4", status=401,
        raw="GET /v2/team/private/manifests/latest 401")
    for i, bad in enumerate(HOSTILE):
        add(30 + i, action=Action.DELETE.value, tally=Tally.DELETE.value, outcome=Outcome.SUCCESS.value,
            repository=HOSTILE_REPO, reference="v1", user=HOSTILE_USER, client_ip="192.0.2.66", status=202,
            method="DELETE", request_id=f"hostile-{i}", raw=f"DELETE /v2/{HOSTILE_REPO}/manifests/v1 note={bad}")
        add(35 + i, action=Action.PUSH.value, tally=Tally.PUSH.value, outcome=Outcome.SUCCESS.value,
            repository=HOSTILE_REPO, reference=f"t{i}", user=HOSTILE_USER, client_ip="192.0.2.66", status=201,
            raw=f"PUT /v2/{HOSTILE_REPO}/manifests/t{i} {bad}")
        add(40 + i, action=Action.AUTH.value, auth=AuthClass.AUTH_FAILURE.value, outcome=Outcome.FAILURE.value,
            user=bad, client_ip="192.0.2.66", status=401, raw=f"authentication failed: {bad}")
    return out


def seed_store(db: Path, *, samples: bool = True, extra: bool = True, storage: bool = True) -> Path:
    """Fill the embedded store at ``db`` (see the module docstring); returns ``db``."""
    from regwatch.pipeline import ingest
    from regwatch.quarantine import Quarantine
    from regwatch.stores.embedded import EmbeddedStore

    store = EmbeddedStore(db)
    try:
        if samples:
            ingest([str(p) for p in SAMPLES], store, quarantine=Quarantine(db / "quarantine"))
        if extra:
            store.write(seeded_events())
        if storage:
            store.put_records(storage_records())  # type: ignore[arg-type]
    finally:
        store.close()
    return db


def storage_records(path: str = "/var/lib/registry", days: int = 20, per_day: float = 50e9,
                    start: float = 2.5e12, capacity: int = 4_000_000_000_000) -> list[Any]:
    """Hourly samples of a disk growing ``per_day`` up to NOW, as the sampler writes them:
    87.5% used at NOW, full in about 10 days (85% fires, 95% and "full within 7 d" do not)."""
    import math

    from regwatch.storage import StorageSample

    n = days * 24
    out = []
    for i in range(n + 1):
        t = NOW - timedelta(hours=n - i)
        used = start + per_day * i / 24 + 2e9 * math.sin(2 * math.pi * t.hour / 24)
        out.append(StorageSample(t, path, int(used), capacity, "statvfs").to_record())
    return out


def app_test(monkeypatch: pytest.MonkeyPatch, db: Path | None, *, config: Path | None = None,
             now: datetime | None = NOW) -> Any:
    """An AppTest of the packaged app on ``db`` (and ``config``) at ``now``."""
    from streamlit.testing.v1 import AppTest

    for k in ("REGWATCH_DB", "REGWATCH_CONFIG", "REGWATCH_DASHBOARD_NOW"):
        monkeypatch.delenv(k, raising=False)
    if db is not None:
        monkeypatch.setenv("REGWATCH_DB", str(db))
    if config is not None:
        monkeypatch.setenv("REGWATCH_CONFIG", str(config))
    if now is not None:
        monkeypatch.setenv("REGWATCH_DASHBOARD_NOW", now.isoformat())
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def metrics(at: Any) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def assert_clean(at: Any) -> None:
    """No exception element and no error box on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium() -> str:
    """Debian's chromium; a missing one fails under CI=true (as tests/unit/test_report_browser.py)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if in_ci():
            pytest.fail("chromium is required when CI=true: run scripts/install-sysdeps.sh", pytrace=False)
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    return exe


def wait_http(url: str, timeout: float = TIMEOUT, proc: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the dashboard exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


class Browser:
    """One headless Chromium page driven over the DevTools protocol."""

    def __init__(self, exe: str, home: Path, size: tuple[int, int] = (1400, 1000)) -> None:
        from websockets.sync.client import connect

        profile = home / "profile"
        profile.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HOME": str(home)}  # a profile of its own, never the user's
        self.proc = subprocess.Popen(
            [exe, *CHROME_FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
             "--hide-scrollbars", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + TIMEOUT
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise AssertionError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024, open_timeout=TIMEOUT))
        self._id = 0
        self.send("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1, mobile=False)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=TIMEOUT))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return res.get("result", {}).get("value")

    def load(self, url: str, until_text: list[str], timeout: float = TIMEOUT) -> str:
        """Open ``url`` and wait until the page's text holds every string of
        ``until_text`` (or an exception box shows), Streamlit has stopped running the
        script, and charts had a moment to draw; returns the page's text."""
        self.send("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        probe = ("JSON.stringify({text: document.body ? document.body.innerText : '', "
                 "exc: document.querySelectorAll('[data-testid=\"stException\"]').length, "
                 "running: !!document.querySelector('[data-testid=\"stStatusWidget\"] button')})")
        text = ""
        while time.monotonic() < deadline:
            state = json.loads(self.evaluate(probe) or "{}")
            text = state.get("text", "")
            if state.get("exc") or (all(s in text for s in until_text) and not state.get("running")):
                time.sleep(1.5)  # charts (vega) draw after the text is in
                return str(self.evaluate("document.body.innerText"))
            time.sleep(0.3)
        raise AssertionError(f"{url}: {[s for s in until_text if s not in text]} not shown within {timeout:.0f} s; page text: {text[:1500]!r}")

    def dom(self) -> str:
        return str(self.evaluate("document.documentElement.outerHTML"))

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing in any state
            stack = getattr(self, "_stack", None)
            if stack is not None:
                stack.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@contextmanager
def dashboard_server(db: Path, env_now: datetime | None = NOW, config: Path | None = None,
                     extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """``regwatch dashboard`` as a subprocess on a free loopback port; yields its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGWATCH_")}
    env.update(extra_env or {})
    if env_now is not None:
        env["REGWATCH_DASHBOARD_NOW"] = env_now.isoformat()
    regwatch = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "regwatch"
    exe = str(regwatch) if regwatch.exists() else shutil.which("regwatch") or "regwatch"
    cmd = [exe] + (["--config", str(config)] if config else []) + ["dashboard", "--db", str(db), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/_stcore/health", proc=proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def download_bytes(button: Any) -> bytes:
    """The bytes an AppTest download button serves (AppTest keeps them in an in-memory
    media storage, looked up by the file id in the button's URL)."""
    import gc

    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    file_id = str(button.proto.url).rsplit("/", 1)[-1].split(".")[0]
    for obj in gc.get_objects():
        if isinstance(obj, MemoryMediaFileStorage) and file_id in obj._files_by_id:
            return bytes(obj._files_by_id[file_id].content)
    raise AssertionError(f"no media file {file_id!r} behind the download button {button.label!r}")


def frame_rows(df: Any) -> list[dict[str, Any]]:
    """A dataframe element's rows with NaN/NaT as None and numbers as Python ints."""
    import math

    import pandas as pd

    out = []
    for rec in df.to_dict("records"):
        row = {}
        for k, v in rec.items():
            if v is None or (isinstance(v, float) and math.isnan(v)) or (not isinstance(v, str) and pd.isna(v)):
                v = None
            elif hasattr(v, "item"):
                v = v.item()
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            row[k] = v
        out.append(row)
    return out
