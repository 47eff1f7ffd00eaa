"""Reading log files, through ingest(): line endings, checkpoints, rotation, stable ids."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

import regwatch_testlib as lib
from regwatch.pipeline import IngestOptions, ingest
from regwatch.sources.checkpoint import FileCheckpoint
from regwatch.stores.base import Query

TEXT = lib.SAMPLES / "registry-text.log"
LINES = TEXT.read_bytes().splitlines(keepends=True)
T_PULL = datetime(2026, 11, 30, 1, 40, 37, tzinfo=timezone.utc)
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


def test_young_log_under_one_kilobyte_that_grows_counts_once(tmp_path: Path) -> None:
    first = lib.access_line("10.0.0.1", T_PULL, "GET", "/v2/a/manifests/1", 200, 419, "docker/24")
    p = tmp_path / "registry.log"
    p.write_text(first + "\n")
    assert p.stat().st_size < 1024
    store = lib.new_store(tmp_path / "db")
    cp = tmp_path / "checkpoint.json"
    assert ingest([str(p)], store, checkpoint=FileCheckpoint(cp)).events == 1
    with open(p, "a") as fh:
        for i in range(20):
            fh.write(lib.access_line("10.0.0.1", T_PULL, "GET", f"/v2/a/blobs/sha256:{i:064x}", 200, 100, "docker/24") + "\n")
    ingest([str(p)], store, checkpoint=FileCheckpoint(cp))
    s = lib.summary_of(store)
    assert (s["pulls"], s["bytes_pulled"]) == (1, 2000)


def _gc_run(day: int, deleted: list[str]) -> str:
    """`registry garbage-collect` output (NOTES §5): the marking block is the same on every run
    while the repositories do not change; only the deletions differ."""
    import hashlib

    def h(s: str) -> str:
        return hashlib.sha256(s.encode()).hexdigest()

    out = ""
    for r in ("library/alpine", "team-a/app", "team-b/api", "team-c/web", "team-d/db"):
        out += f"{r}\n{r}: marking manifest sha256:{h(r + 'm')} \n{r}: marking blob sha256:{h(r + '1')}\n{r}: marking blob sha256:{h(r + '2')}\n"
    out += f"\n15 blobs marked, {len(deleted)} blobs and 0 manifests eligible for deletion\n"
    for i, b in enumerate(deleted):
        d = h(b)
        out += f"blob eligible for deletion: sha256:{d}\n"
        out += lib.logrus_line(
            f"2026-12-0{day}T03:00:0{i}.5Z", "info", f"Deleting blob: /docker/registry/v2/blobs/sha256/{d[:2]}/{d}",
            {"go.version": "go1.19.8", "instance.id": "x", "service": "registry"},
        ) + "\n"
    return out


@pytest.mark.parametrize("with_checkpoint", [True, False])
def test_two_gc_runs_with_the_same_head_are_both_stored(tmp_path: Path, with_checkpoint: bool) -> None:
    a, b = tmp_path / "gc-day1.log", tmp_path / "gc-day2.log"
    a.write_text(_gc_run(1, ["x1", "x2"]))
    b.write_text(_gc_run(2, ["y1", "y2", "y3"]))
    assert a.read_bytes()[:1024] == b.read_bytes()[:1024]
    store = lib.new_store(tmp_path / "db")
    cp = FileCheckpoint(tmp_path / "checkpoint.json") if with_checkpoint else None
    ingest([str(a)], store, checkpoint=cp)
    ingest([str(b)], store, checkpoint=FileCheckpoint(tmp_path / "checkpoint.json") if with_checkpoint else None)
    evs = store.search(Query())
    assert sum(e.action == "gc_delete_blob" for e in evs) == 5
    assert sum(e.action == "gc_summary" for e in evs) == 2


def test_rest_of_a_rotated_log_is_read_from_its_gzipped_copy(tmp_path: Path) -> None:
    """logrotate copytruncate + gzip (domain.md §3): the part appended after the last ingest
    is drained from the rotated .gz, from the saved offset."""
    import gzip

    k = _first_boundary_after_pushes()
    live = tmp_path / "registry.log"
    live.write_bytes(b"".join(LINES[:k]))
    store = lib.new_store(tmp_path / "db")
    cp = tmp_path / "checkpoint.json"
    first = ingest([str(live)], store, checkpoint=FileCheckpoint(cp))
    rotated = tmp_path / "registry.log.1.gz"
    rotated.write_bytes(gzip.compress(b"".join(LINES)))
    live.write_bytes(b"")  # truncated by copytruncate
    second = ingest([str(rotated), str(live)], store, checkpoint=FileCheckpoint(cp))
    assert second.lines == len(LINES) - k
    assert second.duplicates == 0
    assert first.events + second.events == 112
    assert top(store) == EXP_TOP


# --- file identity (sources/files.py "File identity", sources/checkpoint.py) -------------


def test_fingerprint_is_settled_by_the_first_distinctive_line(tmp_path: Path) -> None:
    import gzip

    from regwatch.sources.files import file_info

    first = lib.access_line("10.0.0.1", T_PULL, "GET", "/v2/a/manifests/1", 200, 419, "docker/24") + "\n"
    p = tmp_path / "young.log"
    p.write_text(first)
    young = file_info(str(p)).fingerprint
    assert young.settled and young.length == len(first.encode())
    p.write_text(first + "".join(LINES[i].decode() for i in range(40)))
    assert file_info(str(p)).fingerprint == young  # growing does not change it
    z = tmp_path / "young.log.1.gz"
    z.write_bytes(gzip.compress(p.read_bytes()))
    assert file_info(str(z)).fingerprint == young  # nor does rotating or compressing
    # a header line without digits does not count: two CSV exports differ by their first row
    c1, c2 = tmp_path / "a.csv", tmp_path / "b.csv"
    c1.write_text("id,operation,username\n1,create,alice\n")
    c2.write_text("id,operation,username\n2,delete,bob\n")
    assert file_info(str(c1)).fingerprint != file_info(str(c2)).fingerprint
    # GC output is settled by its first timed record; before it, unsettled
    a, b = tmp_path / "gc1.log", tmp_path / "gc2.log"
    a.write_text(_gc_run(1, ["x1"]))
    b.write_text(_gc_run(2, ["x1"]))
    fa, fb = file_info(str(a)).fingerprint, file_info(str(b)).fingerprint
    assert fa.settled and fb.settled and fa != fb
    marking = _gc_run(1, [])
    a.write_text(marking[: marking.index("\n\n") + 1])
    assert not file_info(str(a)).fingerprint.settled


def _resume_lines(path: Path, tmp_path: Path, store, cp: Path) -> int:
    return ingest([str(path)], store, checkpoint=FileCheckpoint(cp)).lines


def test_other_file_with_the_same_fingerprint_is_read_from_the_start(tmp_path: Path) -> None:
    """Same first line, different content after it: one fingerprint (content alone cannot
    tell them apart there), but each file resumes only from its own checkpoint entry."""
    from regwatch.sources.files import file_info

    head = LINES[0]
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(b"".join(LINES[:120]))
    b.write_bytes(head + b"".join(LINES[200:260]))
    assert file_info(str(a)).fingerprint == file_info(str(b)).fingerprint
    store = lib.new_store(tmp_path / "db")
    cp = tmp_path / "checkpoint.json"
    assert ingest([str(a)], store, checkpoint=FileCheckpoint(cp)).lines == 120
    assert ingest([str(b)], store, checkpoint=FileCheckpoint(cp)).lines == 61  # not from a's offset
    # each keeps its own entry: reading either again reads at most its held tail
    again_a = ingest([str(a)], store, checkpoint=FileCheckpoint(cp))
    again_b = ingest([str(b)], store, checkpoint=FileCheckpoint(cp))
    assert again_a.lines < 120 and again_b.lines < 61
    assert again_a.events == again_b.events == 0
    entries = FileCheckpoint(cp).load()
    assert len(entries) == 2 and all("anchor" in e for e in entries.values())


def test_gc_output_read_before_it_settled_is_resumed_after_it_grew(tmp_path: Path) -> None:
    from regwatch.sources.files import file_info

    full = _gc_run(1, ["x1", "x2"])
    cut = full.index("\n\n") + 1  # the marking block only: nothing distinctive yet
    p = tmp_path / "gc.log"
    p.write_text(full[:cut])
    store = lib.new_store(tmp_path / "db")
    cp = tmp_path / "checkpoint.json"
    first = ingest([str(p)], store, checkpoint=FileCheckpoint(cp))
    assert first.lines == full[:cut].count("\n") and first.events == 0
    before = file_info(str(p)).fingerprint
    with open(p, "a") as fh:
        fh.write(full[cut:])
    after = file_info(str(p)).fingerprint
    assert not before.settled and after.settled and after != before
    second = ingest([str(p)], store, checkpoint=FileCheckpoint(cp))
    assert second.lines == full[cut:].count("\n")  # resumed, not read again from 0
    evs = store.search(Query())
    assert sorted(e.action for e in evs) == ["gc_delete_blob", "gc_delete_blob", "gc_summary"]
    assert ingest([str(p)], store, checkpoint=FileCheckpoint(cp)).events == 0


def test_checkpoint_written_before_file_identity_is_still_used(tmp_path: Path) -> None:
    """A version-1 entry keyed by the old fingerprint (hash of the first KiB), no anchor."""
    import hashlib
    import json

    k = _first_boundary_after_pushes()
    p = tmp_path / "registry.log"
    p.write_bytes(b"".join(LINES))
    old_fp = hashlib.blake2b(p.read_bytes()[:1024], digest_size=10).hexdigest()
    cp = tmp_path / "checkpoint.json"
    off = len(b"".join(LINES[:k]))
    cp.write_text(json.dumps({"version": 1, "files": {old_fp: {"offset": off, "path": str(p)}}}))
    store = lib.new_store(tmp_path / "db")
    assert ingest([str(p)], store, checkpoint=FileCheckpoint(cp)).lines == len(LINES) - k
    # from now on the file has an entry under its own fingerprint
    assert ingest([str(p)], store, checkpoint=FileCheckpoint(cp)).lines < len(LINES) - k


def test_gzip_file_committed_in_many_batches_resumes_at_its_last_commit(tmp_path: Path) -> None:
    import gzip

    from regwatch.sources import files

    z = tmp_path / "registry.log.1.gz"
    z.write_bytes(gzip.compress(b"".join(LINES)))
    plain = tmp_path / "plain.log"
    plain.write_bytes(b"".join(LINES))
    store = lib.new_store(tmp_path / "db")
    cp = tmp_path / "checkpoint.json"
    first = ingest([str(z)], store, checkpoint=FileCheckpoint(cp), options=IngestOptions(batch_size=7))
    assert first.events == 112
    (entry,) = FileCheckpoint(cp).load().values()
    assert entry["anchor"] == files.anchor(str(plain), False, entry["offset"])
    again = ingest([str(z)], store, checkpoint=FileCheckpoint(cp))
    assert again.events == 0 and again.lines < len(LINES)
    # the plain copy continues the same entry
    assert ingest([str(plain)], store, checkpoint=FileCheckpoint(cp)).events == 0
    assert len(FileCheckpoint(cp).load()) == 1
