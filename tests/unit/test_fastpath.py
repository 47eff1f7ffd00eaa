"""The columnar fast path and the per-line parser must give identical events.

Every line the fast path claims is parsed again by the per-line parser and compared
field by field; then whole files are ingested with the fast path on and off and the
stored events compared.
"""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import regwatch_testlib as lib

from regwatch.events import Event, RawLine
from regwatch.parsing import columnar
from regwatch.parsing.distribution import parse_body
from regwatch.pipeline import IngestOptions, ingest
from regwatch.redact import redact
from regwatch.stores.base import Query
from regwatch.stores.embedded import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "sample_logs" / "distribution").glob("registry-*.log"))
RENAME = {"user_v": "user", "bytes_w": "bytes"}
SKIP = {"seq", "kind", "mclass", "secret_hint"}


def _fast(lines: list[str]) -> tuple[list[dict], set[int]]:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    t = pa.table({"seq": pa.array(range(len(lines)), pa.int64()), "line": pa.array(lines)})
    obs, slow = columnar.fast_parse(con, t)
    return obs.to_pylist(), set(slow.column("seq").to_pylist())



def _mutate(lines: list[str], seed: int) -> list[str]:
    """Near-misses the fast path must either get right or leave alone."""
    rng = random.Random(seed)
    out = []
    for line in lines:
        r = rng.random()
        if r < 0.05:
            line = line.replace('\\"', '"')  # 2.7/Harbor builds: unescaped inner quotes
        elif r < 0.08:
            line = line.replace(" go.version=", " zz.extra=\"a b\" go.version=")
        elif r < 0.10:
            line = line.replace("http.request.uri=\"/v2/", "http.request.uri=\"/v2/%61")
        elif r < 0.12:
            line = line.replace("ms http.response.status", "m1.5s http.response.status")
        elif r < 0.14:
            line = line.replace("10.", "[::1]:", 1)
        elif r < 0.16:
            line = line[: rng.randint(0, len(line))]
        elif r < 0.18:
            line = line.replace("time=\"2026-", "time=\"20x6-")
        elif r < 0.20:
            line = line.replace("invalid authorization credential", "invalid token")
        out.append(line)
    return out


def _compare(lines: list[str]) -> tuple[int, int]:
    rows, slow = _fast(lines)
    claimed = 0
    for r in rows:
        text = lines[r["seq"]]
        ev = parse_body(text, RawLine("x", "x", text, "fp", 0))
        if r["kind"] == "noise":
            assert not isinstance(ev, Event), text
            continue
        assert isinstance(ev, Event), (text, ev)
        claimed += 1
        for k, v in r.items():
            if k in SKIP:
                continue
            name = RENAME.get(k, k)
            want = getattr(ev, name)
            if name == "bytes" and ev.tally == "blob_upload":
                continue  # the pipeline clears fast-path upload bytes (sizes come from _state)
            assert want == v, (name, want, v, text)
        if r["secret_hint"] is False:
            assert redact(text) == text, text
    return claimed, len(slow)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_fast_rows_equal_per_line_parser_on_samples(path: Path) -> None:
    lines = [l.rstrip("\r") for l in path.read_text().splitlines()]
    claimed, slow = _compare(lines)
    if "text" in path.name:
        assert claimed > len(lines) // 2  # the fast path is actually used
    else:
        assert claimed > 0  # access lines at least (JSON and TTY app lines go per line)


def test_fast_rows_equal_per_line_parser_on_synthetic_and_near_misses() -> None:
    lines = lib.synth_lines(6000, seed=3)
    claimed, slow = _compare(lines)
    assert claimed == len(lines) and slow == 0
    mutated = _mutate(lines, seed=5)
    claimed, slow = _compare(mutated)
    assert slow > 0 and claimed > 0


def test_secret_lines_are_left_to_redact() -> None:
    lines = lib.synth_lines(40, seed=1)
    k = next(i for i, l in enumerate(lines) if 'http.request.uri="/v2/' in l and "authorized request" in l)
    lines[k] = lines[k].replace('http.request.uri="/v2/', 'http.request.uri="/v2/x/manifests/1?token=abc&y=/v2/')
    j = next(i for i, l in enumerate(lines) if l.startswith("10.") and '"GET /v2/' in l)
    lines[j] = lines[j].replace('"GET /v2/', '"GET https://bob:hunter2@registry/v2/')
    rows, slow = _fast(lines)
    by_seq = {r["seq"]: r for r in rows}
    for i in (k, j):
        assert i in slow or by_seq[i]["secret_hint"], lines[i]
    assert any(r["secret_hint"] is False for r in rows)


def _stored(tmp: Path, path: Path, fmt: str | None) -> list[tuple]:
    store = EmbeddedStore(tmp)
    ingest([str(path)], store, options=IngestOptions(fmt=fmt))
    return sorted(
        (e.id, e.timestamp, e.action, e.tally, e.auth, e.repository, e.reference, e.digest, e.status,
         e.bytes, e.user, e.client_ip, e.user_agent, e.request_id, e.error_code, e.raw, e.log_offset)
        for e in store.search(Query())
    )


@pytest.mark.parametrize("name", ["synthetic", "mutated"])
def test_whole_file_same_events_with_and_without_fast_path(tmp_path: Path, name: str, monkeypatch) -> None:
    lines = lib.synth_lines(5000, seed=9)
    if name == "mutated":
        lines = _mutate(lines, seed=11)
    p = tmp_path / "r.log"
    p.write_text("\n".join(lines) + "\n")
    fast = _stored(tmp_path / "fast", p, None)
    # "distribution" forces the same family; turning the fast path off makes every line slow
    import regwatch.pipeline as pipeline

    empty = _empty()
    monkeypatch.setattr(pipeline.columnar, "fast_parse", lambda con, t: (empty, t.select(["seq"])))
    slow = _stored(tmp_path / "slow", p, None)
    assert len(fast) > 1000
    assert fast == slow


def _empty() -> pa.Table:
    con = duckdb.connect()
    t = pa.table({"seq": pa.array([], pa.int64()), "line": pa.array([], pa.string())})
    obs, _ = columnar.fast_parse(con, t)
    return obs
