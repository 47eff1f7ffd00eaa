"""Every Harbor sample produces exactly the events (and drops) its expectation file lists.

``sample_logs/harbor/<file>.expected.jsonl`` holds one JSON object per physical line of a
log (or per record of an audit export), in order. The expectation files are the truth:
they were generated once and then checked by hand; a difference here is a parser change
to justify, not a file to regenerate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from regwatch.config import Config
from regwatch.events import Dropped, Event, RawLine
from regwatch.formats import host_calibration, make_parser
from regwatch.parsing import harbor_audit

ROOT = Path(__file__).resolve().parents[2] / "sample_logs" / "harbor"
FIELDS = (
    "timestamp",
    "source",
    "component",
    "action",
    "outcome",
    "tally",
    "auth",
    "repository",
    "reference",
    "digest",
    "user",
    "client_ip",
    "status",
    "bytes",
    "repeat",
)
EXPORT_SUFFIXES = (".json", ".jsonl", ".csv", ".tsv")


def _samples() -> list[str]:
    out = []
    for p in sorted(ROOT.rglob("*")):
        if not p.is_file() or p.name.endswith(".expected.jsonl"):
            continue
        if p.suffix in (".log",) + EXPORT_SUFFIXES:
            out.append(str(p.relative_to(ROOT)))
    return out


def _has_distribution() -> bool:
    try:
        from regwatch.parsing.distribution import parse_body  # noqa: F401
    except ImportError:
        return False
    return True


def _view(r: Event | Dropped, n: int, offset: int | None) -> dict[str, Any]:
    if isinstance(r, Dropped):
        return {"line": n, "offset": offset, "drop": r.reason.value}
    d: dict[str, Any] = {"line": n, "offset": offset}
    for f in FIELDS:
        v = getattr(r, f)
        if f == "timestamp":
            assert v.tzinfo is not None and v.utcoffset().total_seconds() == 0
            v = v.isoformat().replace("+00:00", "Z")
        d[f] = v
    return d


def auto_parser(path: str):  # type: ignore[no-untyped-def]
    """The parser the ingest uses for a file: auto-detection, no hints. The file's own
    time is its mtime, which a checkout sets to today: the year must come from the logs."""
    return make_parser("auto", Config(), calibration=host_calibration(path))


def parse_log(rel: str) -> list[dict[str, Any]]:
    path = str(ROOT / rel)
    parser = auto_parser(path)
    data = (ROOT / rel).read_bytes()
    out: list[dict[str, Any]] = []
    offset = 0
    for n, raw in enumerate(data.splitlines(keepends=True), 1):
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        r = parser.parse(
            RawLine(source=path, path=path, text=text, fingerprint="fp", offset=offset)
        )
        out.append(_view(r, n, offset))
        offset += len(raw)
    return out


def parse_export(rel: str) -> list[dict[str, Any]]:
    out = []
    for n, r in enumerate(harbor_audit.parse_file(str(ROOT / rel), "fp"), 1):
        out.append(_view(r, n, r.offset if isinstance(r, Dropped) else r.log_offset))
    return out


@pytest.mark.parametrize("rel", _samples())
def test_sample_matches_expectation(rel: str) -> None:
    text = (ROOT / rel).read_text(encoding="utf-8", errors="replace")
    if " registry[" in text and not _has_distribution():
        pytest.skip("regwatch.parsing.distribution.parse_body is not available yet")
    got = parse_export(rel) if rel.endswith(EXPORT_SUFFIXES) else parse_log(rel)
    expected_path = ROOT / f"{rel}.expected.jsonl"
    want = [json.loads(line) for line in expected_path.read_text().splitlines() if line.strip()]
    assert len(got) == len(want), f"{rel}: {len(got)} results, expected {len(want)}"
    for g, w in zip(got, want):
        assert g == w, f"{rel} line {w['line']}"


def test_every_sample_has_an_expectation_and_a_source() -> None:
    sources = (ROOT / "SOURCES.md").read_text()
    for rel in _samples():
        assert (ROOT / f"{rel}.expected.jsonl").exists(), rel
        assert Path(rel).name in sources, f"{rel} is not credited in SOURCES.md"


def _log_ids(rel: str) -> list[str]:
    p = auto_parser(str(ROOT / rel))
    off, ids = 0, []
    for raw in (ROOT / rel).read_bytes().splitlines(keepends=True):
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        r = p.parse(RawLine(rel, rel, text, "fp", off))
        off += len(raw)
        if isinstance(r, Event):
            ids.append(r.id)
    return ids


def _export_ids(rel: str) -> list[str]:
    return [r.id for r in harbor_audit.parse_file(str(ROOT / rel), "fp") if isinstance(r, Event)]


def test_sample_event_ids_are_unique_and_stable() -> None:
    for rel in _samples():
        run = _export_ids if rel.endswith(EXPORT_SUFFIXES) else _log_ids
        ids, again = run(rel), run(rel)
        assert ids == again, rel
        assert len(ids) == len(set(ids)), rel
