"""Every dashboard page through streamlit.testing.v1.AppTest on a seeded embedded store:
the numbers shown are the library's, the CSV is the table shown, an empty store shows
guidance, hostile log content renders as text, and no page shows an exception."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dashboard_support import (
    HOSTILE_REPO,
    HOSTILE_USER,
    NOW,
    app_test,
    assert_clean,
    download_bytes,
    frame_rows,
    metrics,
    seed_store,
)
from dashboard_support import storage_records as seed_records

from regwatch import insights
from regwatch.dashboard_app.common import fmt_bytes, fmt_int, fmt_ratio
from regwatch.sources.webhooks import attributed_deletes
from regwatch.stores.base import Query
from regwatch.stores.embedded import EmbeddedStore
from regwatch.summary import summarize

PAGES = ("views/overview.py", "views/audit.py", "views/repositories.py", "views/security.py", "views/ingest_health.py")
TITLES = ("Overview", "Audit", "Repositories", "Security", "Ingest health")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_store(tmp_path_factory.mktemp("app") / "db")


@pytest.fixture(scope="module")
def store(db: Path) -> Any:
    s = EmbeddedStore(db)
    yield s
    s.close()


def open_page(at: Any, page: str, range_label: str | None = None) -> Any:
    at.run()
    if range_label is not None:
        at.sidebar.selectbox(key="range").set_value(range_label)
        at.run()
    if page != PAGES[0]:
        at.switch_page(page)
        at.run()
    assert_clean(at)
    return at


def all_range(store: Any) -> tuple[Any, Any]:
    b = insights.event_bounds(store)
    assert b is not None
    return b[0], b[1] + timedelta(microseconds=1)


def csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def shown_as_csv(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{k: "" if v is None else str(v) for k, v in r.items()} for r in rows]


# -- every page ------------------------------------------------------------------------------
@pytest.mark.parametrize("page, title", list(zip(PAGES, TITLES)))
def test_every_page_renders_without_error(monkeypatch: pytest.MonkeyPatch, db: Path, page: str, title: str) -> None:
    at = open_page(app_test(monkeypatch, db), page)
    assert [t.value for t in at.title] == [title]
    assert at.metric, "a page shows figures"


def test_overview_kpis_are_the_summary(monkeypatch: pytest.MonkeyPatch, db: Path, store: Any) -> None:
    at = open_page(app_test(monkeypatch, db), PAGES[0])
    since, until = all_range(store)
    s = summarize(store, Query(since=since, until=until))
    m = metrics(at)
    assert m["Pulls"] == fmt_int(s["pulls"]) and s["pulls"] > 0
    assert m["Pushes"] == fmt_int(s["pushes"])
    assert m["Deletes"] == fmt_int(s["deletes"])
    assert m["Bytes pulled"] == fmt_bytes(s["bytes_pulled"]) and s["bytes_pulled"] > 0
    assert m["Bytes pushed"] == fmt_bytes(s["bytes_pushed"])
    assert m["Pull failure ratio"] == fmt_ratio(s["pulls_failed"] / (s["pulls"] + s["pulls_failed"]))
    minutes = (until - since).total_seconds() / 60
    assert m["Auth failures per minute"] == f"{s['auth_failures'] / minutes:.2f}"
    # disk: 87.5% used, and the alerts that would fire now
    assert m["Used: /var/lib/registry"] == "87.5%"
    assert m["Firing now"] == "2"
    alerts = {r["rule"]: r["state"] for r in frame_rows(at.dataframe[-1].value)}
    assert alerts["RegwatchStorageUsageHigh"] == "firing" and alerts["RegwatchCollectorDown"] == "firing"
    assert alerts["RegwatchStorageFull"] == "ok"


def test_overview_last_hour(monkeypatch: pytest.MonkeyPatch, db: Path, store: Any) -> None:
    at = open_page(app_test(monkeypatch, db), PAGES[0], "Last hour")
    s = summarize(store, Query(since=NOW - timedelta(hours=1), until=NOW))
    m = metrics(at)
    assert s["auth_failures"] == 34
    assert m["Auth failures per minute"] == f"{34 / 60:.2f}"
    assert m["Pushes"] == fmt_int(s["pushes"]) == "4"
    assert m["Deletes"] == "4"


def test_audit_table_is_attributed_deletes_and_csv_is_the_table(monkeypatch: pytest.MonkeyPatch, db: Path,
                                                                 store: Any) -> None:
    at = open_page(app_test(monkeypatch, db), PAGES[1])
    since, until = all_range(store)
    expected = [insights.inert_row(r) for r in attributed_deletes(store, Query(since=since, until=until))]
    assert metrics(at)["Matching deletes"] == fmt_int(len(expected))
    shown = frame_rows(at.dataframe[0].value)
    cols = list(shown[0])
    assert [{c: r.get(c) for c in cols} for r in expected] == shown
    data = download_bytes(at.download_button[0])
    assert csv_rows(data) == shown_as_csv(shown)
    assert data == insights.to_csv(expected, cols)


def test_audit_filters(monkeypatch: pytest.MonkeyPatch, db: Path, store: Any) -> None:
    at = open_page(app_test(monkeypatch, db), PAGES[1])
    at.text_input(key="audit_repo").set_value("evil/*")
    at.text_input(key="audit_ip").set_value("192.0.2.66")
    at.run()
    assert_clean(at)
    shown = frame_rows(at.dataframe[0].value)
    assert [r["request_id"] for r in shown] == [f"hostile-{i}" for i in range(4)]
    assert {r["user"] for r in shown} == {HOSTILE_USER}
    assert csv_rows(download_bytes(at.download_button[0])) == shown_as_csv(shown)
    # the detail view: the chosen row's raw line, as code
    at.selectbox(key="audit_pick_deletes").set_value(3)
    at.run()
    assert at.main.code[-1].value == f"DELETE /v2/{HOSTILE_REPO}/manifests/v1 note=red"

    at.text_input(key="audit_repo").set_value("")
    at.text_input(key="audit_ip").set_value("")
    at.selectbox(key="audit_outcome").set_value("failure")
    at.run()
    since, until = all_range(store)
    failed = [r for r in attributed_deletes(store, Query(since=since, until=until)) if r["outcome"] == "failure"]
    assert metrics(at)["Matching deletes"] == fmt_int(len(failed)) and failed

    at.selectbox(key="audit_outcome").set_value("any")
    at.text_input(key="audit_user").set_value("mallory")
    at.radio(key="audit_kind").set_value("auth failures")
    at.run()
    assert_clean(at)
    from regwatch.events import AuthClass

    mallory = store.search(Query(since=since, until=until, user="mallory",
                                 auth=frozenset({AuthClass.AUTH_FAILURE.value, AuthClass.ANONYMOUS_DENIAL.value})))
    assert metrics(at)["Matching auth failures"] == fmt_int(len(mallory)) and len(mallory) >= 30
    shown = frame_rows(at.dataframe[0].value)
    assert [r["time"] for r in shown] == [insights.event_row(e)["time"] for e in reversed(mallory)]
    assert sum(r["client_ip"] == "203.0.113.9" for r in shown) == 30
    assert csv_rows(download_bytes(at.download_button[0])) == shown_as_csv(shown)

    at.text_input(key="audit_user").set_value("")
    at.radio(key="audit_kind").set_value("pushes")
    at.text_input(key="audit_repo").set_value("evil/*")
    at.run()
    assert [r["reference"] for r in frame_rows(at.dataframe[0].value)] == ["t3", "t2", "t1", "t0"]


def test_repositories_page(monkeypatch: pytest.MonkeyPatch, db: Path, store: Any) -> None:
    at = open_page(app_test(monkeypatch, db), PAGES[2])
    since, until = all_range(store)
    s = summarize(store, Query(since=since, until=until))
    shown = {r["repository"]: r for r in frame_rows(at.dataframe[0].value)}
    assert metrics(at)["Repositories with activity"] == fmt_int(len(s["repositories"]))
    for repo, c in s["repositories"].items():
        r = shown[insights.inert(repo)]
        assert (r["pulls"], r["pushes"], r["bytes_pushed"]) == (c["pulls"], c["pushes"], c["bytes_pushed"])
    assert shown[HOSTILE_REPO]["pushes"] == 4
    assert csv_rows(download_bytes(at.download_button[0])) == shown_as_csv(frame_rows(at.dataframe[0].value))
    from regwatch.capacity.retention import retention_recommendation

    at.number_input(key="unused_days").set_value(30)
    at.run()
    assert_clean(at)
    # the retention scan runs on whole 15-minute steps (common.SLOW_PERIOD)
    from datetime import UTC, datetime

    from regwatch.dashboard_app.common import SLOW_PERIOD

    step = SLOW_PERIOD.total_seconds()
    rec = retention_recommendation(store, datetime.fromtimestamp(until.timestamp() // step * step, tz=UTC), 30)
    m = metrics(at)
    assert m["Stale repositories"] == fmt_int(len(rec.repositories))
    assert m["Stale tags"] == fmt_int(len(rec.tags))
    assert m["Bytes held (estimate)"] == fmt_bytes(rec.total_bytes)


def test_security_page(monkeypatch: pytest.MonkeyPatch, db: Path, store: Any) -> None:
    from regwatch.anomaly import anomalies

    at = open_page(app_test(monkeypatch, db), PAGES[3], "Last hour")
    m = metrics(at)
    assert (m["Auth failures"], m["Anonymous denials"], m["Bursts"]) == ("34", "1", "1")
    flagged = anomalies(store, since=NOW - timedelta(hours=1), until=NOW)
    assert m["Flagged"] == fmt_int(len(flagged))
    frames = [frame_rows(d.value) for d in at.dataframe]
    assert {"user": "mallory", "count": 30} in frames[1]  # by user
    assert {"client_ip": "203.0.113.9", "count": 30} in frames[2]  # by client IP
    assert frames[3] == [{"client_ip": "198.51.100.4", "repository": "team/private", "count": 1}]


def test_ingest_health_page(monkeypatch: pytest.MonkeyPatch, db: Path, store: Any) -> None:
    from regwatch.quarantine import Quarantine

    at = open_page(app_test(monkeypatch, db), PAGES[4])
    m = metrics(at)
    assert m["Store"] == "ok" and m["Events"] == fmt_int(store.count())
    counts: dict[str, int] = {}
    for r in Quarantine(db / "quarantine").read():
        counts[str(r["reason"])] = counts.get(str(r["reason"]), 0) + 1
    drops = frame_rows(at.dataframe[-1].value)
    assert {r["reason"]: r["count"] for r in drops} == counts and counts
    assert len(at.expander) == len(counts)


# -- empty and missing stores, bad config ---------------------------------------------------------
@pytest.mark.parametrize("page", PAGES)
def test_empty_store_shows_guidance(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, page: str) -> None:
    s = EmbeddedStore(tmp_path / "db")  # a store that exists (it holds a record) but holds no event
    s.put_records(seed_records()[:1])
    s.close()
    for db in (tmp_path / "db", tmp_path / "missing"):
        at = open_page(app_test(monkeypatch, db), page)
        if page == PAGES[4] and db.exists():
            assert metrics(at)["Events"] == "0"  # the health page works on an empty store
            continue
        assert any("No registry events to show yet" in i.value for i in at.info), page
        assert any(f"regwatch ingest --db {db}" in c.value for c in at.code)
        assert any("built-in defaults" in c.value for c in at.code)


def test_bad_config_is_one_error_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("store: {kind: nosuch}\n")
    for config in (bad, tmp_path / "absent.yaml"):
        at = app_test(monkeypatch, tmp_path / "db", config=config)
        at.run()
        assert not at.exception
        assert len(at.error) == 1 and "\n" not in at.error[0].value
        shown = at.error[0].value.replace("\\", "")  # markdown escapes: the name shows literally
        assert str(config.name) in shown


def test_error_text_is_escaped_markdown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An error naming a hostile value (here a config path) shows it literally."""
    bad = tmp_path / "**bold**[x](javascript:alert(1)).yaml"
    at = app_test(monkeypatch, tmp_path / "db", config=bad)
    at.run()
    assert len(at.error) == 1
    v = at.error[0].value
    assert "**bold**" not in v and "](javascript" not in v and "\\*\\*bold\\*\\*" in v


# -- log content is data ---------------------------------------------------------------------------
def _texts(at: Any) -> list[str]:
    """Everything that Streamlit would render as markdown or HTML."""
    out = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader",
                 "latex", "text"):
        out += [str(e.value) for e in getattr(at, kind)]
    out += [str(m.label) for m in at.metric]
    out += [str(e.label) for e in at.expander]
    return out


@pytest.mark.parametrize("kind", ["deletes", "pushes", "auth failures"])
def test_hostile_lines_render_inert(monkeypatch: pytest.MonkeyPatch, db: Path, kind: str) -> None:
    at = open_page(app_test(monkeypatch, db), PAGES[1])
    at.radio(key="audit_kind").set_value(kind)
    at.text_input(key="audit_ip").set_value("192.0.2.66")
    at.run()
    assert_clean(at)
    assert len(at.get("html")) == 0
    for t in _texts(at):
        for bad in ("<script", "<img", "javascript:", "**bold**", "\x1b"):
            assert bad not in t, (bad, t)
    cells = [str(v) for d in at.dataframe for row in frame_rows(d.value) for v in row.values()]
    assert any("<script>alert(1)</script>" in c for c in cells)  # shown, as text
    assert not any("\x1b" in c for c in cells)
    codes = [c.value for c in at.code]
    assert any("<script>alert(1)</script>" in c for c in codes) or kind != "deletes"
    assert not any("\x1b" in c for c in codes)


@pytest.mark.parametrize("page", [PAGES[2], PAGES[3]])
def test_hostile_repository_and_user_render_inert(monkeypatch: pytest.MonkeyPatch, db: Path, page: str) -> None:
    at = open_page(app_test(monkeypatch, db), page, "Last hour")
    assert len(at.get("html")) == 0
    for t in _texts(at):
        for bad in ("<script", "<img", "javascript:", "\x1b"):
            assert bad not in t, (bad, t)


def test_the_repository_entry_runs_the_packaged_app(monkeypatch: pytest.MonkeyPatch, db: Path, store: Any) -> None:
    """`streamlit run dashboards/app.py` shows the same pages as `regwatch dashboard`."""
    from dashboard_support import ROOT, TIMEOUT
    from streamlit.testing.v1 import AppTest

    app_test(monkeypatch, db)  # the environment and fresh caches
    at = AppTest.from_file(str(ROOT / "dashboards" / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert_clean(at)
    assert [t.value for t in at.title] == ["Overview"]
    assert metrics(at)["Pulls"] == fmt_int(summarize(store)["pulls"])
