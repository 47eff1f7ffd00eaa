"""regwatch.insights, the functions behind the dashboard's pages, on a real embedded store
filled by the library's ingest of sample_logs/ plus seeded events."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from dashboard_support import HOSTILE, HOSTILE_REPO, HOSTILE_USER, NOW, ROOT, seed_store

from regwatch import insights
from regwatch.errors import ConfigError
from regwatch.events import Tally
from regwatch.sources.webhooks import attributed_deletes
from regwatch.stores.base import Query
from regwatch.stores.embedded import EmbeddedStore
from regwatch.summary import summarize


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    db = seed_store(tmp_path_factory.mktemp("insights") / "db")
    s = EmbeddedStore(db)
    yield s
    s.close()


# -- pure functions ---------------------------------------------------------------------
@pytest.mark.parametrize("text, shown", [
    ("\x1b[31mred\x1b[0m plain", "red plain"),
    ("a\x1b]0;title\x07b", "ab"),
    ("bell\x07 nul\x00 del\x7f c1\x9b31m", "bell nul del c1"),
    ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),  # text stays text: rendered escaped
])
def test_strip_ansi(text: str, shown: str) -> None:
    assert insights.strip_ansi(text) == shown


def test_inert_redacts_and_strips() -> None:
    out = insights.inert("Authorization: Bearer abc.def \x1b[1mx\x1b[0m password=hunter2")
    assert "abc.def" not in out and "hunter2" not in out and "\x1b" not in out
    assert out.count("[REDACTED]") == 2
    assert insights.inert(42) == 42 and insights.inert(None) is None


def test_to_csv_is_exactly_the_rows() -> None:
    rows = [{"a": 1, "b": None, "c": 'x,"y"'}, {"a": 2, "b": "z", "c": "line\nbreak"}]
    assert insights.to_csv(rows).decode() == 'a,b,c\n1,,"x,""y"""\n2,z,"line\nbreak"\n'
    assert insights.to_csv(rows, ["c", "a"]).decode() == 'c,a\n"x,""y""",1\n"line\nbreak",2\n'
    assert insights.to_csv([], ["a"]).decode() == "a\n"


def test_time_range() -> None:
    bounds = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC))
    r = insights.time_range("Last 24 hours", NOW, bounds)
    assert (r.since, r.until) == (NOW - timedelta(days=1), NOW) and r.minutes == 1440
    a = insights.time_range("All data", NOW, bounds)
    assert a.since == bounds[0] and a.until == bounds[1] + timedelta(microseconds=1)
    assert insights.time_range("All data", NOW, None).until == NOW
    with pytest.raises(ConfigError, match="'Last year'"):
        insights.time_range("Last year", NOW, bounds)


@pytest.mark.parametrize("span, step", [
    (timedelta(hours=1), timedelta(minutes=5)),
    (timedelta(days=1), timedelta(hours=1)),
    (timedelta(days=7), timedelta(hours=12)),
    (timedelta(days=30), timedelta(days=7)),
    (timedelta(days=3650), timedelta(days=365)),
])
def test_bucket_width(span: timedelta, step: timedelta) -> None:
    assert insights.bucket_width(NOW - span, NOW) == step


def test_glob_escape_matches_only_the_name() -> None:
    from regwatch.stores.base import repo_matches

    for name in ("a/b", "we*rd?/[x]", "evil/<script>alert(1)</script>"):
        g = insights.glob_escape(name)
        assert repo_matches(g, name)
        assert not repo_matches(g, name + "x") and not repo_matches(g, "z" + name)
    assert not repo_matches(insights.glob_escape("a*"), "abc")


def test_audit_filter_rejects_an_unknown_outcome() -> None:
    with pytest.raises(ConfigError, match="'maybe'"):
        insights.AuditFilter(outcome="maybe")
    f = insights.AuditFilter(repo="  ", user=" bob ", client_ip="")
    assert (f.repo, f.user, f.client_ip) == (None, "bob", None)


def test_alert_thresholds_are_the_rules_thresholds() -> None:
    """Every rule of alert_rules/regwatch.rules.yml is evaluated, with its own numbers."""
    doc = yaml.safe_load((ROOT / "alert_rules" / "regwatch.rules.yml").read_text())
    rules = {r["alert"]: (r["expr"], r["labels"]["severity"]) for g in doc["groups"] for r in g["rules"]}
    checks = insights.alerts_now(_empty_store(), NOW, None, ())
    assert {c.rule for c in checks} == set(rules)
    assert all(c.severity == rules[c.rule][1] for c in checks)

    def numbers(rule: str) -> list[float]:
        return [float(x) for x in re.findall(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.\]])", rules[rule][0])]

    assert insights.PULL_FAILURE_RATIO in numbers("RegwatchPullFailureRatioHigh")
    assert insights.PULL_MIN_VOLUME in numbers("RegwatchPullFailureRatioHigh")
    assert insights.AUTH_FAILURES_PER_MINUTE in numbers("RegwatchAuthFailuresHigh")
    assert insights.STORAGE_HIGH in numbers("RegwatchStorageUsageHigh")
    assert insights.STORAGE_FULL in numbers("RegwatchStorageFull")
    assert insights.FILLING_UP_DAYS in numbers("RegwatchStorageFillingUp")
    assert insights.LAG_SECONDS in numbers("RegwatchCollectorLagHigh")
    assert insights.NO_EVENTS_SECONDS in numbers("RegwatchCollectorNoRecentEvents")
    assert insights.PARSE_FAILURE_RATIO in numbers("RegwatchCollectorParseFailuresHigh")
    assert insights.PARSE_MIN_LINES in numbers("RegwatchCollectorParseFailuresHigh")
    reasons = re.search(r'reason=~"([^"]+)"', rules["RegwatchCollectorParseFailuresHigh"][0])
    assert reasons is not None and set(reasons.group(1).split("|")) == insights.PARSE_FAILURE_REASONS


_EMPTY: list[Any] = []


def _empty_store() -> Any:
    import tempfile

    if not _EMPTY:
        _EMPTY.append(EmbeddedStore(Path(tempfile.mkdtemp(prefix="regwatch-empty-"))))
    return _EMPTY[0]


# -- over the seeded store ------------------------------------------------------------------
def test_kpis_are_the_summary(store: Any) -> None:
    since, until = NOW - timedelta(hours=1), NOW
    k = insights.kpis(store, since, until)
    s = summarize(store, Query(since=since, until=until))
    for key in ("pulls", "pulls_failed", "pushes", "deletes", "auth_failures", "anonymous_denials",
                "bytes_pulled", "bytes_pushed"):
        assert k[key] == s[key], key
    assert k["auth_failures"] == 34  # the seeded burst (30) and the hostile logins (4)
    assert k["auth_failures_per_minute"] == pytest.approx(34 / 60)
    bounds = insights.event_bounds(store)
    assert bounds is not None
    whole = insights.kpis(store, bounds[0], bounds[1] + timedelta(microseconds=1))
    s = summarize(store)
    assert (whole["pulls"], whole["pulls_failed"], whole["pushes"]) == (s["pulls"], s["pulls_failed"], s["pushes"])
    tried = s["pulls"] + s["pulls_failed"]
    assert whole["pull_failure_ratio"] == pytest.approx(s["pulls_failed"] / tried)


def test_trend_buckets_add_up_to_the_range(store: Any) -> None:
    bounds = insights.event_bounds(store)
    assert bounds is not None
    since, until = bounds[0], bounds[1] + timedelta(microseconds=1)
    tr = insights.trend(store, since, until)
    s = summarize(store)
    for key in ("pulls", "pulls_failed", "pushes", "auth_failures", "bytes_pushed"):
        assert sum(b[key] for b in tr) == s[key], key
    assert tr[0]["time"] == since and all(a["time"] < b["time"] for a, b in itertools.pairwise(tr))


def test_disk_and_alerts(store: Any) -> None:
    paths = insights.disk(store, NOW)
    assert [p.path for p in paths] == ["/var/lib/registry"]
    p = paths[0]
    assert p.used_percent == pytest.approx(87.5, abs=0.2)
    rows = insights.disk_rows(paths)
    full = next(r for r in rows if r["threshold"] == "100%")
    assert full["status"] == "ok" and 8 < full["days_to"] < 12
    assert full["earliest_days"] <= full["days_to"] <= full["latest_days"]
    checks = {c.rule: c for c in insights.alerts_now(store, NOW, None, paths)}
    firing = {r for r, c in checks.items() if c.state == insights.FIRING}
    assert firing == {"RegwatchStorageUsageHigh", "RegwatchCollectorDown"}
    assert checks["RegwatchStorageFull"].state == insights.OK
    assert checks["RegwatchStorageFillingUp"].state == insights.OK
    assert checks["RegwatchCollectorLagHigh"].state == insights.UNKNOWN  # no service status
    # the burst of 30 failed logins, 5 minutes of it: 6 per minute, under 10
    burst_end = NOW - timedelta(minutes=27)
    assert {c.rule: c.state for c in insights.alerts_now(store, burst_end, None, paths)}["RegwatchAuthFailuresHigh"] == insights.OK


@pytest.mark.parametrize("failures, pulls, failed_pulls, auth_state, pull_state", [
    (51, 19, 1, "firing", "ok"),  # 10.2 auth failures a minute; 20 pulls, 5% failed: not more than 5%
    (50, 18, 2, "ok", "firing"),  # exactly 10 a minute is not more than 10; 20 pulls, 10% failed
    (0, 10, 9, "ok", "ok"),  # 19 pulls: under the minimum volume
])
def test_traffic_alerts_at_their_thresholds(tmp_path: Path, failures: int, pulls: int, failed_pulls: int,
                                            auth_state: str, pull_state: str) -> None:
    from regwatch.events import Action, AuthClass, Event

    evs = [Event(id=f"a{i}", timestamp=NOW - timedelta(seconds=290 - i), source="distribution", component="registry",
                 action=Action.AUTH.value, auth=AuthClass.AUTH_FAILURE.value, user="u") for i in range(failures)]
    evs += [Event(id=f"p{i}", timestamp=NOW - timedelta(seconds=200 - i), source="distribution", component="registry",
                  action=Action.PULL.value, tally=Tally.PULL.value if i < pulls else Tally.PULL_FAILED.value,
                  repository="r") for i in range(pulls + failed_pulls)]
    evs.append(Event(id="old", timestamp=NOW - timedelta(minutes=6), source="distribution", component="registry",
                     action=Action.AUTH.value, auth=AuthClass.AUTH_FAILURE.value, user="u", repeat=500))
    s = EmbeddedStore(tmp_path / "db")
    s.write(evs)
    checks = {c.rule: c.state for c in insights.alerts_now(s, NOW, None, ())}
    s.close()
    assert checks["RegwatchAuthFailuresHigh"] == auth_state
    assert checks["RegwatchPullFailureRatioHigh"] == pull_state


def test_audit_deletes_are_attributed_deletes(store: Any) -> None:
    flt = insights.AuditFilter()
    rows = insights.audit_deletes(store, flt)
    expected = [insights.inert_row(r) for r in attributed_deletes(store, Query())]
    assert rows == expected and len(rows) > 4
    hostile = insights.audit_deletes(store, insights.AuditFilter(repo="evil/*"))
    assert [r["request_id"] for r in hostile] == [f"hostile-{i}" for i in range(4)]
    assert all("\x1b" not in (r["raw"] or "") for r in hostile)
    assert hostile[3]["raw"].endswith("note=red")  # the ANSI codes are gone, the text stays
    assert insights.audit_deletes(store, insights.AuditFilter(client_ip="192.0.2.66")) == hostile
    assert insights.audit_deletes(store, insights.AuditFilter(user=HOSTILE_USER)) == hostile
    failed = insights.audit_deletes(store, insights.AuditFilter(outcome="failure"))
    assert failed and all(r["outcome"] == "failure" for r in failed)
    assert failed == [r for r in expected if r["outcome"] == "failure"]


def test_audit_events_pushes_and_auth_failures(store: Any) -> None:
    rows, more = insights.audit_events(store, insights.AuditFilter(client_ip="192.0.2.66"), "pushes")
    assert not more and [r["reference"] for r in rows] == ["t3", "t2", "t1", "t0"]  # newest first
    rows, more = insights.audit_events(store, insights.AuditFilter(user="mallory"), "auth failures", limit=10)
    assert more and len(rows) == 10 and all(r["user"] == "mallory" for r in rows)
    rows, _ = insights.audit_events(store, insights.AuditFilter(client_ip="192.0.2.66"), "auth failures")
    assert sorted(r["user"] for r in rows) == sorted(insights.strip_ansi(h) for h in HOSTILE)
    with pytest.raises(ConfigError, match="'pulls'"):
        insights.audit_events(store, insights.AuditFilter(), "pulls")


def test_repository_table(store: Any) -> None:
    bounds = insights.event_bounds(store)
    assert bounds is not None
    since, until = bounds[0], bounds[1] + timedelta(microseconds=1)
    rows = insights.repository_table(store, since, until)
    s = summarize(store, Query(since=since, until=until))
    assert {r["repository"] for r in rows} == {insights.inert(k) for k in s["repositories"]}
    for r in rows:
        c = s["repositories"].get(r["repository"])
        if c is None:
            continue
        assert (r["pulls"], r["pushes"], r["bytes_pulled"]) == (c["pulls"], c["pushes"], c["bytes_pulled"])
        pulls = store.search(Query(repo=insights.glob_escape(r["repository"]), tallies=frozenset({Tally.PULL.value})))
        assert r["last_pulled"] == (max(e.timestamp for e in pulls) if pulls else None), r["repository"]
    assert any(r["last_pulled"] is not None for r in rows)
    assert any(r["repository"] == HOSTILE_REPO and r["pushes"] == 4 for r in rows)


def test_retention_candidates(store: Any) -> None:
    from regwatch.capacity.retention import retention_recommendation

    got = insights.retention_candidates(store, NOW, 30)
    rec = retention_recommendation(store, NOW, 30)
    assert [r["repository"] for r in got["repositories"]] == [r.repository for r in rec.repositories]
    assert len(got["tags"]) == len(rec.tags) and got["total_bytes"] == rec.total_bytes
    with pytest.raises(ConfigError):
        insights.retention_candidates(store, NOW, 0)


def test_security(store: Any) -> None:
    sec = insights.security(store, NOW - timedelta(hours=1), NOW)
    assert sec["auth_failures"] == 34 and sec["anonymous_denials"] == 1
    assert sec["by_user"][0] == {"user": "mallory", "count": 30}
    assert sec["by_client_ip"][0] == {"client_ip": "203.0.113.9", "count": 30}
    assert sec["anonymous"] == [{"client_ip": "198.51.100.4", "repository": "team/private", "count": 1}]
    assert [b["auth_failures"] for b in sec["bursts"]] == [30]
    assert sec["bursts"][0]["time"] == NOW - timedelta(minutes=30)


def test_anomaly_rows_are_the_models_flags(store: Any) -> None:
    from regwatch.anomaly import anomalies

    since, until = NOW - timedelta(days=7), NOW
    rows = insights.anomaly_rows(store, since, until)
    flags = anomalies(store, since=since, until=until)
    assert [(r["kind"], r["actor"]) for r in rows] == [(a.kind, insights.inert(a.actor)) for a in flags]


def test_ingest_health_without_and_with_a_service(store: Any, tmp_path: Path) -> None:
    import os

    from regwatch.quarantine import Quarantine
    from regwatch.service.status import ServiceStatus, SourceStatus, write_status

    qdir = store.path / "quarantine"
    h = insights.ingest_health(store, tmp_path, NOW, quarantine_dir=qdir)
    assert h.status is None and h.store_ok and h.events == store.count()
    kept = Quarantine(qdir).read()
    counts: dict[str, int] = {}
    for r in kept:
        counts[str(r["reason"])] = counts.get(str(r["reason"]), 0) + 1
    assert {d["reason"]: d["count"] for d in h.drops} == counts and counts
    assert all(0 < len(d["samples"]) <= 3 for d in h.drops)
    write_status(tmp_path, ServiceStatus(
        pid=os.getpid(), started=NOW - timedelta(hours=1), updated=NOW, running=True,
        sources=(SourceStatus("/var/log/registry.log", "fp", 100, 250, 150, 700.0, 30.0),),
        lines_read=1000, drops={"unparsable": 80}, store_ok=False, store_blocked_reason="disk full"))
    h = insights.ingest_health(store, tmp_path, NOW, quarantine_dir=qdir)
    assert h.status is not None and h.status.running
    assert h.sources == [{"path": "/var/log/registry.log", "read_bytes": 100, "size_bytes": 250, "lag_bytes": 150,
                          "lag_seconds": 700.0, "last_event_age_seconds": 30.0}]
    assert not h.store_ok and "disk full" in h.store_detail
    assert {d["reason"]: d["count"] for d in h.drops}["unparsable"] == 80
    checks = {c.rule: c.state for c in insights.alerts_now(store, NOW, h.status, ())}
    assert checks["RegwatchCollectorDown"] == insights.OK
    assert checks["RegwatchCollectorLagHigh"] == checks["RegwatchCollectorStalled"] == insights.FIRING
    assert checks["RegwatchCollectorParseFailuresHigh"] == insights.FIRING  # 8% of 1000 lines
    assert checks["RegwatchStoreErrors"] == insights.FIRING
    assert checks["RegwatchCollectorNoRecentEvents"] == insights.OK


def test_hostile_values_reach_the_pages_as_inert_text(store: Any) -> None:
    rows, _ = insights.audit_events(store, insights.AuditFilter(repo="evil/*"), "pushes")
    raws = [r["raw"] for r in rows]
    assert any("<script>alert(1)</script>" in r for r in raws)  # kept as text, shown escaped
    assert not any("\x1b" in r for r in raws)
    assert replace(insights.AuditFilter(), user=None) == insights.AuditFilter()


@pytest.mark.parametrize("scan", [1000, 2, 0])
def test_last_seen_by_scan_and_by_windows(store: Any, monkeypatch: pytest.MonkeyPatch, scan: int) -> None:
    """The same answer whether the newest rows name every repository or the doubling
    windows have to find them."""
    monkeypatch.setattr(insights, "LAST_SEEN_SCAN", scan)
    bounds = insights.event_bounds(store)
    assert bounds is not None
    since, until = bounds[0], bounds[1] + timedelta(microseconds=1)
    tallies = frozenset({Tally.PULL.value})
    pulls = store.search(Query(since=since, until=until, tallies=tallies))
    expected: dict[str, datetime] = {}
    for e in pulls:
        if e.repository is not None:
            expected[e.repository] = max(expected.get(e.repository, e.timestamp), e.timestamp)
    assert len(expected) >= 3
    assert insights.last_seen(store, since, until, tallies) == expected
    some = sorted(expected)[:2] + ["never/pulled"]
    assert insights.last_seen(store, since, until, tallies, some) == {k: expected[k] for k in some[:2]}
