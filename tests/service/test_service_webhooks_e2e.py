"""End to end through the service: a real Debian ``docker-registry`` (htpasswd auth)
notifies `regwatch run`'s webhook receiver while the service tails the registry's own
log; skopeo pushes, pulls and deletes. Then the store holds the webhook events once each
(one envelope may carry several; redeliveries are not stored twice), the log's delete
(which names no user in Distribution 2.x) is shown with its user by
`regwatch audit deletes`, and the summary counts the log's requests, not the webhooks.

Needs docker-registry, skopeo and htpasswd; without them it skips, except under CI=true
where it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
REPO = "svc/app"


def _e2e() -> ModuleType:
    name = "regwatch_webhooks_e2e"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "e2e" / "test_webhooks_e2e.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _regwatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "regwatch", *args], env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.timeout(300)
def test_service_receives_registry_notifications_and_attributes_the_delete(tmp_path: Path) -> None:
    e2e = _e2e()
    e2e._require_tools()
    samples = e2e._samples()
    users = samples.USERS
    images = samples.build_oci_layout(tmp_path / "oci", {"small": [3_000]})
    image = images["small"]
    hook_port = samples.free_port()
    port = samples.free_port()
    reg_cfg = e2e._config(tmp_path, port, hook_port)
    # the e2e config has a second endpoint with a wrong secret: it must get 401s only
    log_path = tmp_path / "registry.log"
    db, state = tmp_path / "db", tmp_path / "state"
    cfg = tmp_path / "regwatch.yaml"
    cfg.write_text(
        f"store: {{kind: embedded, path: {db}}}\n"
        f"sources:\n  - paths: [{log_path}]\n"
        f"webhooks: {{listen: '127.0.0.1:{hook_port}', secret_env: REGWATCH_WEBHOOK_SECRET}}\n"
        f"service: {{state_dir: {state}, poll_interval: 0.05, idle_flush: 0.5}}\n"
    )
    # the registry config of tests/e2e sends e2e.SECRET to one endpoint and a wrong one to the other
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REGWATCH_WEBHOOK_SECRET": e2e.SECRET}
    log_path.touch()
    svc = subprocess.Popen([sys.executable, "-m", "regwatch", "--config", str(cfg), "run"], env=env, stderr=subprocess.PIPE, text=True)
    reg: subprocess.Popen[bytes] | None = None
    try:
        samples.wait_port(hook_port)
        with log_path.open("ab") as log_fh:
            reg = subprocess.Popen(
                ["docker-registry", "serve", str(reg_cfg)],
                stdin=subprocess.DEVNULL, stdout=log_fh, stderr=subprocess.STDOUT, start_new_session=True,
            )
            samples.wait_port(port)
            senv = e2e._skopeo_env(tmp_path)
            ref = f"docker://127.0.0.1:{port}/{REPO}:1.0"
            e2e._skopeo(senv, "copy", "--dest-creds", f"ci-bot:{users['ci-bot']}", "--dest-tls-verify=false", f"oci:{tmp_path / 'oci'}:small", ref)
            e2e._skopeo(senv, "copy", "--src-creds", f"alice:{users['alice']}", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'pulled'}:x")
            e2e._skopeo(senv, "delete", "--creds", f"ci-bot:{users['ci-bot']}", "--tls-verify=false", ref)

            from regwatch.service.status import read_status

            def done() -> bool:
                st = read_status(state, datetime.now(timezone.utc))
                return (
                    st is not None and st.running and st.webhooks.get("unauthorized", 0) >= 1
                    and st.webhooks.get("accepted", 0) >= 3 and bool(st.sources) and all(s.lag_bytes == 0 for s in st.sources)
                )

            deadline = time.monotonic() + 60
            while not done() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2.0)  # the delete's notification comes last; the receiver answers at once
            assert done(), read_status(state, datetime.now(timezone.utc))
    finally:
        if reg is not None and reg.poll() is None:
            os.kill(reg.pid, signal.SIGTERM)
            reg.wait(timeout=10)
        svc.send_signal(signal.SIGTERM)
        _, err = svc.communicate(timeout=60)
    assert svc.returncode == 0, err
    assert "Traceback" not in err and "e2e-webhook-secret" not in err

    from regwatch.service.status import read_status
    from regwatch.stores.base import Query
    from regwatch.stores.embedded import EmbeddedStore

    st = read_status(state, datetime.now(timezone.utc))
    assert st is not None and not st.running
    store = EmbeddedStore(db)
    try:
        hooks = [e for e in store.search(Query()) if e.source == "distribution-webhook"]
    finally:
        store.close()
    manifest = image.manifest.digest
    assert len({e.id for e in hooks}) == len(hooks)
    kinds = {(e.action, e.repository, e.user) for e in hooks}
    assert {("push", REPO, "ci-bot"), ("pull", REPO, "alice"), ("delete", REPO, "ci-bot")} <= kinds
    assert all("e2e-webhook-secret" not in (e.raw or "") and "not-the-secret" not in (e.raw or "") for e in hooks)

    res = _regwatch(env, "audit", "deletes", "--db", str(db), "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = [r for r in json.loads(res.stdout) if r["outcome"] == "success"]
    assert [(r["source"], r["repository"], r["reference"], r["user"]) for r in rows] == [("distribution", REPO, manifest, "ci-bot")]

    res = _regwatch(env, "summary", "--db", str(db), "--json")
    summary = json.loads(res.stdout)
    assert (summary["pushes"], summary["pulls"], summary["deletes"]) == (1, 1, 1)
