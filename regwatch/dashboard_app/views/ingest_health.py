"""Ingest health: the service's sources, lag and last event age, drop reasons with
sample lines, and the store's status."""

from __future__ import annotations

import streamlit as st

from regwatch.dashboard_app.common import Ctx, fmt_int, fmt_time, md_text, run_page, table


def body(ctx: Ctx) -> None:
    h = ctx.call("ingest_health", ctx.opened.state_dir, ctx.now, quarantine_dir=ctx.opened.quarantine_dir)
    st.subheader("Store")
    c = st.columns(3)
    c[0].metric("Store", "ok" if h.store_ok else "PROBLEM")
    c[1].metric("Events", fmt_int(h.events))
    age = None if h.newest_event is None else (ctx.now - h.newest_event).total_seconds()
    c[2].metric("Newest event", fmt_time(h.newest_event), help=None if age is None else f"{age:,.0f} s before now")
    st.code(h.store_detail, language=None, wrap_lines=True)

    st.subheader("Service")
    st_ = h.status
    if st_ is None:
        st.caption("No regwatch service has written a status here; start one with `regwatch --config FILE run`.")
        st.code(h.state_dir, language=None)
    else:
        s = st.columns(4)
        s[0].metric("Service", "running" if st_.running else "stopped")
        s[1].metric("Lines read", fmt_int(st_.lines_read))
        s[2].metric("Events written", fmt_int(st_.events_written))
        s[3].metric("Status updated", fmt_time(st_.updated))
        if not st_.store_ok:
            why = md_text(st_.store_blocked_reason or "unknown reason")
            st.error(f"store writes blocked: {why} (reading is paused; nothing is lost)")
        for p in st_.problems:
            st.warning("problem: " + md_text(" ".join(str(p).split())))
    st.subheader("Sources")
    table(h.sources, key="sources", file_name="regwatch-sources.csv", empty="No followed source (no running service).")

    st.subheader("Dropped lines")
    table([{"reason": d["reason"], "count": d["count"]} for d in h.drops], key="drops",
          file_name="regwatch-drops.csv", empty="No line was dropped.")
    for d in h.drops:
        if d["samples"]:
            with st.expander(f"{md_text(d['reason'])}: {d['count']:,} line(s), samples"):
                for where, line in zip(d["where"], d["samples"]):
                    st.caption("from")
                    st.code(where, language=None)
                    st.code(line, language=None, wrap_lines=True)


run_page("Ingest health", body, needs_events=False)
