"""The service's status file: what `regwatch status` and the dashboard read.

The daemon rewrites ``<state_dir>/status.json`` atomically (write, fsync, rename) about
once a second. A reader in another process needs no socket and no lock, and a status
whose writer is gone (pid not alive, or not updated for ``STALE_AFTER``) reads as
``running=False``, so a crashed daemon is never shown as healthy.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from regwatch.config import Config

STATUS_FILE = "status.json"
STALE_AFTER = timedelta(seconds=15)


@dataclass(frozen=True)
class SourceStatus:
    """One followed file lineage."""

    path: str
    fingerprint: str
    offset: int  # bytes read so far
    size: int  # the file's size now
    lag_bytes: int  # size - committed offset
    lag_seconds: float | None  # how long the oldest unstored byte has waited (0 when caught up)
    last_event_age_seconds: float | None  # now - the newest stored event's time


@dataclass(frozen=True)
class ServiceStatus:
    pid: int
    started: datetime
    updated: datetime
    running: bool
    sources: tuple[SourceStatus, ...] = ()
    lines_read: int = 0
    events_written: int = 0
    drops: dict[str, int] = field(default_factory=dict)
    noise: dict[str, int] = field(default_factory=dict)
    store_ok: bool = True
    store_blocked_reason: str | None = None
    store_errors: dict[str, int] = field(default_factory=dict)
    webhooks: dict[str, int] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    listening: dict[str, str] = field(default_factory=dict)  # what → URL (webhooks, metrics, dashboard)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["started"] = self.started.isoformat()
        d["updated"] = self.updated.isoformat()
        d["sources"] = [asdict(s) for s in self.sources]
        d["problems"] = list(self.problems)
        return d


def default_state_dir(config: Config, db: Path | None) -> Path:
    """``service.state_dir`` when set, else the store's own state directory (the
    embedded store directory for the embedded store, as the CLI's checkpoint)."""
    if config.service.state_dir:
        return Path(config.service.state_dir)
    if db is not None:
        return Path(db)
    return Path(os.path.expanduser("~/.local/state/regwatch"))


def write_status(state_dir: str | os.PathLike[str], status: ServiceStatus) -> None:
    """Replace the status file atomically (readers see the old or the new one). Not
    fsynced: it is rewritten every second and says nothing a crash must keep (the
    checkpoints are what is durable), and an idle service need not wake the disk."""
    d = Path(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".status.", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(status.to_dict(), fh, sort_keys=True)
        os.replace(tmp, d / STATUS_FILE)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _time(v: Any) -> datetime:
    t = datetime.fromisoformat(str(v))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def read_status(state_dir: str | os.PathLike[str], now: datetime) -> ServiceStatus | None:
    """The last status a daemon wrote in ``state_dir``; None when none ever did (or the
    file cannot be read). ``running`` is False when that daemon has gone."""
    p = Path(state_dir) / STATUS_FILE
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        updated = _time(doc["updated"])
        pid = int(doc["pid"])
        running = bool(doc.get("running", False)) and _alive(pid) and now - updated <= STALE_AFTER
        return ServiceStatus(
            pid=pid,
            started=_time(doc["started"]),
            updated=updated,
            running=running,
            sources=tuple(SourceStatus(**s) for s in doc.get("sources", ())),
            lines_read=int(doc.get("lines_read", 0)),
            events_written=int(doc.get("events_written", 0)),
            drops={str(k): int(v) for k, v in (doc.get("drops") or {}).items()},
            noise={str(k): int(v) for k, v in (doc.get("noise") or {}).items()},
            store_ok=bool(doc.get("store_ok", True)),
            store_blocked_reason=doc.get("store_blocked_reason"),
            store_errors={str(k): int(v) for k, v in (doc.get("store_errors") or {}).items()},
            webhooks={str(k): int(v) for k, v in (doc.get("webhooks") or {}).items()},
            problems=tuple(str(x) for x in doc.get("problems", ())),
            listening={str(k): str(v) for k, v in (doc.get("listening") or {}).items()},
        )
    except (KeyError, TypeError, ValueError):
        return None


def describe(status: ServiceStatus | None, state_dir: str | os.PathLike[str], now: datetime) -> str:
    """The text `regwatch status` prints."""
    if status is None:
        return f"no regwatch service has run with state directory {str(state_dir)!r}; start one with: regwatch --config FILE run"
    lines: list[str] = []
    up = now - status.started
    if status.running:
        lines.append(f"regwatch service running (pid {status.pid}, up {_span(up.total_seconds())}, updated {_span((now - status.updated).total_seconds())} ago)")
    else:
        lines.append(
            f"no regwatch service is running: the last one (pid {status.pid}) stopped or stalled; its last status is from {status.updated.isoformat()}"
        )
    if status.store_ok:
        lines.append("store: ok")
    else:
        lines.append(f"store: BLOCKED: {status.store_blocked_reason or 'unknown reason'} (reading is paused; nothing is lost)")
    if status.store_errors:
        lines.append("store errors: " + ", ".join(f"{k}={v}" for k, v in sorted(status.store_errors.items())))
    lines.append(f"lines read: {status.lines_read}, events written: {status.events_written}")
    if status.drops:
        lines.append("dropped: " + ", ".join(f"{k}={v}" for k, v in sorted(status.drops.items())))
    for what, url in sorted(status.listening.items()):
        lines.append(f"{what}: {url}")
    if any(status.webhooks.values()):
        lines.append("webhook requests: " + ", ".join(f"{k}={v}" for k, v in sorted(status.webhooks.items()) if v))
    if status.sources:
        lines.append("sources:")
        for s in status.sources:
            age = "-" if s.last_event_age_seconds is None else _span(s.last_event_age_seconds)
            lag_s = "-" if s.lag_seconds is None else _span(s.lag_seconds)
            lines.append(f"  {s.path}: read {s.offset}/{s.size} bytes, lag {s.lag_bytes} B ({lag_s}), last event {age} ago")
    for p in status.problems:
        lines.append(f"problem: {p}")
    return "\n".join(lines)


def _span(seconds: float) -> str:
    s = max(0.0, seconds)
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}m"
    if s < 172800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"
