"""For any split of a real log from sample_logs/ into reads, with restarts between reads
(a new StreamIngestor that re-reads from the offsets it said were safe), the store ends
with the same event ids and the same summary as a one-shot ``ingest`` of the file.

The logs are found by walking sample_logs/ (no per-file format hints): every ``*.log``
of the Distribution and Harbor samples.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwatch.pipeline import ingest
from regwatch.sources.files import file_info
from regwatch.sources.tail import Chunk
from regwatch.stores.base import Query
from regwatch.stores.embedded import EmbeddedStore
from regwatch.stream import StreamIngestor
from regwatch.summary import summarize

ROOT = Path(__file__).resolve().parents[2]
LOGS = sorted(
    p for d in ("distribution", "harbor", "harbor/real") for p in (ROOT / "sample_logs" / d).glob("*.log") if p.stat().st_size
)
_ONE_SHOT: dict[Path, tuple[list[str], dict[str, int]]] = {}


def _view(store: EmbeddedStore) -> tuple[list[str], dict[str, int]]:
    return sorted(e.id for e in store.search(Query())), {k: v for k, v in summarize(store, Query()).items() if isinstance(v, int)}


def _one_shot(path: Path) -> tuple[list[str], dict[str, int]]:
    if path not in _ONE_SHOT:
        d = Path(tempfile.mkdtemp(prefix="regwatch-split-"))
        try:
            store = EmbeddedStore(d)
            ingest([str(path)], store)
            _ONE_SHOT[path] = _view(store)
            store.close()
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return _ONE_SHOT[path]


def _draw_reads(data: st.DataObject, least: int, most: int) -> tuple[Path, bytes, Any, list[int]]:
    """A sample log, its bytes and fingerprint, and the ends of between ``least`` and
    ``most`` reads (line ends), the last at the end of the file."""
    path = data.draw(st.sampled_from(LOGS), label="log")
    raw = path.read_bytes()
    fp = file_info(str(path)).fingerprint
    ends = [i + 1 for i, b in enumerate(raw) if b == 0x0A]
    if not raw.endswith(b"\n"):
        ends.append(len(raw))
    # cut points spread over the whole file (hypothesis' own choices favour its start)
    rnd = data.draw(st.randoms(use_true_random=False), label="rnd")
    k = data.draw(st.integers(min_value=least, max_value=min(most, len(ends))), label="reads")
    return path, raw, fp, sorted(set(rnd.sample(ends, k)) | {ends[-1]})


def _finish(ing: StreamIngestor, store: EmbeddedStore, path: Path, raw: bytes, fp: Any, pos: int, t: float) -> tuple[list[str], dict[str, int]]:
    """Feed the rest of the file, settle, write; the store's ids and summary."""
    if pos < len(raw):
        ing.feed([Chunk(fp, str(path), pos, len(raw), raw[pos:])], now=t)
    ing.settle()
    ing.flush(now=t + 1.0)
    assert ing.safe_positions().get(fp, pos) == len(raw)
    got = _view(store)
    store.close()
    return got


def _assert_like_one_shot(path: Path, got: tuple[list[str], dict[str, int]]) -> None:
    want = _one_shot(path)
    assert got[1] == want[1], path.name
    assert got[0] == want[0], path.name


def test_the_walk_finds_logs_of_both_kinds() -> None:
    names = {p.parent.name for p in LOGS}
    assert {"distribution", "harbor", "real"} <= names and len(LOGS) >= 10


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_split_into_reads_and_restarts_counts_like_one_read(data: st.DataObject) -> None:
    path, raw, fp, cuts = _draw_reads(data, 0, 12)
    restarts = data.draw(st.sets(st.integers(min_value=0, max_value=len(cuts) - 1), max_size=4), label="restarts")
    d = Path(tempfile.mkdtemp(prefix="regwatch-split-"))
    try:
        store = EmbeddedStore(d)
        ing = StreamIngestor(store, idle_after=1e9)
        pos = 0
        for i, cut in enumerate(cuts):
            if cut > pos:
                ing.feed([Chunk(fp, str(path), pos, cut, raw[pos:cut])], now=float(i))
                ing.flush(now=float(i))
                pos = cut
            if i in restarts:
                ing.close(now=float(i))
                # a new process: it knows only the committed offset, and reads again from there
                pos = ing.safe_positions().get(fp, 0)
                ing = StreamIngestor(store, idle_after=1e9)
        got = _finish(ing, store, path, raw, fp, pos, 99.0)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    _assert_like_one_shot(path, got)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_quiet_gaps_between_reads_count_like_one_read(data: st.DataObject) -> None:
    """A lineage quiet for ``idle_after`` is settled (its records written); when it goes
    on, the held lines are read again, so a request whose access line came after the
    settle, or a pull whose DELETE came after it, is counted as in one read. Gaps stay
    under LOOKUP_WINDOW (a live registry writes a GET and its DELETE within it)."""
    path, raw, fp, cuts = _draw_reads(data, 1, 40)
    gaps = data.draw(st.lists(st.sampled_from([0.0, 1.5, 4.0, 9.0]), min_size=len(cuts), max_size=len(cuts)), label="gaps")
    restarts = data.draw(st.sets(st.integers(min_value=0, max_value=len(cuts) - 1), max_size=2), label="restarts")
    d = Path(tempfile.mkdtemp(prefix="regwatch-split-"))
    try:
        store = EmbeddedStore(d)
        ing = StreamIngestor(store, idle_after=1.0)
        pos, t = 0, 0.0
        for i, cut in enumerate(cuts):
            if cut > pos:
                ing.feed([Chunk(fp, str(path), pos, cut, raw[pos:cut])], now=t)
                ing.flush(now=t)
                pos = cut
            if gaps[i]:
                t += gaps[i]
                ing.feed([], now=t)  # a poll that found nothing
                ing.flush(now=t)
            t += 0.01
            if i in restarts:
                ing.close(now=t)
                pos = ing.safe_positions().get(fp, 0)
                ing = StreamIngestor(store, idle_after=1.0)
        got = _finish(ing, store, path, raw, fp, pos, t)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    _assert_like_one_shot(path, got)


def test_a_bad_format_fails_before_any_line() -> None:
    from regwatch.errors import UnknownFormat

    with pytest.raises(UnknownFormat):
        StreamIngestor(EmbeddedStore(Path(tempfile.mkdtemp())), fmt="no-such-format")


def _lookup_cut(raw: bytes) -> int:
    """The offset just after the access line of the manifest GET that precedes a DELETE
    (the GET that a delete by tag makes first)."""
    lines = raw.splitlines(keepends=True)
    delete = next(i for i, l in enumerate(lines) if l.startswith(b"127.0.0.1") and b'"DELETE /v2/' in l)
    get = max(i for i in range(delete) if lines[i].startswith(b"127.0.0.1") and b'"GET /v2/' in lines[i] and b"/manifests/" in lines[i])
    return sum(len(l) for l in lines[: get + 1])


def test_a_settled_pull_waits_for_its_delete_and_then_lets_the_checkpoint_go(tmp_path: Path) -> None:
    path = ROOT / "sample_logs" / "distribution" / "registry-text.log"
    raw = path.read_bytes()
    fp = file_info(str(path)).fingerprint
    cut = _lookup_cut(raw)
    want = _one_shot(path)

    # quiet for 3 s after the GET: settled, the GET's pull held and the checkpoint before it
    store = EmbeddedStore(tmp_path / "a")
    ing = StreamIngestor(store, idle_after=1.0)
    ing.feed([Chunk(fp, str(path), 0, cut, raw[:cut])], now=0.0)
    ing.flush(now=0.0)
    ing.feed([], now=3.0)
    ing.flush(now=3.0)
    assert ing.held() == 1
    assert ing.safe_positions()[fp] < cut
    stored = {e.id for e in store.search(Query())}
    # then the DELETE: the GET is a delete lookup, as in one read
    ing.feed([Chunk(fp, str(path), cut, len(raw), raw[cut:])], now=4.0)
    ing.settle()
    ing.flush(now=5.0)
    assert stored < set(want[0])
    assert _view(store) == want

    # quiet for 11 s instead: the pull is written and the checkpoint passes it
    store2 = EmbeddedStore(tmp_path / "b")
    ing = StreamIngestor(store2, idle_after=1.0)
    ing.feed([Chunk(fp, str(path), 0, cut, raw[:cut])], now=0.0)
    ing.flush(now=0.0)
    for t in (2.0, 11.0):
        ing.feed([], now=t)
        ing.flush(now=t)
    assert ing.held() == 0
    assert ing.safe_positions()[fp] == cut
    one = EmbeddedStore(tmp_path / "c")
    part = tmp_path / "part.log"
    part.write_bytes(raw[:cut])
    ingest([str(part)], one)
    assert _view(store2)[1] == _view(one)[1]
