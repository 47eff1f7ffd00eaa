"""The daily report: its figures on a known day, escaping, the empty day, the schedule
(one missed day made up once), and delivery to a real SMTP server and HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from report_data import DAY_START, HOSTILE_REPO, day_events, storage_records

from regwatch.cli import main
from regwatch.config import EmailConfig, ReportConfig, config_from_dict
from regwatch.reports import (
    RUN_KIND,
    build_report,
    day_bounds,
    due_reports,
    latest_due_day,
    render_html,
    run_report,
    write_report,
)
from regwatch.stores.embedded import EmbeddedStore

DAY = DAY_START.date()
NOW = DAY_START + timedelta(days=1, hours=7)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "db")
    s.write(day_events())
    yield s
    s.close()


def test_day_bounds_follow_the_zone_including_the_spring_change() -> None:
    s, e = day_bounds(date(2026, 3, 29), "Europe/Berlin")
    assert s == datetime(2026, 3, 28, 23, tzinfo=timezone.utc) and e - s == timedelta(hours=23)


def test_the_report_counts_the_day(store: EmbeddedStore) -> None:
    r = build_report(store, DAY, "UTC", NOW)
    assert not r.empty and r.events == 16
    assert r.totals["pulls"] == 6 and r.totals["pulls_failed"] == 3 and r.totals["auth_failures"] == 2
    assert [g["repository"] for g in r.growth] == ["team/app", HOSTILE_REPO]
    assert r.growth[0]["bytes_7d"] == 300_000_000
    assert r.trends[-1] == {"day": "2026-03-10", "pulls": 6, "pulls_failed": 3, "auth_failures": 2,
                            "anonymous_denials": 0, "pull_failure_rate": pytest.approx(3 / 9)}
    assert len(r.trends) == 14 and all(t["pulls"] == 0 for t in r.trends[:-1])
    assert r.pull_failures[0] == {"repository": "team/app", "status": 404, "error_code": "manifest unknown", "count": 3}
    assert r.auth_failures[0] == {"user": "mallory", "client_ip": "10.9.9.9", "count": 2}
    (d,) = r.deletes
    assert d["user"] == "carol" and d["repository"] == "team/app"  # from the notification


def test_the_report_forecasts_each_storage_path(store: EmbeddedStore) -> None:
    store.put_records(storage_records())  # type: ignore[arg-type]
    r = build_report(store, DAY, "UTC", NOW)
    (p,) = r.storage
    assert p.path == "/var/lib/registry" and p.capacity_bytes == 4e12 and p.status == "ok"
    # 2.6 TB + 30 d x 40 GB = 3.8 TB at the day's end: 85% (3.4 TB) is behind, 100% ~5 d ahead
    a85, a100 = p.assessments
    assert a85.days_to("eta") == 0.0
    assert a100.days_to("eta") == pytest.approx(5.0, abs=1.0)
    assert a100.days_to("lower") <= a100.days_to("eta") <= a100.days_to("upper")
    assert r.as_of == r.end and p.history[-1][0] <= r.end
    assert len(p.history) >= 24 * 29 and p.forecast and all(lo <= v <= up for _, v, lo, up in p.forecast)
    assert "100% in" not in r.headline and "/var/lib/registry: 85% in 0.0 d" in r.headline
    page = render_html(r)
    assert "<polygon" in page and "100%</text>" in page


def test_log_content_is_escaped_in_the_html(store: EmbeddedStore) -> None:
    page = render_html(build_report(store, DAY, "UTC", NOW))
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched


def test_a_day_without_data_says_so(store: EmbeddedStore, tmp_path: Path) -> None:
    r = build_report(store, date(2026, 2, 1), "Europe/Berlin", NOW)
    assert r.empty and r.events == 0 and r.headline == "no data for 2026-02-01"
    html_path, json_path = write_report(r, tmp_path / "out")
    assert "No data for 2026-02-01" in html_path.read_text()
    assert json.loads(json_path.read_text())["empty"] is True


def test_regwatch_report_cli_writes_both_files(store: EmbeddedStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store.close()
    assert main(["report", "--db", str(tmp_path / "db"), "--date", "2026-03-10", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("regwatch-report-2026-03-10.html") and Path(out[1]).exists()
    assert main(["report", "--db", str(tmp_path / "db"), "--date", "10.03.2026"]) == 2


def test_report_config_reads_email_and_refuses_plain_passwords() -> None:
    cfg = config_from_dict({"report": {"at": "06:30", "timezone": "Europe/Berlin", "out": "/tmp/r",
                                       "email": {"smtp_host": "mail", "from": "rw@example.org", "to": ["ops@example.org"],
                                                 "username": "rw", "password_env": "RW_SMTP"}}}).report
    assert cfg is not None and cfg.email is not None and cfg.email.to == ("ops@example.org",)
    with pytest.raises(Exception) as ei:
        config_from_dict({"report": {"email": {"smtp_host": "m", "from": "a@b", "to": "c@d", "password": "pw"}}})
    assert "report.email.password holds a secret" in str(ei.value) and "pw'" not in str(ei.value)


def test_latest_due_day_turns_at_the_configured_local_time() -> None:
    cfg = ReportConfig(at="07:00", timezone="Europe/Berlin")
    # 05:59 UTC is 06:59 in Berlin (winter): yesterday's report is not due yet
    assert latest_due_day(cfg, datetime(2026, 3, 11, 5, 59, tzinfo=timezone.utc)) == date(2026, 3, 9)
    assert latest_due_day(cfg, datetime(2026, 3, 11, 6, 0, tzinfo=timezone.utc)) == date(2026, 3, 10)


def test_a_missed_report_is_made_up_once_not_many_times(store: EmbeddedStore, tmp_path: Path) -> None:
    cfg = ReportConfig(at="07:00", timezone="UTC", out=str(tmp_path / "out"))
    now = datetime(2026, 3, 11, 7, 5, tzinfo=timezone.utc)
    assert due_reports(store, cfg, now) == [date(2026, 3, 10)]
    run = run_report(store, cfg, date(2026, 3, 10), now)
    assert run.html_path.exists() and run.json_path.exists() and run.email is None
    assert due_reports(store, cfg, now + timedelta(minutes=1)) == []
    assert due_reports(store, cfg, now + timedelta(hours=23)) == []
    # the service was down for four days: only the newest missed day is made up
    later = now + timedelta(days=4, hours=2)
    assert due_reports(store, cfg, later) == [date(2026, 3, 14)]
    run_report(store, cfg, date(2026, 3, 14), later)
    assert due_reports(store, cfg, later) == []
    assert len(store.get_records(RUN_KIND, limit=10)) == 2


class _Hook(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        self.server.got.append((dict(self.headers), self.rfile.read(n)))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()


def test_run_report_mails_a_real_smtp_server_and_posts_the_webhook(store: EmbeddedStore, tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message as MessageHandler

    got: list[Message] = []

    class Keep(MessageHandler):  # type: ignore[misc]
        def handle_message(self, message: Message) -> None:
            got.append(message)

    import socket

    with socket.socket() as probe:  # aiosmtpd's Controller cannot take port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    smtp = Controller(Keep(), hostname="127.0.0.1", port=port)
    smtp.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    http.got = []  # type: ignore[attr-defined]
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        cfg = ReportConfig(out=str(tmp_path / "out"), webhook=f"http://127.0.0.1:{http.server_address[1]}/report",
                           webhook_auth_env="HOOK", email=EmailConfig(smtp_host="127.0.0.1", port=port,
                                                                      sender="regwatch@example.org", to=("ops@example.org",)))
        run = run_report(store, cfg, DAY, NOW, environ={"HOOK": "Bearer t0k"})
    finally:
        smtp.stop()
        http.shutdown()
        http.server_close()
    assert run.email == "sent to ops@example.org" and run.webhook == "HTTP 204"
    (msg,) = got
    assert msg["To"] == "ops@example.org" and "2026-03-10" in msg["Subject"]
    raw = message_from_bytes(msg.as_bytes())
    parts = {p.get_content_type(): p for p in raw.walk()}
    assert "Deletes of the day" in parts["text/html"].get_payload(decode=True).decode()
    assert json.loads(parts["application/json"].get_payload(decode=True))["totals"]["pulls"] == 6
    ((headers, body),) = http.got  # type: ignore[attr-defined]
    assert headers["Authorization"] == "Bearer t0k" and json.loads(body)["report"]["day"] == "2026-03-10"
    rec = store.get_records(RUN_KIND, limit=1, newest_first=True)[0]
    assert rec.data["email"] == "sent to ops@example.org" and "t0k" not in json.dumps(rec.data)


def test_a_failed_delivery_is_recorded_not_raised(store: EmbeddedStore, tmp_path: Path) -> None:
    cfg = ReportConfig(out=str(tmp_path / "out"), email=EmailConfig(smtp_host="127.0.0.1", port=1, sender="a@b.c", to=("d@e.f",), timeout=2))
    run = run_report(store, replace(cfg, webhook="http://127.0.0.1:1/x"), DAY, NOW)
    assert run.email is not None and run.email.startswith("failed: 127.0.0.1:1")
    assert run.webhook is not None and run.webhook.startswith("failed:")
    assert run.html_path.exists()


def test_an_unquoted_yaml_time_is_read_as_the_time_it_looks_like() -> None:
    import yaml

    cfg = config_from_dict(yaml.safe_load("report: {at: 07:30, timezone: Europe/Berlin}")).report
    assert cfg is not None and cfg.at == "07:30"  # YAML 1.1 gives 450 (base 60)
    with pytest.raises(Exception) as ei:
        config_from_dict({"report": {"at": "7h", "timezone": "Mars/Olympus"}})
    assert "report.at must be a time of day HH:MM" in str(ei.value) and "report.timezone" in str(ei.value)
