"""User-defined formats: a grok pattern plus a mapping of its captures to Event fields.

Patterns use pygrok's pattern language and its bundled library, plus every
``patterns/*.grok`` file shipped with regwatch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pygrok import Grok

from regwatch.errors import ConfigError
from regwatch.events import AuthClass, DropReason, Dropped, Event, RawLine, event_id
from regwatch.parsing.base import drop
from regwatch.parsing.registry_api import auth_class_of, classify, outcome_of, tally_of
from regwatch.parsing.timeparse import parse_clf, parse_rfc3339
from regwatch.redact import redact

PATTERNS_DIR = Path(__file__).parent / "patterns"

#: Event fields a custom format may fill from its captures
MAPPABLE = frozenset(
    {
        "timestamp",
        "method",
        "uri",
        "status",
        "bytes",
        "user",
        "client_ip",
        "user_agent",
        "request_id",
        "repository",
        "reference",
        "digest",
        "error_code",
        "duration_ms",
        "message",
        "level",
        "action",
        "outcome",
        "host",
    }
)


def compile_grok(pattern: str) -> Grok:
    """Compile a grok pattern with regwatch's pattern files. Raises ConfigError."""
    try:
        return Grok(pattern, custom_patterns_dir=str(PATTERNS_DIR))
    except KeyError as exc:
        raise ConfigError(f"grok pattern refers to unknown pattern {exc.args[0]!r}: {pattern!r}") from exc
    except Exception as exc:  # regex compile errors come in several types
        raise ConfigError(f"grok pattern does not compile ({exc}): {pattern!r}") from exc


@dataclass
class GrokFormat:
    """A named, user-defined line format."""

    name: str
    pattern: str
    fields: dict[str, str] = field(default_factory=dict)  # event field -> capture name
    time_format: str | None = None  # strptime format; default: ISO-8601 or CLF
    component: str = "custom"
    source: str = "custom"

    def __post_init__(self) -> None:
        bad = sorted(set(self.fields) - MAPPABLE)
        if bad:
            raise ConfigError(
                f"format {self.name!r} maps unknown event field(s) {bad!r}; allowed: {sorted(MAPPABLE)}"
            )
        self.grok = compile_grok(self.pattern)
        names = set(self.grok.regex_obj.groupindex)
        missing = sorted(c for c in self.fields.values() if c not in names)
        if missing:
            raise ConfigError(
                f"format {self.name!r} maps capture(s) {missing!r} that its pattern does not define; "
                f"captures: {sorted(names)!r}"
            )


class GrokParser:
    """Parses lines of a user-defined format. Never raises on input."""

    def __init__(self, fmt: GrokFormat) -> None:
        self.fmt = fmt
        self.name = fmt.name

    def sniff(self, text: str) -> bool:
        return self.fmt.grok.regex_obj.search(text) is not None

    def parse(self, line: RawLine) -> Event | Dropped:
        try:
            return self._parse(line)
        except Exception as exc:  # noqa: BLE001
            return drop(line, DropReason.UNPARSABLE, type(exc).__name__)

    def _get(self, caps: dict[str, Any], key: str) -> Any:
        cap = self.fmt.fields.get(key, key)
        v = caps.get(cap)
        return None if v in (None, "", "-") else v

    def _parse(self, line: RawLine) -> Event | Dropped:
        caps = self.fmt.grok.match(line.text)
        if caps is None:
            return drop(line, DropReason.UNPARSABLE, f"does not match format {self.name!r}")
        ts_text = self._get(caps, "timestamp")
        ts: datetime | None = None
        if ts_text is not None:
            ts_text = str(ts_text)
            if self.fmt.time_format:
                try:
                    ts = datetime.strptime(ts_text, self.fmt.time_format)
                except ValueError:
                    ts = None
                if ts is not None and ts.tzinfo is None:
                    ts = ts.replace(tzinfo=timezone.utc)
            else:
                ts = parse_rfc3339(ts_text) or parse_clf(ts_text)
        if ts is None:
            return drop(line, DropReason.BAD_FIELD, f"no readable timestamp in {ts_text!r}")
        ts = ts.astimezone(timezone.utc)
        method = self._get(caps, "method")
        uri = self._get(caps, "uri")
        req = classify(method, uri)
        status = self._get(caps, "status")
        status = int(status) if status is not None else None
        nbytes = self._get(caps, "bytes")
        nbytes = int(nbytes) if nbytes is not None else None
        dur = self._get(caps, "duration_ms")
        action = self._get(caps, "action") or req.action.value
        user = self._get(caps, "user")
        return Event(
            id=event_id(line.fingerprint, line.offset),
            timestamp=ts,
            source=self.fmt.source,
            component=self.fmt.component,
            action=str(action),
            outcome=str(self._get(caps, "outcome") or outcome_of(status).value),
            tally=tally_of(str(action), status).value,
            auth=(auth_class_of(str(action), status, user) if status == 401 else AuthClass.NONE).value,
            repository=self._get(caps, "repository") or req.repository,
            reference=self._get(caps, "reference") or req.reference,
            digest=self._get(caps, "digest") or req.digest,
            method=method,
            path=uri.split("?", 1)[0] if uri else None,
            status=status,
            bytes=nbytes,
            duration_ms=float(dur) if dur is not None else None,
            user=user,
            client_ip=self._get(caps, "client_ip"),
            user_agent=self._get(caps, "user_agent"),
            request_id=self._get(caps, "request_id"),
            error_code=self._get(caps, "error_code"),
            level=self._get(caps, "level"),
            message=self._get(caps, "message"),
            host=self._get(caps, "host"),
            raw=redact(line.text),
            log_file=line.path,
            log_offset=line.offset,
        )
