"""Overview: KPIs and trends of the chosen range, disk against 85% and 100% with the
forecast band and days to full, and the alerts that would fire now."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from regwatch import insights
from regwatch.dashboard_app.common import (
    Ctx,
    fmt_bytes,
    fmt_int,
    fmt_ratio,
    fmt_time,
    md_text,
    run_page,
    table,
)


def body(ctx: Ctx) -> None:
    r = ctx.range
    st.caption(f"{r.label}: {fmt_time(r.since)} to {fmt_time(r.until)}")
    k = ctx.call("kpis", r.since, r.until)
    c = st.columns(4)
    c[0].metric("Pull failure ratio", fmt_ratio(k["pull_failure_ratio"]),
                help=f"{fmt_int(k['pulls_failed'])} failed of {fmt_int(k['pulls'] + k['pulls_failed'])} manifest pulls")
    c[1].metric("Auth failures per minute", f"{k['auth_failures_per_minute']:.2f}",
                help=f"{fmt_int(k['auth_failures'])} auth failures (challenge 401s are not counted)")
    c[2].metric("Pulls", fmt_int(k["pulls"]))
    c[3].metric("Pushes", fmt_int(k["pushes"]))
    c = st.columns(4)
    c[0].metric("Bytes pulled", fmt_bytes(k["bytes_pulled"]), help=f"{fmt_int(k['bytes_pulled'])} bytes")
    c[1].metric("Bytes pushed", fmt_bytes(k["bytes_pushed"]), help=f"{fmt_int(k['bytes_pushed'])} bytes")
    c[2].metric("Deletes", fmt_int(k["deletes"]))
    c[3].metric("Records", fmt_int(k["events"]), help="log records in the range (a repeated syslog line counts as its repeats)")

    st.subheader("Trends")
    tr = ctx.call("trend", r.since, r.until)
    if tr:
        df = pd.DataFrame(tr).set_index("time")
        st.line_chart(df[["pulls", "pulls_failed", "pushes"]])
        st.line_chart(df[["auth_failures", "anonymous_denials"]])

    st.subheader("Disk")
    paths = ctx.call("disk", ctx.now)
    if not paths:
        st.caption("No storage samples in the store: set storage.paths in the config and run the service "
                   "(or `regwatch storage --sample-now`).")
    for p in paths:
        used = "–" if p.used_percent is None else f"{p.used_percent:.1f}%"
        st.metric(f"Used: {md_text(p.path)}", used, help=f"{fmt_int(p.used_bytes)} of {fmt_int(p.capacity_bytes)} bytes")
        if p.history or p.forecast:
            hist = pd.DataFrame(p.history, columns=["time", "used"]).set_index("time")
            fc = pd.DataFrame(p.forecast, columns=["time", "forecast", "lower", "upper"]).set_index("time")
            df = pd.concat([hist, fc], axis=1).sort_index() / 1e9
            if p.capacity_bytes:
                df["85%"] = 0.85 * p.capacity_bytes / 1e9
                df["100%"] = p.capacity_bytes / 1e9
            st.caption("GB used, the forecast and its band, against 85% and 100% of the capacity")
            st.line_chart(df)
    table(insights.disk_rows(paths), key="disk", file_name="regwatch-disk.csv")

    st.subheader("Alerts that would fire now")
    health = ctx.call("ingest_health", ctx.opened.state_dir, ctx.now, quarantine_dir=ctx.opened.quarantine_dir)
    checks = ctx.call("alerts_now", ctx.now, health.status, paths)
    firing = [a for a in checks if a.state == "firing"]
    st.metric("Firing now", fmt_int(len(firing)), help="condition true now; Prometheus fires once it holds for the rule's `for:`")
    table([{"rule": a.rule, "state": a.state, "severity": a.severity, "value": a.value, "detail": a.detail} for a in checks],
          key="alerts", file_name="regwatch-alerts.csv")


run_page("Overview", body)
