"""Helpers shared by regwatch's unit tests (imported by tests, set up in conftest.py).

Everything here builds *inputs* (log lines in the exact shapes the real registry writes,
see sample_logs/distribution/NOTES.md) or drives regwatch through its public surface
(``regwatch.pipeline.ingest``, ``regwatch.summary.summarize``, ``regwatch.cli.main`` and
``python -m regwatch``). No regwatch internals are reached into.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_logs" / "distribution"

REGISTRY_LOGS = ("registry-text", "registry-json", "registry-tty")

# the counters of `summary --json` (the ones the sample *.expected.json files carry, plus
# pushes_failed and tls_handshake_errors which they do not)
SUMMARY_COUNT_KEYS = (
    "pulls",
    "pulls_failed",
    "pushes",
    "pushes_failed",
    "deletes",
    "deletes_failed",
    "auth_failures",
    "anonymous_denials",
    "challenges",
    "bytes_pulled",
    "bytes_pushed",
    "tls_handshake_errors",
)
# the integer keys the issue requires of `summary --json` (and that *.expected.json carry)
ISSUE_COUNT_KEYS = tuple(k for k in SUMMARY_COUNT_KEYS if k not in ("pushes_failed", "tls_handshake_errors"))

# logrus (text formatter) quotes a value when it has a character outside this set
_BARE = re.compile(r"^[A-Za-z0-9\-._/@^+]*$")


def _logrus_value(v: Any, escape: bool) -> str:
    s = str(v)
    if s == "":
        return ""  # `key=` followed by a space
    if _BARE.match(s):
        return s
    if escape:
        s = s.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def rfc3339(ts: datetime) -> str:
    """Go's RFC3339Nano: trailing zeros of the fraction trimmed (0-9 digits)."""
    ts = ts.astimezone(timezone.utc)
    base = ts.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{ts.microsecond:06d}".rstrip("0")
    return base + (f".{frac}" if frac else "") + "Z"


def logrus_line(
    ts: datetime | str,
    level: str,
    msg: str,
    fields: dict[str, Any] | None = None,
    *,
    escape: bool = True,
) -> str:
    """A logrus text-formatter line: time, level, msg, then the fields sorted by key.

    ``escape=False`` prints inner quotes raw, as registry 2.7/2.8 upstream and Harbor do.
    """
    t = ts if isinstance(ts, str) else rfc3339(ts)
    m = msg.replace("\\", "\\\\").replace('"', '\\"') if escape else msg
    parts = [f'time="{t}"', f"level={level}", f'msg="{m}"']
    for k in sorted(fields or {}):
        parts.append(f"{k}={_logrus_value(fields[k], escape)}")  # type: ignore[index]
    return " ".join(parts)


def json_line(ts: datetime | str, level: str, msg: str, fields: dict[str, Any] | None = None) -> str:
    doc = dict(fields or {})
    doc.update({"level": level, "msg": msg, "time": ts if isinstance(ts, str) else rfc3339(ts)})
    return json.dumps(dict(sorted(doc.items())), ensure_ascii=False)


def clf_time(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000")


def access_line(
    ip: str,
    ts: datetime,
    method: str,
    uri: str,
    status: int,
    nbytes: int | str,
    ua: str,
    referer: str = "",
) -> str:
    """An Apache combined access line as gorilla/handlers writes it."""
    return f'{ip} - - [{clf_time(ts)}] "{method} {uri} HTTP/1.1" {status} {nbytes} "{referer}" "{ua}"'


def request_fields(
    rid: str,
    method: str,
    uri: str,
    ip: str = "10.0.0.1",
    ua: str = "skopeo/1.9.3",
    port: int = 40000,
    **extra: Any,
) -> dict[str, Any]:
    f: dict[str, Any] = {
        "go.version": "go1.19.8",
        "http.request.host": "registry.example:5000",
        "http.request.id": rid,
        "http.request.method": method,
        "http.request.remoteaddr": f"{ip}:{port}" if ":" not in ip else f"[{ip}]:{port}",
        "http.request.uri": uri,
        "http.request.useragent": ua,
    }
    f.update(extra)
    return f


def state_token(name: str, uuid: str, offset: int, started: str = "2026-11-30T01:40:37Z") -> str:
    """A Distribution upload ``_state``: base64url(32-byte HMAC + JSON), no padding."""
    mac = bytes(range(32))
    doc = json.dumps(
        {"Name": name, "UUID": uuid, "Offset": offset, "StartedAt": started}, separators=(",", ":")
    ).encode()
    return base64.urlsafe_b64encode(mac + doc).decode().rstrip("=")


def decode_state_offset(uri: str) -> int | None:
    """Independent decoding of ``_state`` (the test's own, not regwatch's)."""
    from urllib.parse import parse_qs, urlsplit

    qs = parse_qs(urlsplit(uri).query)
    if "_state" not in qs:
        return None
    tok = qs["_state"][0]
    raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
    return int(json.loads(raw[32:])["Offset"])


# -- driving regwatch ---------------------------------------------------------------------
def new_store(path: Path) -> Any:
    from regwatch.stores.embedded import EmbeddedStore

    return EmbeddedStore(path)


def ingest_files(paths: list[str | os.PathLike[str]], db: Path, **kw: Any) -> tuple[Any, Any]:
    """Ingest into a fresh embedded store at ``db``; return (IngestStats, store)."""
    from regwatch.pipeline import ingest

    store = new_store(db)
    stats = ingest([str(p) for p in paths], store, **kw)
    return stats, store


def summary_of(store: Any, **query: Any) -> dict[str, Any]:
    from regwatch.stores.base import Query
    from regwatch.summary import summarize

    return summarize(store, Query(**query))


def accounting_gap(stats: dict[str, Any]) -> int:
    """lines - (events + duplicates + dropped + ignored), with `empty_file` per file, not per line.

    Every logical line read ends up exactly once as: a new event, a duplicate of a stored
    event, an unintentional drop, or an intentional one (blank, noise, merged into another
    line's record). An empty file is counted in `dropped` without having any line.
    """
    dropped = dict(stats["dropped"])
    dropped.pop("empty_file", None)
    return stats["lines"] - (
        stats["events"] + stats["duplicates"] + sum(dropped.values()) + sum(stats["ignored"].values())
    )


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("REGWATCH_DB", None)
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """``python -m regwatch ARGS`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "regwatch", *args],
        cwd=str(cwd or ROOT),
        env=env or cli_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kw,
    )


def expected(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"{name}.expected.json").read_text())


def synth_lines(n: int, seed: int) -> list[str]:
    """``n`` lines of bench/synth.py's synthetic registry log."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("regwatch_bench_synth", ROOT / "bench" / "synth.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return list(mod.generate(n, seed))


def require_native() -> None:
    """Skip a test module when the native library is not built; fail under CI=true, where
    a green run must not hide an untested hot path."""
    import pytest

    from regwatch import native

    if native.available():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("the native library is not built (make native)", pytrace=False)
    pytest.skip("the native library is not built (make native)", allow_module_level=True)
