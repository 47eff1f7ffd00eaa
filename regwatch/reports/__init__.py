"""The daily capacity report (docs/report.md): :func:`build_report` → :class:`Report`,
:func:`write_report` (HTML and JSON), and the scheduling pieces the service calls,
:func:`due_reports` and :func:`run_report`."""

from regwatch.reports.model import PathReport, Report, build_report, day_bounds
from regwatch.reports.render import render_html, render_json, write_report
from regwatch.reports.schedule import (
    RUN_KIND,
    ReportRun,
    due_reports,
    latest_due_day,
    reported_days,
    run_report,
)

__all__ = [
    "RUN_KIND",
    "PathReport",
    "Report",
    "ReportRun",
    "build_report",
    "day_bounds",
    "due_reports",
    "latest_due_day",
    "render_html",
    "render_json",
    "reported_days",
    "run_report",
    "write_report",
]
