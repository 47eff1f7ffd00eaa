"""Audit: deletes (then pushes and auth failures) filtered by time range, repository
glob, user, client IP and outcome; a detail view of each row with its raw line
(secrets redacted); a CSV export of exactly the rows shown."""

from __future__ import annotations

import streamlit as st

from regwatch.dashboard_app.common import Ctx, fmt_int, run_page, table
from regwatch.insights import AUDIT_KINDS, EVENT_COLUMNS, OUTCOMES, AuditFilter

LIMIT = 1000
DELETE_SHOWN = ("time", "user", "repository", "reference", "client_ip", "outcome", "status", "source",
                "component", "request_id", "error_code", "user_agent", "raw")


def body(ctx: Ctx) -> None:
    r = ctx.range
    # the filters start from the address (/audit?repo=library/*&user=alice&ip=...&outcome=failure&kind=pushes),
    # so a search can be shared as a link
    qp = st.query_params
    kinds, outcomes = list(AUDIT_KINDS), ["any", *OUTCOMES]
    kind = st.radio("Events", kinds, horizontal=True, key="audit_kind",
                    index=kinds.index(qp["kind"]) if qp.get("kind") in kinds else 0)
    c = st.columns(4)
    repo = c[0].text_input("Repository glob", key="audit_repo", placeholder="e.g. library/*", value=qp.get("repo", ""))
    user = c[1].text_input("User", key="audit_user", value=qp.get("user", ""))
    ip = c[2].text_input("Client IP", key="audit_ip", value=qp.get("ip", ""))
    outcome = c[3].selectbox("Outcome", outcomes, key="audit_outcome",
                             index=outcomes.index(qp["outcome"]) if qp.get("outcome") in outcomes else 0)
    flt = AuditFilter(since=r.since, until=r.until, repo=repo, user=user, client_ip=ip,
                      outcome=None if outcome == "any" else outcome)
    if kind == "deletes":
        rows = ctx.call("audit_deletes", flt)
        more = False
        cols: tuple[str, ...] = DELETE_SHOWN
    else:
        rows, more = ctx.call("audit_events", flt, kind, LIMIT)
        cols = EVENT_COLUMNS
    st.metric(f"Matching {kind}", fmt_int(len(rows)) + ("+" if more else ""))
    if more:
        st.caption(f"the newest {LIMIT:,} are shown; narrow the filters to see the others")
    table(rows, cols, key=f"audit_{kind}", file_name=f"regwatch-audit-{kind.replace(' ', '-')}.csv",
          empty=f"No {kind} match these filters in this time range.")
    if rows:
        st.subheader("Detail")
        labels = [f"{i + 1}. {row['time']} {row.get('user') or '-'} {row.get('repository') or '-'}" for i, row in enumerate(rows)]
        pick = st.selectbox("Row", range(len(rows)), format_func=lambda i: labels[i], key=f"audit_pick_{kind}")
        row = rows[int(pick)]
        st.caption("Raw line (secrets redacted)")
        st.code(row.get("raw") or "", language=None, wrap_lines=True)
        st.dataframe([{"field": k, "value": "" if v is None else str(v)} for k, v in row.items() if k != "raw"],
                     hide_index=True)


run_page("Audit", body)
