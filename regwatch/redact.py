"""Keep secrets out of stored events and logs.

Redaction runs on every raw line before it is stored or printed: Authorization
values, passwords, tokens and URL credentials become ``[REDACTED]``.
"""

from __future__ import annotations

import re

MASK = "[REDACTED]"

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Basic xxx / Bearer xxx (header dumps, logfmt, JSON)
    (
        re.compile(r"(?i)((?:proxy-)?authorization[\"']?\s*[:=]\s*\[?[\"']?\s*(?:basic|bearer|token|negotiate|digest)?\s*)[^\s\"'\],}]+"),
        r"\1" + MASK,
    ),
    # "key": "value with spaces" (JSON) for secret-looking keys
    (
        re.compile(
            r'(?i)("[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|credential|client_secret|signature)"\s*:\s*")((?:[^"\\]|\\.)*)(")'
        ),
        r"\1" + MASK + r"\3",
    ),
    # key=value / key: value / "key":"value" for secret-looking keys
    (
        re.compile(
            r"(?i)((?:^|[\s?&,{\[\"'])(?:[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|credential|client_secret|x-amz-signature|x-amz-credential|signature))[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED\])([^\s\"'&,}\]]+)"
        ),
        r"\1" + MASK,
    ),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+@"), r"\1" + MASK + "@"),
    # bare JWTs anywhere
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MASK),
)


_TRIGGER = re.compile(
    r"(?i)authorization[\"']?\s*[:=]|pass|pwd|secret|token|api[_-]?key|apikey|credential|signature|://|eyJ"
)


def redact(text: str) -> str:
    """Return ``text`` with secrets masked. Cheap when nothing secret-looking is present."""
    if _TRIGGER.search(text) is None:
        return text
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return text
