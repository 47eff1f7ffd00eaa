"""What every dashboard page shares: the store handle, cached calls into
:mod:`regwatch.insights`, the sidebar's time range and refresh interval, the empty-store
guidance, and the guard that turns an error into one line instead of a traceback.

Caching: the open store is a ``st.cache_resource`` (one per config and store directory,
shared by all sessions); each insights call is a ``st.cache_data`` entry keyed by its
arguments and the current refresh period, so a page re-rendered within one period reads
nothing, and the first render after the period reads the store again (the service may
have written since).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import streamlit as st

from regwatch import insights
from regwatch.dashboard import Opened, Settings, app_settings, open_dashboard_store
from regwatch.errors import RegwatchError, StoreError

log = logging.getLogger("regwatch.dashboard")

#: refresh choices: label → seconds (0: only when the operator changes something)
REFRESH = {"Off": 0, "10 s": 10, "30 s": 30, "1 min": 60, "5 min": 300}
DEFAULT_REFRESH = "1 min"
DEFAULT_RANGE = "All data"
_IDLE_PERIOD = 300  # seconds a cached answer lives when refresh is off
SLOW_PERIOD = timedelta(minutes=15)  # see Ctx.call_slow


def settings() -> Settings:
    """The app's settings, read once per session from argv (after ``--``) and the environment."""
    if "regwatch_settings" not in st.session_state:
        st.session_state["regwatch_settings"] = app_settings(sys.argv[1:], os.environ)
    s: Settings = st.session_state["regwatch_settings"]
    return s


@st.cache_resource(show_spinner=False)
def _open(config_path: str | None, db: str | None) -> Opened:
    # a StoreError (no store yet) is not cached: the next run tries again
    return open_dashboard_store(config_path, db)


@st.cache_data(ttl=3600, show_spinner=False, max_entries=1024)
def _cached(name: str, key: tuple[str | None, str | None], period: int, args: tuple[Any, ...],
            kwargs: tuple[tuple[str, Any], ...]) -> Any:
    opened = _open(*key)
    fn = getattr(insights, name)
    return fn(opened.store, *args, **dict(kwargs))


@dataclass(frozen=True)
class Ctx:
    """One render of a page: the store, the time, the chosen range."""

    settings: Settings
    opened: Opened
    now: datetime
    period: int  # the refresh period the cached answers belong to
    refresh: int  # seconds, 0 = off
    bounds: tuple[datetime, datetime] | None
    range: insights.TimeRange

    @property
    def key(self) -> tuple[str | None, str | None]:
        return (self.settings.config_path, self.settings.db)

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``regwatch.insights.<name>(store, *args, **kwargs)``, cached for this refresh period."""
        return _cached(name, self.key, self.period, args, tuple(sorted(kwargs.items())))

    def call_slow(self, name: str, *args: Any) -> Any:
        """``insights.<name>(store, *args)`` for the costly analyses (the anomaly model,
        the retention scan: seconds at 1M events), with every time argument cut to a whole
        ``SLOW_PERIOD`` step, so they run at most once per step whatever the refresh
        interval; what came after the last step waits for the next one. A range shorter
        than a step is used as it is."""
        step = SLOW_PERIOD.total_seconds()

        def cut(v: Any) -> Any:
            return datetime.fromtimestamp((v.timestamp() // step) * step, tz=UTC) if isinstance(v, datetime) else v

        times = [a for a in args if isinstance(a, datetime)]
        cut_args = tuple(cut(a) for a in args)
        cut_times = [a for a in cut_args if isinstance(a, datetime)]
        if len(times) >= 2 and cut_times[1] <= cut_times[0]:
            cut_args = args
        return _cached(name, self.key, -1, cut_args, ())


def refresh_seconds() -> int:
    return REFRESH.get(str(st.session_state.get("refresh", DEFAULT_REFRESH)), 60)


def context() -> Ctx:
    """Open the store (cached) and resolve the sidebar's choices at this moment.
    Raises RegwatchError."""
    s = settings()
    opened = _open(s.config_path, s.db)
    refresh = refresh_seconds()
    per = refresh or _IDLE_PERIOD
    if s.now:
        from regwatch.timeargs import parse_time

        now = parse_time(s.now, datetime.now(UTC))
        period = 0
    else:
        real = datetime.now(UTC)
        period = int(real.timestamp() // per)
        # "now" is the start of the refresh period, so every render of one period asks the
        # same questions (and hits the cache); it is never ahead of the service's status
        now = datetime.fromtimestamp(period * per, tz=UTC)
    key = (s.config_path, s.db)
    bounds = _cached("event_bounds", key, period, (), ())
    label = str(st.session_state.get("range", DEFAULT_RANGE))
    rng = insights.time_range(label, now, bounds)
    return Ctx(s, opened, now, period, refresh, bounds, rng)


def sidebar() -> None:
    """The choices every page shares (kept in session state by their keys)."""
    s = settings()
    st.sidebar.selectbox("Time range", list(insights.RANGES), index=list(insights.RANGES).index(DEFAULT_RANGE), key="range")
    labels = list(REFRESH)
    start = next((k for k, v in REFRESH.items() if v == s.refresh), DEFAULT_REFRESH)
    st.sidebar.selectbox("Refresh every", labels, index=labels.index(start), key="refresh")
    st.sidebar.caption("Config file")
    st.sidebar.code(s.config_path or "none (built-in defaults)", language=None)
    st.sidebar.caption("Store directory")
    st.sidebar.code(s.db or "from the config, REGWATCH_DB or the default", language=None)


def guidance(ctx: Ctx | None, reason: str) -> None:
    """How to fill an empty (or missing) store, and where the config is."""
    s = settings()
    st.info("No registry events to show yet. Ingest some logs or start the service, then this page fills in on its own.")
    st.caption(md_text(reason))
    db = s.db or (str(ctx.opened.state_dir) if ctx is not None else "DIR")
    cfg = s.config_path or "regwatch.example.yaml"
    st.caption("Ingest log files once:")
    st.code(f"regwatch ingest --db {db} PATH...    # e.g. sample_logs/", language="bash")
    st.caption("or run the service, which follows the config's sources:")
    st.code(f"regwatch --config {cfg} run --db {db}", language="bash")
    st.caption("The config file in use (see docs/configuration.md):")
    st.code(s.config_path or "none: built-in defaults (pass --config FILE to regwatch dashboard)", language=None)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_text(text: str) -> str:
    """``text`` with every markdown character backslash-escaped: for the few places that
    render markdown (st.error, st.caption, labels) and must show a value (a path, an error
    naming a value) literally."""
    return _MD_SPECIAL.sub(r"\\\1", insights.strip_ansi(text))


def one_line(exc: BaseException) -> str:
    """The error's text on one line, escaped for st.error (it names the bad value)."""
    return md_text(" ".join(str(exc).split()) or type(exc).__name__)


def run_page(title: str, body: Callable[[Ctx], None], *, needs_events: bool = True) -> None:
    """Render ``body`` under ``title``, refreshing on its own at the sidebar's interval.
    An error becomes one st.error line; an empty or missing store shows the guidance."""
    st.title(title)
    every = refresh_seconds()

    @st.fragment(run_every=timedelta(seconds=every) if every else None)
    def _body() -> None:
        ctx: Ctx | None = None
        try:
            ctx = context()
            if needs_events and ctx.bounds is None:
                guidance(ctx, f"The {ctx.opened.description} holds no events.")
                return
            body(ctx)
        except StoreError as exc:
            if str(exc).startswith("no regwatch store"):
                guidance(ctx, " ".join(str(exc).split()))
            else:
                st.error(f"store error: {one_line(exc)}")
        except RegwatchError as exc:
            st.error(one_line(exc))
        except Exception as exc:
            log.exception("dashboard page %r failed", title)
            st.error(f"unexpected error ({type(exc).__name__}): {one_line(exc)}; the dashboard's log has the details")

    _body()


# -- formatting ---------------------------------------------------------------------------
def fmt_int(n: float | None) -> str:
    return "–" if n is None else f"{int(n):,}"


def fmt_bytes(n: float | None) -> str:
    """IEC units with three significant digits: 31415926 → "30.0 MiB"."""
    if n is None:
        return "–"
    v = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(v) < 1024 or unit == "PiB":
            return f"{v:,.0f} {unit}" if unit == "B" else f"{v:,.1f} {unit}"
        v /= 1024
    return f"{v:,.1f} PiB"


def fmt_ratio(r: float | None) -> str:
    return "–" if r is None else f"{r:.2%}"


def fmt_time(t: datetime | None) -> str:
    return "–" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def table(rows: list[dict[str, Any]], columns: list[str] | tuple[str, ...] | None = None, *, key: str,
          file_name: str, empty: str = "Nothing matches.") -> None:
    """Rows as a dataframe (text cells, never markdown) and a CSV download of exactly those rows."""
    if not rows:
        st.caption(empty)
        return
    cols = list(columns) if columns is not None else list(rows[0])
    st.dataframe([{c: r.get(c) for c in cols} for r in rows], hide_index=True)
    st.download_button(f"Download CSV ({len(rows):,} rows)", insights.to_csv(rows, cols), file_name=file_name,
                       mime="text/csv", key=f"csv_{key}", on_click="ignore")
