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
