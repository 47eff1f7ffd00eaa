"""The per-line path gives the events of the default path: with ``REGWATCH_FASTPATH=0``
every line goes to the per-line parser, and a whole ingest of each sample log (and of a
synthetic registry log, in small blocks too) stores exactly the events of the default
ingest: every field, ids and raw lines included, and the same counts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import regwatch_testlib as lib

from regwatch import pipeline
from regwatch.sources import blocks
from regwatch.stores.base import Query
from regwatch.stores.embedded import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(p for p in (ROOT / "sample_logs" / "distribution").iterdir() if p.is_file() and "expected" not in p.name)
FILES += sorted(p for p in (ROOT / "sample_logs" / "harbor").rglob("*") if p.is_file() and "expected" not in p.name)
FILES = [p for p in FILES if p.suffix not in (".md", ".txt")]
COUNTS = ("lines", "events", "duplicates", "dropped", "ignored")


def _ingest(files: list[Path], db: Path, monkeypatch: pytest.MonkeyPatch, *, fast: bool, block_bytes: int | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with monkeypatch.context() as m:
        m.setattr(pipeline, "FASTPATH", fast)
        if block_bytes is not None:
            real = blocks.read_blocks
            m.setattr(pipeline, "read_blocks", lambda info, start=0: real(info, start, block_bytes))
        store = EmbeddedStore(str(db))
        stats = pipeline.ingest([str(f) for f in files], store).to_dict()
        rows = sorted(({f: getattr(e, f) for f in e.__slots__} for e in store.search(Query())), key=lambda r: r["id"])
    return {k: stats[k] for k in COUNTS}, rows


def _same(tmp_path: Path, files: list[Path], monkeypatch: pytest.MonkeyPatch, block_bytes: int | None = None) -> int:
    s0, r0 = _ingest(files, tmp_path / "default", monkeypatch, fast=True, block_bytes=block_bytes)
    s1, r1 = _ingest(files, tmp_path / "slow", monkeypatch, fast=False, block_bytes=block_bytes)
    assert s1 == s0
    assert [r["id"] for r in r1] == [r["id"] for r in r0]
    for a, b in zip(r0, r1):
        assert b == a
    return len(r0)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT / "sample_logs")) for p in FILES])
def test_each_sample_log_same_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    _same(tmp_path, [path], monkeypatch)


def test_all_sample_logs_in_one_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _same(tmp_path, FILES, monkeypatch) > 300


def test_synthetic_log_in_small_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "synth.log"
    log.write_text("\n".join(lib.synth_lines(6_000, 5)) + "\n")
    # requests, held pulls and carried app lines cross block ends on both paths
    assert _same(tmp_path, [log], monkeypatch, block_bytes=64 << 10) > 1_500


def test_switch_is_read_from_the_environment() -> None:
    code = "from regwatch import pipeline; print(pipeline.FASTPATH)"
    for value, want in (("0", "False"), ("1", "True"), (None, "True")):
        env = {k: v for k, v in os.environ.items() if k != "REGWATCH_FASTPATH"}
        if value is not None:
            env["REGWATCH_FASTPATH"] = value
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == want


def _harbor_stream(n: int) -> str:
    """Harbor's rsyslog lines of one host across a new year, its clock going from UTC+9 to
    UTC+10 half way: registry records (body times, which teach the parser the year and
    the host's offset), proxy lines (the prefix time only), registry noise, a repeated
    record and an octal escape."""
    from datetime import UTC, datetime, timedelta

    mons = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    t0 = datetime(2025, 12, 31, 14, 58, 0, tzinfo=UTC)  # 23:58 local
    out = []
    for i in range(n):
        t = t0 + timedelta(seconds=i)
        loc = t + timedelta(hours=9 if i < n // 2 else 10)
        pre = f"{mons[loc.month - 1]} {loc.day:2d} {loc:%H:%M:%S} 172.18.0.1"
        rid = f"{i:08d}-aaaa-4bbb-8ccc-{i:012d}"
        uri = f"/v2/lib/app{i % 7}/manifests/v{i % 3}"
        iso = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{i % 1000:03d}Z"
        clf = t.strftime("%d/%b/%Y:%H:%M:%S +0000")
        out.append(f'{pre} registry[21]: time="{iso}" level=info msg="response completed" go.version=go1.20 '
                   f'http.request.host=harbor.local http.request.id={rid} http.request.method=GET '
                   f'http.request.remoteaddr=10.0.0.{i % 250} http.request.uri="{uri}" '
                   f'http.request.useragent="docker/24.0.7" http.response.contenttype="application/json" '
                   f'http.response.duration=1.{i % 9}ms http.response.status=200 http.response.written={100 + i}')
        out.append(f'{pre} registry[21]: 10.0.0.{i % 250} - - [{clf}] "GET {uri} HTTP/1.1" 200 {100 + i} "" "docker/24.0.7"')
        out.append(f'{pre} proxy[7]: 10.0.0.{i % 250} - "GET {uri} HTTP/1.1" 200 {100 + i} "-" "docker/24.0.7" 0.002 0.002 .')
        if i % 11 == 0:
            out.append(f'{pre} registry[21]: time="{iso}" level=info msg="redis not configured" go.version=go1.20')
        if i % 17 == 0:
            out.append(f'{pre} registry[21]: message repeated 2 times: [ time="{iso}" level=info msg="purge"]')
        if i % 23 == 0:
            out.append(f'{pre} registry[21]: time="{iso}" level=info msg="tab#011inside" go.version=go1.20')
    return "\n".join(out) + "\n"


def test_harbor_rsyslog_registry_lines_in_small_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the block parser takes the registry lines of Harbor's rsyslog files; the per-line
    # parser still reads the proxy lines, whose year and offset the registry lines taught
    log = tmp_path / "harbor.log"
    log.write_text(_harbor_stream(400))
    for block in (1500, 16 << 10, None):
        assert _same(tmp_path / str(block), [log], monkeypatch, block_bytes=block) >= 800


def test_syslog_block_takes_only_plain_registry_lines() -> None:
    import pyarrow as pa

    from regwatch.parsing.harbor import strip_syslog_block

    lines = [
        'Jan  1 00:00:00 172.18.0.1 registry[21]: time="2026-01-01T00:00:00Z" level=info msg="x"',
        'Jan  1 00:00:00 172.18.0.1 registry[21]: 10.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "GET /v2/ HTTP/1.1" 401 87 "" "x"',
        'Jan  1 00:00:00 172.18.0.1 proxy[7]: 10.0.0.1 - "GET /v2/ HTTP/1.1" 401 87 "-" "x" 0.001 0.001 .',
        'Jan  1 00:00:00 172.18.0.1 registry[21]: message repeated 2 times: [ time="2026-01-01T00:00:00Z" level=info]',
        'Jan  1 00:00:00 172.18.0.1 registry[21]: time="2026-01-01T00:00:00Z" level=info msg="a#011b"',
        'Jan  1 00:00:00 172.18.0.1 harbor-registry-6c8d9f7b8-x2k4p: {"level":"info","msg":"x","time":"2026-01-01T00:00:00Z"}',
        'Foo  1 00:00:00 172.18.0.1 registry[21]: time="2026-01-01T00:00:00Z" level=info msg="x"',
    ]
    sb = strip_syslog_block(pa.array(lines, pa.string()), lines[0])
    assert sb is not None
    assert sb.taken.tolist() == [True, True, False, False, False, True, False]
    assert sb.bodies[0].as_py() == 'time="2026-01-01T00:00:00Z" level=info msg="x"'
    assert sb.bodies[2].as_py() == ""  # left to the per-line parser
    assert sb.host[1].as_py() == "172.18.0.1" and sb.prefix[1] == (1, 1, 0, 0, 0) and sb.harbor[5].as_py()
    assert strip_syslog_block(pa.array(lines[2:3], pa.string()), lines[2]) is None  # no registry line
