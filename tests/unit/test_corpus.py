"""Real lines from public issue threads (sample_logs/corpus/), read with no hints.

Each line has its expected outcome in ``expected.jsonl`` (written from the thread, not
from the parser): a countable record, known noise of some kind, or the continuation
of a multi-line record. The parser must recognize every line it can (the issue's target
is at most 1% unrecognized), and no line the corpus calls noise may be counted as a
request.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from regwatch.config import Config
from regwatch.events import Dropped, Event, RawLine, Tally
from regwatch.formats import host_calibration, make_parser
from regwatch.pipeline import ingest
from regwatch.quarantine import Quarantine
from regwatch.stores.embedded import EmbeddedStore

CORPUS = Path(__file__).resolve().parents[2] / "sample_logs" / "corpus"
FILES = sorted(CORPUS.glob("*.log"))


def _expected() -> dict[tuple[str, int], dict]:
    out = {}
    for line in (CORPUS / "expected.jsonl").read_text().splitlines():
        if line.strip():
            d = json.loads(line)
            out[(d["file"], d["line"])] = d
    return out


def _parse(path: Path) -> list[tuple[int, str, Event | Dropped]]:
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    parser = make_parser("auto", Config(), fallback_ts=mtime, calibration=host_calibration(str(path)))
    out, offset = [], 0
    for n, raw in enumerate(path.read_bytes().splitlines(keepends=True), 1):
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        out.append((n, text, parser.parse(RawLine(str(path), str(path), text, "fp", offset))))
        offset += len(raw)
    return out


def test_corpus_is_large_and_every_line_has_an_expectation_and_a_source() -> None:
    exp = _expected()
    provenance = (CORPUS / "PROVENANCE.md").read_text()
    lines = 0
    for f in FILES:
        assert f.name in provenance, f"{f.name} is not credited in PROVENANCE.md"
        n = len(f.read_bytes().splitlines())
        lines += n
        for i in range(1, n + 1):
            assert (f.name, i) in exp, f"{f.name}:{i} has no expected outcome"
    threads = {f.name.rsplit("-", 1)[0] for f in FILES}
    assert lines >= 300 and len(FILES) >= 30 and len(threads) >= 25


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_noise_line_is_counted_and_no_record_is_lost(path: Path) -> None:
    exp = _expected()
    for n, text, out in _parse(path):
        want = exp[(path.name, n)]["expect"]
        if want == "event":
            assert not (isinstance(out, Dropped) and not out.intentional), f"{path.name}:{n} lost: {text[:120]}"
        elif isinstance(out, Event):
            assert out.tally in (Tally.NONE.value, Tally.TLS_ERROR.value), f"{path.name}:{n} counted: {text[:120]}"


def test_at_most_one_percent_unrecognized_through_the_ingest(tmp_path: Path) -> None:
    store = EmbeddedStore(str(tmp_path / "db"))
    stats = ingest([str(f) for f in FILES], store, quarantine=Quarantine(str(tmp_path / "q")))
    unrecognized = sum(v for k, v in stats.dropped.items() if k in ("unparsable", "bad_field"))
    assert stats.lines >= 300
    assert unrecognized / stats.lines <= 0.01, (unrecognized, stats.lines, stats.dropped)
    assert stats.events > 0 and stats.wrappers  # the corpus holds wrapped lines
