"""The Parser protocol and helpers shared by the log families."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from regwatch.events import DropReason, Dropped, Event, RawLine


@runtime_checkable
class Parser(Protocol):
    """Turns one logical line into an Event or a Dropped. Never raises on bad input."""

    name: str

    def parse(self, line: RawLine) -> Event | Dropped: ...


def drop(line: RawLine, reason: DropReason, detail: str = "", kind: str | None = None) -> Dropped:
    return Dropped(
        reason=reason,
        text=line.text,
        path=line.path,
        offset=line.offset,
        detail=detail,
        fingerprint=line.fingerprint,
        kind=kind,
    )


def noise(line: RawLine, kind: str, detail: str = "") -> Dropped:
    """A known line with nothing to count, of a NoiseKind."""
    return drop(line, DropReason.NOISE, detail, kind)


def with_text(line: RawLine, text: str) -> RawLine:
    """The same line (position, fingerprint, problem) with other text: what is left once
    an envelope or an indent is taken off."""
    return RawLine(line.source, line.path, text, line.fingerprint, line.offset, line.end, line.problem, line.component)
