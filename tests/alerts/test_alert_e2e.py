"""The alert pack end to end, with real processes only, all on loopback:

a real Debian ``docker-registry`` (htpasswd auth) writes its log to a file; a real
``regwatch run`` tails it and serves ``/metrics``; a real ``prometheus`` scrapes the
service every second and evaluates the repository's rules every second; it sends its
alerts to a real ``prometheus-alertmanager``. skopeo pushes an image, pulls it 25 times
with the right password and logs in 80 times with a wrong one.

Then Alertmanager's API (``GET /api/v2/alerts``) holds ``RegwatchAuthFailuresHigh``
and Prometheus' (``/api/v1/alerts``) shows it firing, while
``RegwatchPullFailureRatioHigh`` is not firing in either (every pull succeeded: the
ratio is 0 with more than its minimum of 20 pulls).

The rules are a copy of ``alert_rules/regwatch.rules.yml`` with the same expressions and
every ``for:`` shortened to 5 s (the real 5 minutes would not fit a test). The auth
expression is unchanged, ``rate(regwatch_auth_failures_total[5m]) * 60 > 10``: a rate over
5 minutes, so it needs more than 50 real failures within the window, which is what the
wrong-password burst gives; the challenge 401 that each of skopeo's sessions starts with
must not count, or the successful pulls alone would push it over.

Needs docker-registry, skopeo, htpasswd, prometheus and prometheus-alertmanager: without
them it skips, except under CI=true where it fails.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from alert_tools import in_ci

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {
    "docker-registry": "docker-registry",
    "skopeo": "skopeo",
    "htpasswd": "apache2-utils",
    "prometheus": "prometheus",
    "prometheus-alertmanager": "prometheus-alertmanager",
}
HOST = "127.0.0.1"
REPO = "alerts/app"
WRONG_TRIES = 80  # 16 a minute over the 5-minute rate: a margin over the threshold of 10
GOOD_PULLS = 25


def _samples() -> ModuleType:
    name = "make_distribution_samples"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "make_distribution_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _require_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if not missing:
        return
    msg = f"the alert e2e test needs {', '.join(missing)} on PATH (apt-get install {' '.join(TOOLS[t] for t in missing)})"
    if in_ci():
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _registry_config(workdir: Path, port: int, users: dict[str, str]) -> Path:
    htpasswd = workdir / "htpasswd"
    lines = [subprocess.run(["htpasswd", "-Bbn", u, p], check=True, capture_output=True, text=True).stdout.strip() for u, p in users.items()]
    htpasswd.write_text("\n".join(lines) + "\n")
    storage = workdir / "storage"
    storage.mkdir()
    cfg = workdir / "registry.yml"
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
"""
    )
    return cfg


def _short_rules(dest: Path) -> list[str]:
    """A copy of every rule file of alert_rules/ with the same expressions and ``for: 5s``;
    returns the alert names."""
    names: list[str] = []
    for src in sorted((ROOT / "alert_rules").glob("*.rules.yml")):
        doc = yaml.safe_load(src.read_text())
        for group in doc["groups"]:
            group["interval"] = "1s"
            for rule in group["rules"]:
                if "alert" in rule:
                    names.append(rule["alert"])
                    rule["for"] = "5s"
        (dest / src.name).write_text(yaml.safe_dump(doc, sort_keys=False))
    return names


def _skopeo_env(workdir: Path) -> dict[str, str]:
    home = workdir / "skopeo-home"
    home.mkdir()
    (home / "auth.json").write_text('{"auths":{}}')
    (home / "registries.conf").write_text("")
    return {
        **os.environ,
        "_CONTAINERS_ROOTLESS_UID": "1000",
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "HOME": str(home),
        "REGISTRY_AUTH_FILE": str(home / "auth.json"),
        "CONTAINERS_REGISTRIES_CONF": str(home / "registries.conf"),
    }


def _skopeo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["skopeo", "--insecure-policy", *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False
    )


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read().decode())


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _start(cmd: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
    fh = log.open("ab")
    try:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, **kw)
    finally:
        fh.close()


def _stop(p: subprocess.Popen[bytes] | None) -> None:
    if p is None or p.poll() is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=10)


def _prom_alerts(prom: str) -> dict[str, str]:
    """alertname -> state (pending or firing) in Prometheus."""
    data = _get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
    return {a["labels"]["alertname"]: a["state"] for a in data}


def _am_alerts(am: str) -> list[dict[str, Any]]:
    return list(_get_json(f"{am}/api/v2/alerts?active=true&silenced=true&inhibited=true"))


@pytest.mark.timeout(300)
def test_auth_failures_reach_alertmanager_and_pull_failures_do_not_fire(tmp_path: Path) -> None:
    _require_tools()
    samples = _samples()
    users = samples.USERS
    samples.build_oci_layout(tmp_path / "oci", {"small": [2_000]})
    reg_port, metrics_port, prom_port, am_port = (samples.free_port() for _ in range(4))
    reg_cfg = _registry_config(tmp_path, reg_port, users)
    log_path = tmp_path / "registry.log"
    log_path.touch()
    cfg = tmp_path / "regwatch.yaml"
    cfg.write_text(
        f"store: {{kind: embedded, path: {tmp_path / 'db'}}}\n"
        f"sources:\n  - paths: [{log_path}]\n"
        f"metrics: {{listen: '{HOST}:{metrics_port}'}}\n"
        f"service: {{state_dir: {tmp_path / 'state'}, poll_interval: 0.05, idle_flush: 0.3}}\n"
    )
    rules = tmp_path / "rules"
    rules.mkdir()
    alert_names = _short_rules(rules)
    assert {"RegwatchAuthFailuresHigh", "RegwatchPullFailureRatioHigh"} <= set(alert_names)
    am_cfg = tmp_path / "alertmanager.yml"
    am_cfg.write_text(
        "route:\n  receiver: sink\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        "receivers:\n  - name: sink\n"
    )
    prom_cfg = tmp_path / "prometheus.yml"
    prom_cfg.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(rules / "*.yml")],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{HOST}:{am_port}"]}]}]},
                "scrape_configs": [{"job_name": "regwatch", "static_configs": [{"targets": [f"{HOST}:{metrics_port}"]}]}],
            }
        )
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    prom_url, am_url = f"http://{HOST}:{prom_port}", f"http://{HOST}:{am_port}"
    procs: dict[str, subprocess.Popen[bytes] | None] = dict.fromkeys(("registry", "regwatch", "prometheus", "alertmanager"))
    try:
        procs["alertmanager"] = _start(
            [
                "prometheus-alertmanager",
                f"--config.file={am_cfg}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address={HOST}:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp_path / "alertmanager.log",
        )
        procs["regwatch"] = _start([sys.executable, "-m", "regwatch", "--config", str(cfg), "run"], tmp_path / "regwatch.out", env=env)
        _wait_http(f"http://{HOST}:{metrics_port}/metrics")
        procs["prometheus"] = _start(
            [
                "prometheus",
                f"--config.file={prom_cfg}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address={HOST}:{prom_port}",
            ],
            tmp_path / "prometheus.log",
        )
        procs["registry"] = _start(["docker-registry", "serve", str(reg_cfg)], log_path)
        samples.wait_port(reg_port)
        _wait_http(f"{am_url}/-/ready")
        _wait_http(f"{prom_url}/-/ready")
        # Prometheus applies its targets a few seconds after it starts: the traffic must come
        # after a scrape that saw the counters at 0, or rate() sees no increase at all
        q = urllib.parse.quote('up{job="regwatch"} == 1 and on() count_over_time(regwatch_auth_failures_total[1m]) >= 2')
        deadline = time.monotonic() + 30
        while not _get_json(f"{prom_url}/api/v1/query?query={q}")["data"]["result"]:
            assert time.monotonic() < deadline, _get_json(f"{prom_url}/api/v1/targets")["data"]
            time.sleep(0.5)

        senv = _skopeo_env(tmp_path)
        ref = f"docker://{HOST}:{reg_port}/{REPO}:1.0"
        res = _skopeo(senv, "copy", "--dest-creds", f"ci-bot:{users['ci-bot']}", "--dest-tls-verify=false", f"oci:{tmp_path / 'oci'}:small", ref)
        assert res.returncode == 0, res.stderr
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            good = list(pool.map(lambda _: _skopeo(senv, "inspect", "--tls-verify=false", "--creds", f"alice:{users['alice']}", ref), range(GOOD_PULLS)))
            # a login with a wrong password: a real failure on GET /v2/, no pull is attempted
            bad = list(pool.map(lambda i: _skopeo(senv, "login", "--tls-verify=false", "-u", "alice", "-p", f"wrong-{i}", f"{HOST}:{reg_port}"), range(WRONG_TRIES)))
        assert all(r.returncode == 0 for r in good), [r.stderr for r in good if r.returncode][:1]
        assert all(r.returncode != 0 for r in bad)

        # Alertmanager receives the auth alert
        deadline = time.monotonic() + 120
        am_names: set[str] = set()
        while time.monotonic() < deadline:
            am_names = {a["labels"]["alertname"] for a in _am_alerts(am_url)}
            if "RegwatchAuthFailuresHigh" in am_names:
                break
            time.sleep(1)
        metrics = urllib.request.urlopen(f"http://{HOST}:{metrics_port}/metrics", timeout=5).read().decode()
        q = urllib.parse.quote("rate(regwatch_auth_failures_total[5m]) * 60")
        assert "RegwatchAuthFailuresHigh" in am_names, (
            am_names,
            _prom_alerts(prom_url),
            _get_json(f"{prom_url}/api/v1/query?query={q}")["data"],
            [t["health"] + " " + t["lastError"] for t in _get_json(f"{prom_url}/api/v1/targets")["data"]["activeTargets"]],
            [m for m in metrics.splitlines() if m.startswith(("regwatch_auth_failures_total", "regwatch_image_pull"))],
        )
        am = [a for a in _am_alerts(am_url) if a["labels"]["alertname"] == "RegwatchAuthFailuresHigh"]
        assert am[0]["status"]["state"] == "active"
        assert am[0]["labels"]["severity"] == "warning" and am[0]["labels"]["job"] == "regwatch"
        assert am[0]["annotations"]["runbook_url"] == "docs/runbooks.md#regwatchauthfailureshigh"
        prom = _prom_alerts(prom_url)
        assert prom.get("RegwatchAuthFailuresHigh") == "firing", prom

        # ... and the pull-failure ratio alert is not firing: a few more evaluations to be sure
        time.sleep(8)
        prom = _prom_alerts(prom_url)
        assert "RegwatchPullFailureRatioHigh" not in prom, prom
        assert "RegwatchPullFailureRatioHigh" not in {a["labels"]["alertname"] for a in _am_alerts(am_url)}
        # the guard of the ratio alert is met (it is not quiet by lack of volume), and no pull failed
        q = urllib.parse.quote('sum(increase(regwatch_registry_requests_total{action="pull"}[5m]))')
        pulls = float(_get_json(f"{prom_url}/api/v1/query?query={q}")["data"]["result"][0]["value"][1])
        assert pulls >= 20, pulls
        assert 'regwatch_image_pull_failures_total{' not in metrics
        # the counted failures are real ones, more than the 50 the 5-minute rate needs
        auth = [float(line.split()[-1]) for line in metrics.splitlines() if line.startswith("regwatch_auth_failures_total ")]
        assert auth and auth[0] >= WRONG_TRIES, auth
        final = urllib.request.urlopen(f"http://{HOST}:{metrics_port}/metrics", timeout=5).read().decode()
    finally:
        for name in ("prometheus", "registry", "regwatch", "alertmanager"):
            _stop(procs[name])
    # the live counters of the service equal `regwatch summary` of what it stored
    res = subprocess.run([sys.executable, "-m", "regwatch", "summary", "--db", str(tmp_path / "db"), "--json"],
                         env=env, capture_output=True, text=True, timeout=120, check=True)
    summary = json.loads(res.stdout)

    def total(prefix: str, **labels: str) -> float:
        want = [f'{k}="{v}"' for k, v in labels.items()]
        return sum(float(line.rsplit(" ", 1)[1]) for line in final.splitlines()
                   if line.startswith(prefix) and all(w in line for w in want))

    assert total("regwatch_auth_failures_total ") == summary["auth_failures"] >= WRONG_TRIES
    assert total("regwatch_image_pulls_total{") == summary["pulls"] == GOOD_PULLS
    assert total("regwatch_image_pushes_total{", outcome="success") == summary["pushes"] == 1
    assert total("regwatch_image_pull_failures_total{") == summary["pulls_failed"] == 0
    assert total("regwatch_registry_requests_total{", reason="challenge") == summary["challenges"] > 0
    assert total("regwatch_pulled_bytes_total{") == summary["bytes_pulled"] > 0
    out = (tmp_path / "regwatch.out").read_text()
    assert "Traceback" not in out, out[-3000:]
    for password in users.values():
        assert password not in out
