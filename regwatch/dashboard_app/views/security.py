"""Security: auth failures by user and by client IP, anonymous denials, bursts over
time, and the unusual (actor, hour) rows the anomaly model flags, with their reasons."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from regwatch.dashboard_app.common import Ctx, fmt_int, run_page, table


def body(ctx: Ctx) -> None:
    r = ctx.range
    sec = ctx.call("security", r.since, r.until)
    c = st.columns(3)
    c[0].metric("Auth failures", fmt_int(sec["auth_failures"]))
    c[1].metric("Anonymous denials", fmt_int(sec["anonymous_denials"]))
    c[2].metric("Bursts", fmt_int(len(sec["bursts"])))

    st.subheader("Over time")
    if sec["over_time"]:
        df = pd.DataFrame(sec["over_time"]).set_index("time")
        st.bar_chart(df[["auth_failures", "anonymous_denials"]])
    table(sec["bursts"], key="bursts", file_name="regwatch-auth-bursts.csv", empty="No burst of auth failures.")

    left, right = st.columns(2)
    with left:
        st.subheader("Auth failures by user")
        table(sec["by_user"], key="by_user", file_name="regwatch-auth-failures-by-user.csv", empty="No auth failure.")
    with right:
        st.subheader("Auth failures by client IP")
        table(sec["by_client_ip"], key="by_ip", file_name="regwatch-auth-failures-by-ip.csv", empty="No auth failure.")
    st.subheader("Anonymous denials")
    table(sec["anonymous"], key="anon", file_name="regwatch-anonymous-denials.csv", empty="No anonymous denial.")

    st.subheader("Unusual activity")
    st.caption("Each (user or client IP, hour) scored by an IsolationForest over deletes, failed logins, "
               "new repositories touched and off-hours activity; the reasons name what set it apart. "
               "The model runs at most every 15 minutes, over the range up to the last quarter hour.")
    rows = ctx.call_slow("anomaly_rows", r.since, r.until)
    st.metric("Flagged", fmt_int(len(rows)))
    table(rows, key="anomalies", file_name="regwatch-anomalies.csv", empty="Nothing unusual above the threshold.")


run_page("Security", body)
