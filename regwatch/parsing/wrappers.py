"""The envelopes a container runtime puts around a component's own line (domain.md,
"Deployment wrappers").

A collector on Kubernetes or docker-compose rarely reads a component's line as the
component wrote it:

==============  ===================================================================
wrapper         physical line
==============  ===================================================================
``cri``         ``<RFC3339Nano> stdout F <line>`` (kubelet/containerd files under
                ``/var/log/containers``); ``P`` instead of ``F`` marks a partial line
                (split at 16 KiB) that the next records of the same stream continue
``docker_json`` ``{"log":"<line>\\n","stream":"stdout","time":"<RFC3339Nano>"}`` (Docker's
                json-file driver); a ``log`` that does not end in a newline is partial
``docker_ts``   ``<RFC3339Nano> <line>`` (``docker logs --timestamps``)
==============  ===================================================================

A host syslog or journald prefix (``Mmm dd HH:MM:SS host tag[pid]: ``) is read by the
Harbor parser, which knows the tags. :func:`unwrap` takes the envelope off one physical
line; :class:`Joiner` puts partial lines back together, per stream. Detection is per
line, so one file may mix wrappers (a support bundle, a shared journald export).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from regwatch.parsing.timeparse import parse_rfc3339

_CRI = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) "
    r"(?P<stream>stdout|stderr) (?P<tag>[FP])(?: (?P<line>.*))?\Z",
    re.DOTALL,
)
# docker logs --timestamps always prints nanoseconds; the Harbor logger's own time
# (RFC 3339, whole seconds) is followed by "[LEVEL]", which a wrapper never is
_DOCKER_TS = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}(?:Z|[+-]\d\d:\d\d)) (?P<line>(?!\[[A-Z]+\]).*)\Z",
    re.DOTALL,
)
# `docker compose logs`: "<service>  | <line>" (v1 and v2; coloured on a terminal), and
# `kubectl logs --prefix`: "[pod/<pod>/<container>] <line>"; either may carry
# --timestamps inside
_COMPOSE = re.compile(
    r"^(?:\x1b\[[0-9;]*m)?(?P<name>[A-Za-z0-9][\w.\-]*)\s*\|(?:\x1b\[0m)? ?(?P<line>.*)\Z", re.DOTALL
)
_KUBECTL = re.compile(r"^\[pod/(?P<pod>[^/\]\s]+)/(?P<name>[^\]\s]+)\] (?P<line>.*)\Z", re.DOTALL)
MAX_PARTS = 64  # partial pieces joined into one record at most (16 KiB each: 1 MiB)


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """One physical line with its envelope taken off."""

    wrapper: str  # "cri", "docker_json", "docker_ts", "compose", "kubectl"
    text: str  # the component's own line (no trailing newline)
    time: datetime | None  # the runtime's time for the line: the best clock when the line has none
    stream: str  # "stdout", "stderr" or "" when the wrapper does not say
    partial: bool  # the line continues in the next record of the same stream


def unwrap(text: str) -> Unwrapped | None:
    """The envelope of ``text`` taken off, or None when it has none. Never raises."""
    if not text:
        return None
    c0 = text[0]
    if c0 == "{":
        return _docker_json(text)
    if c0 == "[" and text.startswith("[pod/"):
        return _named(text, _KUBECTL, "kubectl")
    if c0.isalpha() or c0 == "\x1b":
        return _named(text, _COMPOSE, "compose")
    if c0.isdigit() and len(text) > 20 and text[4] == "-" and text[10] == "T":
        m = _CRI.match(text)
        if m is not None:
            return Unwrapped(
                "cri",
                m.group("line") or "",
                parse_rfc3339(m.group("ts")),
                m.group("stream"),
                m.group("tag") == "P",
            )
        m = _DOCKER_TS.match(text)
        if m is not None:
            return Unwrapped("docker_ts", m.group("line"), parse_rfc3339(m.group("ts")), "", False)
    return None


def _named(text: str, pattern: re.Pattern[str], wrapper: str) -> Unwrapped | None:
    m = pattern.match(text)
    if m is None:
        return None
    line = m.group("line")
    inner = unwrap(line) if line[:1].isdigit() else None  # --timestamps inside
    if inner is not None and inner.wrapper == "docker_ts":
        return Unwrapped(wrapper, inner.text, inner.time, "", False)
    return Unwrapped(wrapper, line, None, "", False)


def _docker_json(text: str) -> Unwrapped | None:
    if '"log"' not in text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    log = doc.get("log")
    if not isinstance(log, str) or not ("stream" in doc or "time" in doc):
        return None
    t = doc.get("time")
    stream = doc.get("stream")
    partial = not log.endswith("\n")
    return Unwrapped(
        "docker_json",
        log[:-1] if not partial else log,
        parse_rfc3339(t) if isinstance(t, str) else None,
        stream if isinstance(stream, str) else "",
        partial,
    )


@dataclass
class _Held:
    offset: int  # where the record's first piece starts
    parts: list[str]
    time: datetime | None


class Joiner:
    """Puts partial lines back together, one record per stream.

    ``feed`` returns None while a record is incomplete, and the whole record (with the
    offset of its first piece) once its last piece arrives. A record that grows past
    :data:`MAX_PARTS` pieces is handed on as it is, so a runaway stream cannot hold
    memory.
    """

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}

    def feed(self, u: Unwrapped, offset: int) -> tuple[Unwrapped, int] | None:
        held = self._held.get(u.stream)
        if u.partial:
            if held is None:
                self._held[u.stream] = _Held(offset, [u.text], u.time)
                return None
            held.parts.append(u.text)
            if len(held.parts) < MAX_PARTS:
                return None
            del self._held[u.stream]
            return Unwrapped(u.wrapper, "".join(held.parts), held.time, u.stream, False), held.offset
        if held is None:
            return u, offset
        del self._held[u.stream]
        held.parts.append(u.text)
        return Unwrapped(u.wrapper, "".join(held.parts), held.time, u.stream, False), held.offset

    def pending(self) -> bool:
        return bool(self._held)


# the whole-line envelopes a block can shed in one vectorised pass (RE2 in Arrow): CRI
# full lines, docker --timestamps, and json-file lines whose value needs no unescaping
# beyond the usual (quotes, backslashes, Go's HTML escapes); pieces of split lines, and
# every line after one, are left to the per-line path and its joiner
_BLOCK_ENVELOPE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}(?:Z|[+-]\d\d:\d\d) (?:(?:stdout|stderr) F )?"
_BLOCK_SNIFF = re.compile(_BLOCK_ENVELOPE)
_BLOCK_PIECE = r"^\d{4}-\d\d-\d\dT\S+ (?:stdout|stderr) P "
_JSON_LINE = r'^\{"log":".*\\n","stream":"(?:stdout|stderr)","time":"[^"\\]*"\}$'
# no capture groups: RE2 then runs its DFA (a capture costs 10x on long lines)
_JSON_TAIL = r'\\n","stream":"(?:stdout|stderr)","time":"[^"\\]*"\}$'
# an escape other than \" \\ \/ \t \u003c \u003e \u0026 (conservative: may flag a good one)
_JSON_ODD = r'\\(?:[^"\\/tu]|u(?:[^0]|0[^0]|00[^23]|002[^6]|003[^ce]))'
_JSON_UNESCAPE = (("\\\\", "\x00"), ('\\"', '"'), ("\\/", "/"), ("\\t", "\t"),
                  ("\\u003c", "<"), ("\\u003e", ">"), ("\\u0026", "&"), ("\x00", "\\"))


def strip_block(texts: pa.StringArray, first: str) -> tuple[pa.StringArray, np.ndarray | None, str]:
    """A block's lines (an array without nulls) with their envelope taken off, for the
    block parser; which lines had one (None when the block's first line has none, or
    when the block holds a piece of a split line: the block is left as it is); and the
    envelope's name. A line it cannot unwrap exactly becomes null: the per-line parser
    takes it. The per-line path unwraps the lines the block parser leaves."""
    from regwatch.arrowkit import int64_numpy, null_scalar  # bool to_numpy would import pandas

    if not first:
        return texts, None, ""
    if first.startswith('{"log":"'):
        if pc.any(pc.invert(pc.match_substring_regex(texts, pattern=_JSON_LINE))).as_py():
            return texts, None, ""  # a piece of a split line (or another shape)
        value = pc.utf8_slice_codeunits(texts, start=len('{"log":"'))  # every line has it
        value = pc.replace_substring_regex(value, pattern=_JSON_TAIL, replacement="", max_replacements=1)
        # an escaped backslash first (to NUL, which JSON never holds raw), so that what
        # follows it is not read as an escape
        value = pc.replace_substring(value, pattern="\\\\", replacement="\x00")
        odd = pc.match_substring_regex(value, pattern=_JSON_ODD)
        for old, new in _JSON_UNESCAPE[1:]:
            value = pc.replace_substring(value, pattern=old, replacement=new)
        value = pc.if_else(odd, null_scalar(pa.string()), value)
        mask = int64_numpy(pc.cast(pc.invert(odd), pa.int64())).astype(bool)
        return value, mask, "docker_json"
    if not first[0].isdigit() or _BLOCK_SNIFF.match(first) is None:
        return texts, None, ""
    if pc.any(pc.match_substring_regex(texts, pattern=_BLOCK_PIECE)).as_py():
        return texts, None, ""
    had = pc.match_substring_regex(texts, pattern=_BLOCK_ENVELOPE)
    stripped = pc.replace_substring_regex(texts, pattern=_BLOCK_ENVELOPE, replacement="", max_replacements=1)
    mask = int64_numpy(pc.cast(had, pa.int64())).astype(bool)
    return stripped, mask, "cri" if " stdout F " in first[:48] or " stderr F " in first[:48] else "docker_ts"
