"""Repositories: pulls, pushes, bytes, last pulled and growth per repository, and the
retention candidates (what nobody pulled for N days)."""

from __future__ import annotations

import streamlit as st

from regwatch.dashboard_app.common import Ctx, fmt_bytes, fmt_int, fmt_time, run_page, table


def body(ctx: Ctx) -> None:
    r = ctx.range
    rows = ctx.call("repository_table", r.since, r.until)
    st.metric("Repositories with activity", fmt_int(len(rows)))
    table(rows, key="repos", file_name="regwatch-repositories.csv", empty="No repository activity in this time range.")

    st.subheader("Retention candidates")
    days = int(st.number_input("Not pulled for (days)", min_value=1, max_value=3650, value=90, step=1, key="unused_days"))
    ret = ctx.call_slow("retention_candidates", r.until, days)
    c = st.columns(3)
    c[0].metric("Stale repositories", fmt_int(len(ret["repositories"])))
    c[1].metric("Stale tags", fmt_int(len(ret["tags"])))
    c[2].metric("Bytes held (estimate)", fmt_bytes(ret["total_bytes"]), help=f"{fmt_int(ret['total_bytes'])} bytes")
    st.caption(f"pushed before {fmt_time(ret['cutoff'])} and not pulled since (recomputed at most every 15 minutes)")
    table(ret["repositories"], key="stale_repos", file_name="regwatch-stale-repositories.csv",
          empty="No repository went unpulled that long.")
    table(ret["tags"], key="stale_tags", file_name="regwatch-stale-tags.csv", empty="No tag went unpulled that long.")
    for note in ret["notes"]:
        st.caption(note)


run_page("Repositories", body)
