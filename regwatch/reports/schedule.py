"""When the daily report is due, and one run of it: files, e-mail, webhook, a record.

The service's APScheduler job calls :func:`due_reports` then :func:`run_report` for each
day it returns; the record of each run (kind ``report_run``) is what makes a missed run
made up once after downtime, and never twice.
"""

from __future__ import annotations

import json
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from regwatch.config import EmailConfig, ReportConfig, parse_tz
from regwatch.events import utc
from regwatch.reports.model import Report, build_report
from regwatch.reports.render import render_json, write_report

RUN_KIND = "report_run"


@dataclass(frozen=True)
class ReportRun:
    """One run of the daily report: where the files went and how delivery fared."""

    day: date
    time: datetime
    html_path: Path
    json_path: Path
    empty: bool
    headline: str
    email: str | None = None  # None: not configured; "sent to ..." or "failed: ..."
    webhook: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "time": self.time.isoformat(),
            "html": str(self.html_path),
            "json": str(self.json_path),
            "empty": self.empty,
            "headline": self.headline,
            "email": self.email,
            "webhook": self.webhook,
        }

    def __str__(self) -> str:
        parts = [f"{self.html_path}", self.headline]
        if self.email:
            parts.append(f"e-mail: {self.email}")
        if self.webhook:
            parts.append(f"webhook: {self.webhook}")
        return "; ".join(parts)


def latest_due_day(cfg: ReportConfig, now: datetime) -> date:
    """The newest day whose report is due at ``now``: yesterday (in ``cfg.timezone``) once
    today's ``cfg.at`` has passed, else the day before yesterday."""
    tz = parse_tz(cfg.timezone)
    local = utc(now).astimezone(tz)
    hh, mm = (int(x) for x in cfg.at.split(":"))
    at = datetime.combine(local.date(), time(hh, mm), tzinfo=tz)
    # compare in UTC: on the day the clocks change the local wall time is ambiguous
    return local.date() - timedelta(days=1 if utc(now) >= utc(at) else 2)


def reported_days(store: Any, limit: int = 400) -> set[date]:
    """Days for which a run is recorded."""
    out: set[date] = set()
    for r in store.get_records(RUN_KIND, limit=limit, newest_first=True):
        try:
            out.add(date.fromisoformat(str(r.data.get("day"))))
        except ValueError:
            continue
    return out


def due_reports(store: Any, cfg: ReportConfig, now: datetime) -> list[date]:
    """The days whose report should be made now: ``[latest_due_day]`` unless a run of that
    day (or a later one) is recorded, else ``[]``. Never more than one day: after downtime
    the newest missed report is made up once and older missed days are skipped (their
    figures are in the next report's trends). Raises StoreError."""
    day = latest_due_day(cfg, now)
    done = reported_days(store)
    if any(d >= day for d in done):
        return []
    return [day]


def _send_email(cfg: EmailConfig, report: Report, html_text: str, json_text: str, environ: Mapping[str, str]) -> str:
    msg = EmailMessage()
    msg["Subject"] = f"regwatch daily report {report.day.isoformat()}: {report.headline}"[:200]
    msg["From"] = cfg.sender
    msg["To"] = ", ".join(cfg.to)
    msg.set_content(f"regwatch daily report for {report.day.isoformat()} ({report.timezone})\n\n{report.headline}\n\nThe full report is the HTML part and the attached JSON.\n")
    msg.add_alternative(html_text, subtype="html")
    msg.add_attachment(json_text.encode("utf-8"), maintype="application", subtype="json", filename=f"regwatch-report-{report.day.isoformat()}.json")
    password = None
    if cfg.password_env:
        password = environ.get(cfg.password_env)
        if not password:
            return f"failed: environment variable {cfg.password_env} (report.email.password_env) is not set"
    try:
        with smtplib.SMTP(cfg.smtp_host, cfg.port, timeout=cfg.timeout) as smtp:
            if cfg.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if cfg.username and password is not None:
                smtp.login(cfg.username, password)
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        return f"failed: {cfg.smtp_host}:{cfg.port}: {type(exc).__name__}: {exc}"
    return f"sent to {', '.join(cfg.to)}"


def _post_webhook(url: str, auth_env: str | None, json_text: str, environ: Mapping[str, str]) -> str:
    headers = {"Content-Type": "application/json"}
    if auth_env:
        secret = environ.get(auth_env)
        if not secret:
            return f"failed: environment variable {auth_env} (report.webhook_auth_env) is not set"
        headers["Authorization"] = secret
    body = json.dumps({"kind": "regwatch.report", "report": json.loads(json_text)}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"failed: {url} answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"failed: POST {url}: {getattr(exc, 'reason', exc)}"


def run_report(
    store: Any,
    cfg: ReportConfig,
    day: date,
    now: datetime,
    *,
    environ: Mapping[str, str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> ReportRun:
    """Build the report of ``day``, write it into ``cfg.out`` (or ``out_dir``), send it by
    e-mail and to the webhook when configured, and record the run. A delivery that fails
    is reported in the result (and the record), not raised: the files are there. Raises
    StoreError (reading) and InputError (the directory cannot be written)."""
    from regwatch.reports.render import render_html
    from regwatch.stores.base import Record

    env = os.environ if environ is None else environ
    now = utc(now)
    report = build_report(store, day, cfg.timezone, now, top=cfg.top_repositories)
    html_path, json_path = write_report(report, out_dir if out_dir is not None else cfg.out)
    email = webhook = None
    if cfg.email is not None:
        email = _send_email(cfg.email, report, render_html(report), render_json(report), env)
    if cfg.webhook:
        webhook = _post_webhook(cfg.webhook, cfg.webhook_auth_env, json_path.read_text(encoding="utf-8"), env)
    run = ReportRun(day, now, html_path, json_path, report.empty, report.headline, email, webhook)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    store.put_records([Record(RUN_KIND, f"{day.isoformat()}|{stamp}", now, run.to_dict())])
    return run
