"""Capacity actions: config, the runners against a real HTTP server and a real command,
episodes, cooldown and dry-run recorded in a real embedded store, and the retention
recommendation from pull history."""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from regwatch.capacity import (
    ACTION_KIND,
    DRY_RUN,
    FAILED,
    OK,
    Assessment,
    Trigger,
    evaluate_capacity,
    harbor_gc_request,
    recorded_outcomes,
    retention_recommendation,
    run_action,
)
from regwatch.capacity.actions import render_argv
from regwatch.config import ActionConfig, CapacityConfig, config_from_dict
from regwatch.errors import ConfigError
from regwatch.events import Action, Event, Outcome, Tally
from regwatch.stores.embedded import EmbeddedStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
TB = 1e12


def _assessment(days: float | None, now: datetime = NOW, status: str = "ok", threshold: float = 85.0) -> Assessment:
    t = now + timedelta(days=days) if days is not None else None
    return Assessment("/var/lib/registry", threshold, 0.01 * threshold * 4 * TB, status, "test", now, 3.1 * TB, 4 * TB,
                      eta=t + timedelta(days=1) if t else None, lower=t, upper=t + timedelta(days=2) if t else None)


class _Recorder(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        self.server.got.append({"path": self.path, "headers": dict(self.headers), "body": self.rfile.read(n)})  # type: ignore[attr-defined]
        status = self.server.status  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


@pytest.fixture
def http_server() -> Iterator[ThreadingHTTPServer]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    srv.got = []  # type: ignore[attr-defined]
    srv.status = 200  # type: ignore[attr-defined]
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


# -- config ---------------------------------------------------------------------------------
def test_capacity_config_defaults_to_dry_run_and_reads_spans() -> None:
    cfg = config_from_dict({"capacity": {"within": "3d", "cooldown": "12h", "actions": [
        {"kind": "command", "name": "page", "argv": ["/bin/echo", "{path}", "{days}"]}]}}).capacity
    assert cfg is not None and cfg.dry_run is True
    assert cfg.within == 3 * 86400 and cfg.cooldown == 12 * 3600
    assert cfg.thresholds == (85.0, 100.0) and cfg.actions[0].argv == ("/bin/echo", "{path}", "{days}")


def test_capacity_config_reports_every_problem_with_its_key_path() -> None:
    with pytest.raises(ConfigError) as ei:
        config_from_dict({"capacity": {"within": "soon", "bound": "upper", "actions": [
            {"kind": "command", "argv": ["rm", "{nope}"]},
            {"kind": "harbor_gc", "password": "hunter2"},
            {"kind": "mail"},
        ]}})
    msg = str(ei.value)
    for part in ("capacity.within", "capacity.bound", "capacity.actions[0].argv[1]", "'nope'",
                 "capacity.actions[1].password holds a secret", "capacity.actions[1].url is required",
                 "capacity.actions[2].kind 'mail'"):
        assert part in msg
    assert "hunter2" not in msg


# -- runners --------------------------------------------------------------------------------
def test_command_placeholders_are_filled_and_run_without_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "args.json"
    code = "import json,sys; json.dump(sys.argv[1:], open(sys.argv[1], 'w'))"
    action = ActionConfig("command", "c", argv=(sys.executable, "-c", code, str(out), "{path}", "{threshold}", "{days}", "{eta}", "$(touch x); {path}"))
    trig = Trigger(_assessment(2.5), "ep1", "lower")
    outcome, detail, data = run_action(action, trig, dry_run=False, environ={})
    assert outcome == OK and data["exit_code"] == 0, detail
    got = json.loads(out.read_text())
    assert got[1:4] == ["/var/lib/registry", "85", "2.5"]
    assert got[4] == (NOW + timedelta(days=3.5)).isoformat().replace("+00:00", "Z")
    assert got[5] == "$(touch x); /var/lib/registry"  # no shell: nothing expanded
    assert not (tmp_path / "x").exists()


def test_command_failure_and_missing_program_are_outcomes_not_exceptions(tmp_path: Path) -> None:
    trig = Trigger(_assessment(1), "ep", "lower")
    fail = ActionConfig("command", "c", argv=(sys.executable, "-c", "import sys; sys.stderr.write('disk tool broke'); sys.exit(3)"))
    outcome, detail, data = run_action(fail, trig, False, {})
    assert outcome == FAILED and data["exit_code"] == 3 and "disk tool broke" in detail
    missing = ActionConfig("command", "c", argv=(str(tmp_path / "no-such-tool"),))
    assert run_action(missing, trig, False, {})[0] == FAILED


def test_dry_run_does_nothing(tmp_path: Path, http_server: ThreadingHTTPServer) -> None:
    trig = Trigger(_assessment(1), "ep", "lower")
    marker = tmp_path / "ran"
    cmd = ActionConfig("command", "c", argv=(sys.executable, "-c", f"open({str(marker)!r}, 'w')"))
    hook = ActionConfig("webhook", "w", url=_url(http_server) + "/hook")
    gc = ActionConfig("harbor_gc", "gc", url=_url(http_server))
    for a in (cmd, hook, gc):
        outcome, detail, _ = run_action(a, trig, dry_run=True, environ={})
        assert outcome == DRY_RUN and detail.startswith("would ")
    assert not marker.exists() and http_server.got == []  # type: ignore[attr-defined]


def test_webhook_posts_the_crossing_as_json_to_a_real_server(http_server: ThreadingHTTPServer) -> None:
    action = ActionConfig("webhook", "ops", url=_url(http_server) + "/capacity", auth_env="HOOK_TOKEN")
    outcome, detail, data = run_action(action, Trigger(_assessment(2), "ep-7", "lower"), False, {"HOOK_TOKEN": "Bearer s3cret"})
    assert outcome == OK and data["http_status"] == 200, detail
    (req,) = http_server.got  # type: ignore[attr-defined]
    assert req["path"] == "/capacity" and req["headers"]["Authorization"] == "Bearer s3cret"
    body = json.loads(req["body"])
    assert body["kind"] == "regwatch.capacity" and body["episode"] == "ep-7" and body["path"] == "/var/lib/registry"
    assert body["threshold"] == 85.0 and body["days_to_threshold"] == pytest.approx(2.0)
    assert "s3cret" not in detail


def test_webhook_error_status_and_missing_secret_fail(http_server: ThreadingHTTPServer) -> None:
    http_server.status = 503  # type: ignore[attr-defined]
    action = ActionConfig("webhook", "ops", url=_url(http_server) + "/x")
    outcome, detail, data = run_action(action, Trigger(_assessment(2), "e", "lower"), False, {})
    assert outcome == FAILED and data["http_status"] == 503 and "503" in detail
    needs = replace(action, auth_env="NOT_SET_ANYWHERE")
    outcome, detail, _ = run_action(needs, Trigger(_assessment(2), "e", "lower"), False, {})
    assert outcome == FAILED and "NOT_SET_ANYWHERE" in detail


def test_harbor_gc_request_is_the_portals_gc_now_call(http_server: ThreadingHTTPServer) -> None:
    action = ActionConfig("harbor_gc", "gc", url=_url(http_server) + "/", auth_env="HARBOR_CRED", workers=2)
    url, body, headers = harbor_gc_request(action, "admin:Harbor12345")
    assert url.endswith("/api/v2.0/system/gc/schedule")
    assert body == {"schedule": {"type": "Manual"}, "parameters": {"delete_untagged": True, "workers": 2, "dry_run": False}}
    assert headers["Authorization"] == "Basic YWRtaW46SGFyYm9yMTIzNDU="
    # the HTTP exchange (this is a local recorder, not Harbor: what Harbor does with it is not tested here)
    http_server.status = 201  # type: ignore[attr-defined]
    outcome, detail, _ = run_action(action, Trigger(_assessment(1), "e", "lower"), False, {"HARBOR_CRED": "admin:Harbor12345"})
    assert outcome == OK, detail
    (req,) = http_server.got  # type: ignore[attr-defined]
    assert req["path"] == "/api/v2.0/system/gc/schedule" and json.loads(req["body"]) == body
    assert "Harbor12345" not in detail
    http_server.status = 409  # type: ignore[attr-defined]
    assert run_action(action, Trigger(_assessment(1), "e", "lower"), False, {"HARBOR_CRED": "a:b"})[0] == "skipped"


def test_render_argv_leaves_unknown_bounds_empty() -> None:
    action = ActionConfig("command", "c", argv=("x", "{eta}", "{days}", "{used_bytes}"))
    a = replace(_assessment(1), eta=None)
    assert render_argv(action, Trigger(a, "e", "eta")) == ["x", "", "", "3100000000000"]


# -- episodes, cooldown, records (the real embedded store) ---------------------------------
def _cfg(tmp_path: Path, **kw: Any) -> CapacityConfig:
    code = f"open({str(tmp_path / 'fired')!r}, 'a').write('x')"
    base = CapacityConfig(within=7 * 86400, cooldown=86400, dry_run=False,
                          actions=(ActionConfig("command", "mark", argv=(sys.executable, "-c", code)),))
    return replace(base, **kw)


def _fired(tmp_path: Path) -> int:
    p = tmp_path / "fired"
    return len(p.read_text()) if p.exists() else 0


def test_an_action_fires_once_per_episode_and_again_in_a_new_one(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "db")
    cfg = _cfg(tmp_path)
    t = NOW
    first = evaluate_capacity(store, cfg, t, assessments=[_assessment(3, t)])
    assert [o.outcome for o in first] == [OK] and _fired(tmp_path) == 1
    for h in range(1, 6):  # the same crossing, forecast again every hour: no second firing
        t = NOW + timedelta(hours=h)
        assert evaluate_capacity(store, cfg, t, assessments=[_assessment(3, t)]) == []
    assert _fired(tmp_path) == 1
    # unpredictable neither ends nor fires
    assert evaluate_capacity(store, cfg, t, assessments=[_assessment(None, t, status="unpredictable")]) == []
    # the forecast clears: the episode ends; back within the cooldown: the same episode
    t += timedelta(hours=1)
    assert evaluate_capacity(store, cfg, t, assessments=[_assessment(None, t)]) == []
    t += timedelta(hours=6)
    assert evaluate_capacity(store, cfg, t, assessments=[_assessment(2, t)]) == []
    assert _fired(tmp_path) == 1
    # clear again, and come back after the cooldown: a new episode fires again
    t += timedelta(hours=1)
    evaluate_capacity(store, cfg, t, assessments=[_assessment(None, t)])
    t += timedelta(days=2)
    again = evaluate_capacity(store, cfg, t, assessments=[_assessment(2, t)])
    assert [o.outcome for o in again] == [OK] and again[0].episode != first[0].episode
    assert _fired(tmp_path) == 2
    recorded = recorded_outcomes(store, since=NOW - timedelta(days=1), until=t + timedelta(days=1))
    assert [(o.action, o.outcome, o.episode) for o in recorded] == [(o.action, o.outcome, o.episode) for o in first + again]
    # a fresh process on the same store sees the same state
    store.close()
    store2 = EmbeddedStore(tmp_path / "db")
    assert evaluate_capacity(store2, cfg, t + timedelta(hours=1), assessments=[_assessment(2, t + timedelta(hours=1))]) == []


def test_a_crossing_beyond_within_or_a_far_eta_does_not_fire(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "db")
    cfg = _cfg(tmp_path)
    assert evaluate_capacity(store, cfg, NOW, assessments=[_assessment(8, NOW)]) == []
    eta_cfg = replace(cfg, bound="eta")  # eta is a day after lower in _assessment
    assert evaluate_capacity(store, eta_cfg, NOW, assessments=[_assessment(6.5, NOW)]) == []
    assert [o.outcome for o in evaluate_capacity(store, cfg, NOW, assessments=[_assessment(6.5, NOW)])] == [OK]


def test_dry_run_is_recorded_once_then_a_real_run_fires_once(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "db")
    dry = _cfg(tmp_path, dry_run=True)
    out = evaluate_capacity(store, dry, NOW, assessments=[_assessment(1)])
    assert [o.outcome for o in out] == [DRY_RUN] and out[0].dry_run and _fired(tmp_path) == 0
    assert evaluate_capacity(store, dry, NOW + timedelta(hours=1), assessments=[_assessment(1, NOW + timedelta(hours=1))]) == []
    real = evaluate_capacity(store, _cfg(tmp_path), NOW + timedelta(hours=2), assessments=[_assessment(1, NOW + timedelta(hours=2))])
    assert [o.outcome for o in real] == [OK] and _fired(tmp_path) == 1
    recs = store.get_records(ACTION_KIND, limit=10)
    assert sorted(r.data["outcome"] for r in recs) == [DRY_RUN, OK]


def test_a_failing_action_is_retried_at_most_three_times_per_episode(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "db")
    cfg = CapacityConfig(dry_run=False, actions=(ActionConfig("command", "broken", argv=(str(tmp_path / "missing"),)),))
    outcomes = []
    for h in range(6):
        t = NOW + timedelta(hours=h)
        outcomes += evaluate_capacity(store, cfg, t, assessments=[_assessment(1, t)])
    assert [o.outcome for o in outcomes] == [FAILED] * 3


# -- retention -------------------------------------------------------------------------------
def _ev(i: int, t: datetime, action: str, repo: str, ref: str | None = None, digest: str | None = None,
        nbytes: int | None = None, ip: str = "10.0.0.1", tally: str = Tally.NONE.value) -> Event:
    return Event(id=f"t{i:06d}", timestamp=t, source="distribution", component="registry", action=action,
                 outcome=Outcome.SUCCESS.value, tally=tally, repository=repo, reference=ref, digest=digest,
                 bytes=nbytes, client_ip=ip)


def test_retention_lists_tags_and_repositories_nobody_pulled_with_their_upload_bytes(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "db")
    old = NOW - timedelta(days=200)
    d = "sha256:" + "ab" * 32
    evs = [
        # team/app:v1 (2 layers, 300 MB) pushed long ago, pulled yesterday; v0 never pulled since
        _ev(1, old, Action.BLOB_UPLOAD.value, "team/app", digest="sha256:" + "01" * 32, nbytes=100_000_000, tally=Tally.BLOB_UPLOAD.value),
        _ev(2, old + timedelta(seconds=5), Action.BLOB_UPLOAD.value, "team/app", digest="sha256:" + "02" * 32, nbytes=200_000_000, tally=Tally.BLOB_UPLOAD.value),
        _ev(3, old + timedelta(seconds=9), Action.PUSH.value, "team/app", ref="v1", digest=d, tally=Tally.PUSH.value),
        _ev(4, old + timedelta(days=1), Action.BLOB_UPLOAD.value, "team/app", digest="sha256:" + "03" * 32, nbytes=50_000_000, tally=Tally.BLOB_UPLOAD.value),
        _ev(5, old + timedelta(days=1, seconds=3), Action.PUSH.value, "team/app", ref="v0", tally=Tally.PUSH.value),
        _ev(6, NOW - timedelta(days=1), Action.PULL.value, "team/app", ref=d, tally=Tally.PULL.value),  # by digest
        # legacy/tool: never pulled in 90 days, one tag, a layer uploaded twice (counted once)
        _ev(7, old, Action.BLOB_UPLOAD.value, "legacy/tool", digest="sha256:" + "04" * 32, nbytes=700_000_000, tally=Tally.BLOB_UPLOAD.value),
        _ev(8, old + timedelta(seconds=30), Action.BLOB_UPLOAD.value, "legacy/tool", digest="sha256:" + "04" * 32, nbytes=700_000_000, tally=Tally.BLOB_UPLOAD.value),
        _ev(9, old + timedelta(seconds=40), Action.PUSH.value, "legacy/tool", ref="latest", tally=Tally.PUSH.value),
        _ev(10, NOW - timedelta(days=120), Action.PULL.value, "legacy/tool", ref="latest", tally=Tally.PULL.value),
        # fresh/new: pushed last week, never pulled: too young to recommend
        _ev(11, NOW - timedelta(days=7), Action.PUSH.value, "fresh/new", ref="v1", tally=Tally.PUSH.value),
    ]
    store.write(evs)
    r = retention_recommendation(store, NOW, unused_days=90)
    assert [(x.repository, x.bytes, x.tags) for x in r.repositories] == [("legacy/tool", 700_000_000, 1)]
    assert [(x.repository, x.tag, x.bytes) for x in r.tags] == [("legacy/tool", "latest", 700_000_000), ("team/app", "v0", 50_000_000)]
    assert r.total_bytes == 750_000_000
    d2 = r.to_dict()
    assert d2["tag_count"] == 2 and d2["cutoff"] == (NOW - timedelta(days=90)).isoformat() and d2["notes"]
    # the retention_report action records the recommendation as its data, also in dry-run mode
    cfg = CapacityConfig(dry_run=True, actions=(ActionConfig("retention_report", "stale", unused_days=90),))
    (o,) = evaluate_capacity(store, cfg, NOW, assessments=[_assessment(1)])
    assert o.outcome == OK and o.data["retention"]["total_bytes"] == 750_000_000


# -- from the sampler's records: gauges, evaluation, the CLI ---------------------------------
def _samples(store: EmbeddedStore, path: str, per_day: float, start: float, days: int = 30, end: datetime = NOW) -> None:
    from report_data import storage_records

    store.put_records(storage_records(path, days=days, end=end, start_bytes=start, per_day=per_day))  # type: ignore[arg-type]


def test_forecast_gauges_from_storage_samples(tmp_path: Path) -> None:
    from regwatch.capacity import forecast_gauges

    store = EmbeddedStore(tmp_path / "db")
    # 4 TB disk: 3.0 TB now growing 40 GB/day -> 85% (3.4 TB) in ~10 d, 100% in ~25 d
    _samples(store, "/grow", 40e9, 3.0e12 - 30 * 40e9)
    _samples(store, "/flat", 0.0, 1.0e12)
    store.put_records(__import__("report_data").storage_records("/young", days=0, end=NOW))  # one sample only
    rows = forecast_gauges(store, NOW)
    by = {(p, t, b): s for p, t, b, s in rows}
    assert {p for p, _, _, _ in rows} == {"/grow", "/flat"}  # /young: not enough data, no rows
    assert by[("/grow", "85", "eta")] / 86400 == pytest.approx(10, abs=1)
    assert by[("/grow", "100", "eta")] / 86400 == pytest.approx(25, abs=2)
    assert by[("/grow", "85", "lower")] <= by[("/grow", "85", "eta")] <= by[("/grow", "85", "upper")]
    assert all(by[("/flat", t, b)] is None for t in ("85", "100") for b in ("eta", "lower", "upper"))  # +Inf
    assert len(rows) == 12


def test_evaluate_capacity_reads_the_history_and_fires_for_the_path_at_risk(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "db")
    _samples(store, "/grow", 40e9, 3.0e12 - 30 * 40e9)
    _samples(store, "/flat", 0.0, 1.0e12)
    out_file = tmp_path / "args"
    code = f"import sys; open({str(out_file)!r}, 'a').write(' '.join(sys.argv[1:]) + chr(10))"
    cfg = CapacityConfig(thresholds=(85.0, 100.0), within=14 * 86400, dry_run=False,
                         actions=(ActionConfig("command", "log", argv=(sys.executable, "-c", code, "{path}", "{threshold}")),))
    out = evaluate_capacity(store, cfg, NOW)
    assert [(o.path, o.threshold, o.outcome) for o in out] == [("/grow", 85.0, OK)]
    assert out_file.read_text() == "/grow 85\n"
    assert evaluate_capacity(store, cfg, NOW + timedelta(minutes=5)) == []


def test_regwatch_forecast_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from regwatch.cli import main
    from regwatch.clock import FixedClock

    store = EmbeddedStore(tmp_path / "db")
    store.write([_ev(1, NOW - timedelta(days=1), Action.PULL.value, "a/b")])  # a store with a manifest
    _samples(store, "/grow", 40e9, 3.0e12 - 30 * 40e9)
    store.put_records(__import__("report_data").storage_records("/young", days=0, end=NOW))
    store.close()
    assert main(["forecast", "--db", str(tmp_path / "db")], clock=FixedClock(NOW)) == 0
    text = capsys.readouterr().out
    assert re.search(r"/grow: 3,0\d\d,\d{3},\d{3},\d{3} of 4,000,000,000,000 bytes used", text), text
    assert re.search(r"85%: \d+\.\d d \(earliest \d+\.\d d, latest \d+\.\d d\)", text), text
    assert "/young" in text and "not enough data" in text
    assert main(["forecast", "--db", str(tmp_path / "db"), "--path", "/grow", "--json"], clock=FixedClock(NOW)) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["path"], r["threshold"], r["status"]) for r in rows] == [("/grow", 85.0, "ok"), ("/grow", 100.0, "ok")]
    assert main(["forecast", "--db", str(tmp_path / "db"), "--path", "/nowhere"], clock=FixedClock(NOW)) == 0
    assert "not enough data: no storage samples for path '/nowhere'" in capsys.readouterr().out


def test_alarm_due_needs_the_expected_crossing_within_twice_the_lead() -> None:
    from regwatch.capacity import ETA_GUARD, alarm_due

    day = 86400.0
    # lower within the lead, eta within twice the lead: due
    assert alarm_due(NOW, NOW + timedelta(days=0.5), NOW + timedelta(days=1.9), day)
    # lower within the lead, but a wide interval puts eta 3 days out: not due
    assert not alarm_due(NOW, NOW + timedelta(days=0.5), NOW + timedelta(days=3), day)
    # eta exactly at the guard is still due; lower beyond the lead never is
    assert alarm_due(NOW, NOW + timedelta(days=1), NOW + timedelta(days=ETA_GUARD), day)
    assert not alarm_due(NOW, NOW + timedelta(days=1.1), NOW + timedelta(days=1.2), day)
    assert not alarm_due(NOW, None, NOW, day) and not alarm_due(NOW, NOW, None, day)


def test_a_wide_interval_alone_does_not_fire_an_action(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "db")
    cfg = _cfg(tmp_path)  # bound "lower"
    wide = replace(_assessment(1, NOW), eta=NOW + timedelta(seconds=2.5 * cfg.within))
    assert evaluate_capacity(store, cfg, NOW, assessments=[wide]) == []
    assert _fired(tmp_path) == 0
