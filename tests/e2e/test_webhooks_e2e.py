"""End to end: a real Distribution registry notifies regwatch's webhook receiver.

A fresh Debian ``docker-registry`` with htpasswd auth is configured with two
notification endpoints on the same :class:`WebhookReceiver`: one with the right shared
secret in its ``Authorization`` header and one with a wrong one. skopeo pushes an image
(from an OCI layout built locally by scripts/make_distribution_samples.py), pulls it as
another user and deletes it. Then:

- the receiver got push, pull and delete events with the repository, digest and actor;
- the wrong-secret endpoint got 401s and none of its deliveries reached the sink;
- the registry's own log, ingested with ``regwatch.pipeline.ingest`` into an embedded
  store, has the successful delete without a user (Distribution 2.8 logs none), and
  :func:`attributed_deletes` fills it in from the stored webhook events.

Needs docker-registry, skopeo and htpasswd (Debian: docker-registry, skopeo,
apache2-utils). Without them the test skips, except under CI=true where it fails.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from regwatch.events import Event
from regwatch.pipeline import ingest
from regwatch.sources.webhooks import WebhookReceiver, attributed_deletes
from regwatch.stores.base import Query
from regwatch.stores.embedded import EmbeddedStore

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "make_distribution_samples.py"
TOOLS = ("docker-registry", "skopeo", "htpasswd")
HOST = "127.0.0.1"
SECRET = "Bearer e2e-webhook-secret"
REPO = "e2e/app"


def _samples() -> ModuleType:
    name = "make_distribution_samples"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None, f"cannot load {SCRIPT}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _require_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if not missing:
        return
    msg = f"e2e needs {', '.join(missing)} on PATH (apt-get install docker-registry skopeo apache2-utils)"
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


class Collected:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[Event] = []

    def __call__(self, events: list[Event]) -> None:
        with self._lock:
            self.events.extend(events)

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)


def _config(workdir: Path, port: int, hook_port: int) -> Path:
    htpasswd = workdir / "htpasswd"
    lines = [
        subprocess.run(
            ["htpasswd", "-Bbn", u, p], check=True, capture_output=True, text=True
        ).stdout.strip()
        for u, p in _samples().USERS.items()
    ]
    htpasswd.write_text("\n".join(lines) + "\n")
    storage = workdir / "storage"
    storage.mkdir()
    cfg = workdir / "config.yml"
    cfg.write_text(
        f"""version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {HOST}:{port}
auth:
  htpasswd:
    realm: regwatch-realm
    path: {htpasswd}
notifications:
  events:
    includereferences: true
  endpoints:
    - name: regwatch
      url: http://{HOST}:{hook_port}/distribution
      headers:
        Authorization: [{SECRET}]
      timeout: 1s
      threshold: 1
      backoff: 1s
    - name: wrong-secret
      url: http://{HOST}:{hook_port}/distribution
      headers:
        Authorization: [Bearer not-the-secret]
      timeout: 1s
      threshold: 1
      backoff: 1s
"""
    )
    return cfg


def _skopeo(env: dict[str, str], *args: str) -> None:
    res = subprocess.run(
        ["skopeo", "--insecure-policy", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, f"skopeo {args[0]} failed: {res.stderr.strip()[-800:]}"


def _skopeo_env(workdir: Path) -> dict[str, str]:
    home = workdir / "skopeo-home"
    home.mkdir()
    (home / "auth.json").write_text('{"auths":{}}')
    (home / "registries.conf").write_text("")
    return {
        **os.environ,
        # isolate skopeo's blob-info cache, as scripts/make_distribution_samples.py does
        "_CONTAINERS_ROOTLESS_UID": "1000",
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "HOME": str(home),
        "REGISTRY_AUTH_FILE": str(home / "auth.json"),
        "CONTAINERS_REGISTRIES_CONF": str(home / "registries.conf"),
    }


def _wait_for(pred: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return bool(pred())


def test_registry_notifications_reach_the_receiver_and_attribute_the_delete(tmp_path: Path) -> None:
    _require_tools()
    samples = _samples()
    users = samples.USERS
    images = samples.build_oci_layout(tmp_path / "oci", {"small": [3_000]})
    image = images["small"]
    sink = Collected()
    rx = WebhookReceiver(f"{HOST}:0", sink, secret=SECRET).start()
    proc: subprocess.Popen[bytes] | None = None
    log_path = tmp_path / "registry.log"
    try:
        port = samples.free_port()
        cfg = _config(tmp_path, port, rx.port)
        with log_path.open("wb") as log_fh:
            proc = subprocess.Popen(
                ["docker-registry", "serve", str(cfg)],
                stdin=subprocess.DEVNULL,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            samples.wait_port(port)
            env = _skopeo_env(tmp_path)
            ref = f"docker://{HOST}:{port}/{REPO}:1.0"
            _skopeo(
                env,
                "copy",
                "--dest-creds",
                f"ci-bot:{users['ci-bot']}",
                "--dest-tls-verify=false",
                f"oci:{tmp_path / 'oci'}:small",
                ref,
            )
            _skopeo(
                env,
                "copy",
                "--src-creds",
                f"alice:{users['alice']}",
                "--src-tls-verify=false",
                ref,
                f"oci:{tmp_path / 'pulled'}:x",
            )
            _skopeo(
                env, "delete", "--creds", f"ci-bot:{users['ci-bot']}", "--tls-verify=false", ref
            )
            # delivery is asynchronous: wait for the delete's notifications
            assert _wait_for(lambda: any(e.action == "delete" for e in sink.snapshot()), 15), (
                f"no delete notification arrived; got {[e.action for e in sink.snapshot()]}, "
                f"receiver {dict(rx.metrics)}"
            )
            # the wrong-secret endpoint has tried at least once by now (same queue order)
            assert _wait_for(lambda: rx.metrics["unauthorized"] > 0, 10), dict(rx.metrics)
    finally:
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        rx.stop()

    events = sink.snapshot()
    manifest = image.manifest.digest
    by = {(e.action, e.repository, e.digest, e.user) for e in events}
    assert ("push", REPO, manifest, "ci-bot") in by, sorted(map(str, by))
    assert ("pull", REPO, manifest, "alice") in by
    assert ("delete", REPO, manifest, "ci-bot") in by
    for blob in image.layers:
        assert ("blob_upload", REPO, blob.digest, "ci-bot") in by
        assert ("blob_pull", REPO, blob.digest, "alice") in by
    push = next(e for e in events if e.action == "push")
    assert (push.reference, push.bytes, push.client_ip) == ("1.0", image.manifest.size, HOST)
    assert push.user_agent is not None and push.user_agent.startswith("skopeo/")
    assert all(
        (e.tally, e.auth, e.source) == ("none", "none", "distribution-webhook") for e in events
    )
    # every event arrived once through the right endpoint; the wrong one got only 401s
    assert len({e.id for e in events}) == len(events)
    assert rx.metrics["accepted"] == len(events) and rx.metrics["bad_request"] == 0
    assert rx.metrics["unauthorized"] >= 1
    assert all("e2e-webhook-secret" not in e.raw and "not-the-secret" not in e.raw for e in events)

    # the registry's own log: the successful delete has no user; the webhooks give it one
    store = EmbeddedStore(tmp_path / "db")
    ingest([str(log_path)], store)
    from regwatch.audit import deletes

    (logged,) = [r for r in deletes(store) if r["outcome"] == "success"]
    assert (logged["repository"], logged["reference"], logged["user"]) == (REPO, manifest, None)
    assert store.write(events).written == len(events)
    assert store.write(events).duplicates == len(events)  # a redelivery is stored once
    (row,) = attributed_deletes(store, Query(repo="e2e/*"), annotate=True)
    assert (row["source"], row["reference"], row["user"], row["user_from"]) == (
        "distribution",
        manifest,
        "ci-bot",
        "webhook:request_id",
    )
    assert row["request_id"] == next(e.request_id for e in events if e.action == "delete")
    # webhook events count nothing: the summary is the log's alone
    from regwatch.summary import summarize

    summary = summarize(store, Query())
    assert (summary["pushes"], summary["pulls"], summary["deletes"]) == (1, 1, 1)
