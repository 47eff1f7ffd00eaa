"""A log and its rotated copies are one stream: ``regwatch ingest`` groups files by
rotation name and folds them oldest first through one folder, so a request whose lines
a rotation cut in two (app lines at the end of ``registry.log.1``, the access line at
the start of ``registry.log``) is one record, with the counts of one file."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from regwatch.pipeline import ingest, safe_offsets
from regwatch.sources.checkpoint import FileCheckpoint
from regwatch.sources.files import file_info, rotation_families
from regwatch.stores.base import Query
from regwatch.stores.embedded import EmbeddedStore
from regwatch.summary import summarize

ROOT = Path(__file__).resolve().parents[2]
LOGS = [ROOT / "sample_logs" / "distribution" / n for n in ("registry-text.log", "registry-json.log")]


def test_files_group_into_families_oldest_first() -> None:
    paths = [
        "/l/registry.log",
        "/l/core.log",
        "/l/registry.log.1",
        "/l/registry.log.10.gz",
        "/l/registry.log.2.gz",
        "/m/registry.log.1",
        "/l/registry-json.log.gz",
        "/l/proxy.log-20240102.gz",
        "/l/proxy.log-20240101",
        "/l/proxy.log",
    ]
    assert rotation_families(paths) == [
        ["/l/registry.log.10.gz", "/l/registry.log.2.gz", "/l/registry.log.1", "/l/registry.log"],
        ["/l/core.log"],
        ["/m/registry.log.1"],
        ["/l/registry-json.log.gz"],
        ["/l/proxy.log-20240101", "/l/proxy.log-20240102.gz", "/l/proxy.log"],
    ]


def test_safe_offsets_stop_at_the_held_line_and_keep_later_files_at_their_start() -> None:
    read = [("a", 0, 900), ("b", 0, 500), ("c", 40, 300)]
    assert safe_offsets(read, None) == {"a": 900, "b": 500, "c": 300}
    assert safe_offsets(read, ("b", 120)) == {"a": 900, "b": 120, "c": 40}
    assert safe_offsets(read, ("a", 870)) == {"a": 870, "b": 0, "c": 40}
    assert safe_offsets(read, ("c", 10)) == {"a": 900, "b": 500, "c": 40}  # never before where it began


def _cuts(lines: list[bytes]) -> list[int]:
    """Line indexes where a request's app lines end and its access line starts."""
    out = []
    for k in range(1, len(lines)):
        app = lines[k - 1].startswith(b"time=") or lines[k - 1].startswith(b'{"')
        if app and b"response completed" in lines[k - 1] and not lines[k].startswith((b"time=", b'{"')):
            out.append(k)
    return out


def _view(store: EmbeddedStore) -> tuple[int, dict[str, int]]:
    s = {k: v for k, v in summarize(store, Query()).items() if isinstance(v, int)}
    return len(store.search(Query())), s


@pytest.mark.parametrize("use_native", [True, False], ids=["native", "duckdb"])
@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_a_request_cut_by_rotations_counts_as_in_one_file(tmp_path: Path, monkeypatch, log: Path, use_native: bool) -> None:
    monkeypatch.setenv("REGWATCH_NATIVE", "1" if use_native else "0")
    lines = log.read_bytes().splitlines(keepends=True)
    cuts = _cuts(lines)
    assert len(cuts) >= 2, "the sample has requests to cut"
    k1, k2 = cuts[len(cuts) // 3], cuts[2 * len(cuts) // 3]
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "registry.log.2.gz").write_bytes(gzip.compress(b"".join(lines[:k1])))
    (logs / "registry.log.1").write_bytes(b"".join(lines[k1:k2]))
    (logs / "registry.log").write_bytes(b"".join(lines[k2:]))
    whole = tmp_path / "whole.log"
    whole.write_bytes(b"".join(lines))

    one = EmbeddedStore(tmp_path / "one")
    ingest([str(whole)], one)
    want = _view(one)
    one.close()

    store = EmbeddedStore(tmp_path / "fam")
    cp = FileCheckpoint(str(tmp_path / "cp.json"))
    stats = ingest([str(logs)], store, checkpoint=cp)
    assert stats.files == 3
    assert _view(store) == want
    # every file committed to its end; a second run reads and stores nothing
    for name in ("registry.log.2.gz", "registry.log.1", "registry.log"):
        info = file_info(str(logs / name))
        size = len(gzip.decompress((logs / name).read_bytes())) if name.endswith(".gz") else info.size
        assert cp.offset(info.fingerprint) == size, name
    again = ingest([str(logs)], store, checkpoint=cp)
    assert again.events == 0 and again.duplicates == 0
    assert _view(store) == want
    store.close()


def test_each_file_of_a_family_keeps_its_own_event_ids(tmp_path: Path) -> None:
    """Ids are the line's own file's fingerprint and offset: the family's records are
    the same ids whichever files are read together (a record cut by the rotation takes
    the id of its final app line, in the older file)."""
    lines = LOGS[0].read_bytes().splitlines(keepends=True)
    k = _cuts(lines)[1]
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "registry.log.1").write_bytes(b"".join(lines[:k]))
    (logs / "registry.log").write_bytes(b"".join(lines[k:]))
    fam = EmbeddedStore(tmp_path / "fam")
    ingest([str(logs)], fam)
    ids = {e.id for e in fam.search(Query())}
    fam.close()
    old_key = file_info(str(logs / "registry.log.1")).fingerprint
    from regwatch.events import _source_key

    assert any(i.startswith(_source_key(str(old_key))) for i in ids)
    assert any(i.startswith(_source_key(str(file_info(str(logs / "registry.log")).fingerprint))) for i in ids)
