"""Reading log files, through ingest(): line endings, checkpoints, rotation, stable ids."""

from __future__ import annotations

import shutil
from pathlib import Path

import regwatch_testlib as lib
from regwatch.pipeline import IngestOptions, ingest
from regwatch.sources.checkpoint import FileCheckpoint
from regwatch.stores.base import Query

TEXT = lib.SAMPLES / "registry-text.log"
LINES = TEXT.read_bytes().splitlines(keepends=True)
EXP_TOP = {k: v for k, v in lib.expected("registry-text").items() if k != "repositories"}


def top(store) -> dict:
    s = lib.summary_of(store)
    return {k: s[k] for k in EXP_TOP}


def test_crlf_file_counts_like_lf(tmp_path: Path) -> None:
    p = tmp_path / "crlf.log"
    p.write_bytes(b"".join(l.rstrip(b"\n") + b"\r\n" for l in LINES))
    stats, store = lib.ingest_files([p], tmp_path / "db")
    assert stats.lines == len(LINES) and stats.dropped == {}
    assert top(store) == EXP_TOP
    assert all(not e.raw.endswith("\r") and not (e.user_agent or "").endswith("\r") for e in store.search(Query()))


def test_missing_final_newline_and_blank_lines(tmp_path: Path) -> None:
    p = tmp_path / "x.log"
    body = b"".join(LINES)
    p.write_bytes(b"\n\n" + body.replace(LINES[50], LINES[50] + b"\n   \n").rstrip(b"\n"))
    stats, store = lib.ingest_files([p], tmp_path / "db")
    assert stats.dropped == {}
    assert stats.ignored.get("blank") == 4  # 2 leading, an empty and a spaces-only line
    assert stats.lines == len(LINES) + 4
    assert top(store) == EXP_TOP


def test_same_file_gives_the_same_event_ids(tmp_path: Path) -> None:
    a = tmp_path / "a.log"
    b = tmp_path / "sub" / "renamed.log"
    b.parent.mkdir()
    shutil.copy(TEXT, a)
    shutil.copy(TEXT, b)
    _, s1 = lib.ingest_files([a], tmp_path / "db1")
    _, s2 = lib.ingest_files([b], tmp_path / "db2")
    assert {e.id for e in s1.search(Query())} == {e.id for e in s2.search(Query())}


def _first_boundary_after_pushes() -> int:
    """Index just after the access line of the last manifest PUT: no request is in flight
    there and no pull is waiting for a possible DELETE."""
    last = max(i for i, l in enumerate(LINES) if l.startswith(b"127.0.0.1") and b'"PUT /v2/' in l and b"/manifests/" in l)
    return last + 1


def test_checkpoint_resumes_after_an_append(tmp_path: Path) -> None:
    k = _first_boundary_after_pushes()
    p = tmp_path / "registry.log"
    p.write_bytes(b"".join(LINES[:k]))
    store = lib.new_store(tmp_path / "db")
    cp = tmp_path / "checkpoint.json"
    first = ingest([str(p)], store, checkpoint=FileCheckpoint(cp))
    assert first.lines == k
    with open(p, "ab") as fh:
        fh.write(b"".join(LINES[k:]))
    second = ingest([str(p)], store, checkpoint=FileCheckpoint(cp))
    assert second.lines == len(LINES) - k  # only the appended lines are read
    assert second.duplicates == 0
    assert first.events + second.events == 112
    assert top(store) == EXP_TOP


def test_file_replaced_with_other_content_is_read_from_the_start(tmp_path: Path) -> None:
    p = tmp_path / "registry.log"
    shutil.copy(TEXT, p)
    store = lib.new_store(tmp_path / "db")
    cp = tmp_path / "checkpoint.json"
    assert ingest([str(p)], store, checkpoint=FileCheckpoint(cp)).events == 112
    shutil.copy(lib.SAMPLES / "registry-json.log", p)  # rotated away and a new log started
    again = ingest([str(p)], store, checkpoint=FileCheckpoint(cp))
    assert again.lines == 316 and again.events == 112


def test_from_start_ignores_the_checkpoint(tmp_path: Path) -> None:
    p = tmp_path / "registry.log"
    shutil.copy(TEXT, p)
    store = lib.new_store(tmp_path / "db")
    cp = tmp_path / "checkpoint.json"
    ingest([str(p)], store, checkpoint=FileCheckpoint(cp))
    s = ingest([str(p)], store, checkpoint=FileCheckpoint(cp), options=IngestOptions(from_start=True))
    assert (s.lines, s.events, s.duplicates) == (316, 0, 112)


def test_files_of_one_ingest_are_independent_streams(tmp_path: Path) -> None:
    """Two logs in one call: each file is correlated on its own, none leaks into the other."""
    stats, store = lib.ingest_files([TEXT, lib.SAMPLES / "registry-tty.log"], tmp_path / "db")
    assert stats.files == 2 and stats.events == 112 + 24
    got = lib.summary_of(store)
    tty = lib.expected("registry-tty")
    for k, v in EXP_TOP.items():
        assert got[k] == v + tty[k], k
