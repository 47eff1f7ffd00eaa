"""Named parsers, and per-line auto-detection for mixed streams."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from regwatch.config import Config, parse_tz
from regwatch.errors import UnknownFormat
from regwatch.events import DropReason, Dropped, Event, RawLine
from regwatch.parsing.base import Parser, drop
from regwatch.parsing.distribution import DistributionParser
from regwatch.parsing.grok import GrokFormat, GrokParser

BUILTIN = ("auto", "distribution", "harbor", "harbor-audit")


class AutoParser:
    """Tries Harbor's rsyslog wrapper, then the Distribution family, then custom formats."""

    name = "auto"

    def __init__(self, harbor: Parser | None, distribution: DistributionParser, custom: list[GrokParser]):
        self.harbor = harbor
        self.distribution = distribution
        self.custom = custom

    def parse(self, line: RawLine) -> Event | Dropped:
        text = line.text
        if self.harbor is not None and _syslog_like(text):
            return self.harbor.parse(line)
        out = self.distribution.parse(line)
        if isinstance(out, Dropped) and out.reason is DropReason.UNPARSABLE:
            for p in self.custom:
                if p.sniff(text):
                    return p.parse(line)
        return out


def _syslog_like(text: str) -> bool:
    # "Mmm dd HH:MM:SS " (rsyslog traditional) or an RFC 3339 prefix followed by a host
    return (
        len(text) > 16
        and text[3] == " "
        and text[0].isupper()
        and text[1:3].isalpha()
        and text[9] == ":"
        and text[12] == ":"
    )


def names(config: Config) -> list[str]:
    return list(BUILTIN) + [f.name for f in config.formats]


def make_parser(name: str | None, config: Config, *, fallback_ts: datetime | None = None) -> Parser:
    """A fresh parser for one stream. Raises UnknownFormat naming the allowed values."""
    name = name or "auto"
    custom = [
        GrokParser(GrokFormat(f.name, f.pattern, dict(f.fields), f.time_format, f.component))
        for f in config.formats
    ]
    harbor = _harbor(config)
    dist = DistributionParser(fallback_ts)
    if name == "auto":
        return AutoParser(harbor, dist, custom)
    if name == "distribution":
        return dist
    if name == "harbor":
        if harbor is None:
            raise UnknownFormat("the harbor parser is not available in this build")
        return harbor
    if name == "harbor-audit":
        return _Unsupported(name)
    for p in custom:
        if p.name == name:
            return p
    raise UnknownFormat(
        f"unknown format {name!r}; choose one of {names(config)!r} or define it under 'formats:' in the config"
    )


class _Unsupported:
    """harbor-audit is file-level (JSON/CSV exports); lines never reach a line parser."""

    def __init__(self, name: str) -> None:
        self.name = name

    def parse(self, line: RawLine) -> Event | Dropped:
        return drop(line, DropReason.UNPARSABLE, "not a Harbor audit export file")


def _harbor(config: Config) -> Parser | None:
    try:
        from regwatch.parsing.harbor import HarborParser
    except ImportError:
        return None
    tz = parse_tz(config.harbor_host_tz) if config.harbor_host_tz else None
    return HarborParser(host_tz=tz)  # type: ignore[no-any-return]


ParserFactory = Callable[[], Parser]
