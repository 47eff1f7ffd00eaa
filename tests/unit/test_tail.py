"""The tailer (regwatch/sources/tail.py) against real files: appends, rename rotation,
copytruncate with a plain and a gzipped copy, deletion, new files, partial lines,
unreadable files, globs that match nothing, start_at end, restarts from the checkpoint,
and a state machine that mixes all of them."""

from __future__ import annotations

import gzip
import os
import shutil
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from regwatch.sources.checkpoint import FileCheckpoint
from regwatch.sources.tail import LOST_AFTER, Chunk, Problem, TailConfig, Tailer


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def line(i: int, tag: str = "info") -> bytes:
    """A registry-style line, unique per ``i`` (its first line settles a file's fingerprint)."""
    return (
        f'time="2026-12-06T10:{i // 60 % 60:02d}:{i % 60:02d}.{i:09d}Z" level={tag} msg="line {i}" '
        f"instance.id=90d585c5 service=registry\n"
    ).encode()


def lines(a: int, b: int) -> bytes:
    return b"".join(line(i) for i in range(a, b))


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def make(tmp_path: Path, *globs: str, clock: Clock | None = None, **kw: object) -> Tailer:
    cfg = TailConfig(tuple(str(tmp_path / g) for g in globs), **kw)  # type: ignore[arg-type]
    return Tailer(cfg, tmp_path / "state" / "tail.json", clock=clock or Clock())


def take(t: Tailer, polls: int = LOST_AFTER + 1) -> list[Chunk]:
    """Poll until ``polls`` polls in a row return nothing; commit each poll's chunks.
    (A family waits while one of its lineages is missing, until it is dropped after
    LOST_AFTER polls: the default polls past that.)"""
    out: list[Chunk] = []
    empty = 0
    while empty < polls:
        got = t.poll()
        if not got:
            empty += 1
            continue
        empty = 0
        out.extend(got)
        t.commit_chunks(got)
    return out


def data(chunks: list[Chunk]) -> bytes:
    return b"".join(c.data for c in chunks)


def test_appends_are_read_as_whole_lines_with_their_offsets(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_bytes(lines(0, 3))
    t = make(tmp_path, "registry.log")
    got = take(t)
    assert data(got) == lines(0, 3)
    assert got[0].start == 0 and got[-1].end == len(lines(0, 3))
    append(log, lines(3, 5))
    more = take(t)
    assert data(more) == lines(3, 5)
    assert more[0].start == len(lines(0, 3))
    assert [off for c in got + more for off, _ in c.lines()] == [len(lines(0, i)) for i in range(5)]
    fp = got[0].fingerprint
    assert t.positions() == {fp: (str(log), len(lines(0, 5)))}
    assert all(c.fingerprint == fp for c in more)


def test_rename_rotation_reads_the_renamed_file_to_its_end_then_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_bytes(lines(0, 3))
    t = make(tmp_path, "registry.log")
    assert data(take(t)) == lines(0, 3)
    writer = open(log, "ab")  # noqa: SIM115 - the registry's own fd, still open across the rename
    writer.write(lines(3, 5))
    writer.flush()
    os.rename(log, tmp_path / "registry.log.1")
    writer.write(lines(5, 6))  # written after the rename, before the registry reopens
    writer.flush()
    log.write_bytes(lines(100, 102))
    writer.write(lines(6, 7))
    writer.close()
    got = take(t)
    assert data(got) == lines(3, 7) + lines(100, 102)
    old, new = got[0].fingerprint, got[-1].fingerprint
    assert old != new and new in t.positions()


def test_a_renamed_file_deleted_before_the_poll_is_drained_through_its_fd(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_bytes(lines(0, 2))
    t = make(tmp_path, "registry.log", close_inactive=1e9)
    take(t)
    append(log, lines(2, 4))
    os.rename(log, tmp_path / "registry.log.1")
    os.unlink(tmp_path / "registry.log.1")
    log.write_bytes(lines(50, 51))
    assert data(take(t)) == lines(2, 4) + lines(50, 51)
    assert t.open_files() == 1  # the deleted file was closed once read to its end
    assert take(t) == []
    assert len(t.positions()) == 1  # its lineage dropped after LOST_AFTER polls without files


@pytest.mark.parametrize("compress", [False, True], ids=["copy .1", "copy .1.gz"])
def test_copytruncate_drains_the_copy_from_the_saved_offset_first(tmp_path: Path, compress: bool) -> None:
    log = tmp_path / "registry.log"
    log.write_bytes(lines(0, 3))
    t = make(tmp_path, "registry.log")
    first = take(t)
    append(log, lines(3, 6))  # not read yet when logrotate copies
    if compress:
        with open(log, "rb") as src, gzip.open(tmp_path / "registry.log.1.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:
        shutil.copyfile(log, tmp_path / "registry.log.1")
    os.truncate(log, 0)
    append(log, lines(200, 204))  # grown again past the saved offset before the poll
    got = take(t)
    assert data(got) == lines(3, 6) + lines(200, 204)
    assert got[0].fingerprint == first[0].fingerprint and got[0].start == len(lines(0, 3))
    assert got[0].path.endswith(".1.gz" if compress else ".1")
    assert got[-1].fingerprint != first[0].fingerprint and got[-1].path == str(log)


def test_copytruncate_while_the_tailer_is_down_is_drained_after_restart(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_bytes(lines(0, 3))
    t = make(tmp_path, "registry.log")
    take(t)
    t.close()
    append(log, lines(3, 5))
    shutil.copyfile(log, tmp_path / "registry.log.1")
    os.truncate(log, 0)
    append(log, lines(300, 302))
    with open(tmp_path / "registry.log.1", "rb") as src, gzip.open(tmp_path / "registry.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(tmp_path / "registry.log.1")
    t2 = make(tmp_path, "registry.log")
    assert data(take(t2)) == lines(3, 5) + lines(300, 302)


def test_a_gzip_file_matched_by_the_glob_is_read_with_decompressed_offsets(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "old.log.gz", "wb") as fh:
        fh.write(lines(0, 50))
    t = make(tmp_path, "*.log.gz", max_bytes=1000)
    got = take(t)
    assert data(got) == lines(0, 50)
    assert got[-1].end == len(lines(0, 50))
    assert all(b - a <= 1000 for a, b in ((c.start, c.end) for c in got))


def test_a_new_file_matching_the_glob_is_read_from_its_start(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(lines(0, 2))
    t = make(tmp_path, "*.log", start_at="end")
    assert take(t) == []
    (tmp_path / "b.log").write_bytes(lines(10, 13))
    append(tmp_path / "a.log", lines(2, 3))
    got = take(t)
    assert sorted(c.data for c in got) == sorted([lines(2, 3), lines(10, 13)])


def test_a_deleted_file_is_dropped(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(lines(0, 2))
    (tmp_path / "b.log").write_bytes(lines(10, 12))
    t = make(tmp_path, "*.log")
    take(t)
    assert t.open_files() == 2 and len(t.positions()) == 2
    os.unlink(tmp_path / "b.log")
    take(t)
    assert t.open_files() == 1 and len(t.positions()) == 1
    assert t.problems == []  # read to its end before it went: nothing lost


def test_a_partial_last_line_is_held_until_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    full = line(1)
    log.write_bytes(line(0) + full[:20])
    clock = Clock()
    t = make(tmp_path, "registry.log", clock=clock, partial_timeout=5.0)
    assert data(take(t)) == line(0)
    clock.t += 4
    assert take(t) == []
    append(log, full[20:])
    got = take(t)
    assert data(got) == full and not got[0].partial


def test_a_partial_last_line_is_emitted_with_a_flag_after_the_timeout(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_bytes(line(0) + b"no newline yet")
    clock = Clock()
    t = make(tmp_path, "registry.log", clock=clock, partial_timeout=5.0)
    assert data(take(t)) == line(0)
    clock.t += 5.5
    got = take(t)
    assert len(got) == 1 and got[0].partial and got[0].data == b"no newline yet"
    append(log, b", now it has one\n" + line(2))
    rest = take(t)
    assert data(rest) == b", now it has one\n" + line(2) and not rest[0].partial


def test_a_file_too_short_to_fingerprint_is_waited_for(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_bytes(line(0)[:30])  # the first line is not complete: no fingerprint yet
    clock = Clock()
    t = make(tmp_path, "registry.log", clock=clock, partial_timeout=1.0)
    assert take(t) == []
    clock.t += 100
    assert take(t) == [] and t.positions() == {}
    append(log, line(0)[30:] + line(1))
    assert data(take(t)) == lines(0, 2)


def _unreadable_file(tmp_path: Path) -> Path:
    """A regular file whose open for reading fails with EACCES, also for root.

    Root bypasses mode bits (chmod 000 is readable by root), so as root this is a
    symlink to a write-only sysfs attribute, which the kernel refuses to open for
    reading for everyone (kernfs has no read method for it). As another user it is a
    plain file with mode 000."""
    if os.geteuid() != 0:
        p = tmp_path / "secret.log"
        p.write_bytes(lines(0, 2))
        p.chmod(0)
        return p
    for target in ("/sys/bus/pci/rescan", "/sys/kernel/mm/ksm/run_never", "/sys/power/wakeup_count"):
        try:
            st_ = os.stat(target)
            open(target, "rb").close()
        except PermissionError:
            if stat.S_ISREG(st_.st_mode):
                p = tmp_path / "secret.log"
                p.symlink_to(target)
                return p
        except OSError:
            continue
    pytest.skip("no file that root cannot open for reading on this host")


def test_an_unreadable_file_is_reported_once_and_the_others_are_read(tmp_path: Path) -> None:
    _unreadable_file(tmp_path)
    os.mkfifo(tmp_path / "pipe.log")  # not a regular file: reported, never opened
    (tmp_path / "good.log").write_bytes(lines(0, 3))
    seen: list[Problem] = []
    cfg = TailConfig((str(tmp_path / "*.log"),))
    t = Tailer(cfg, tmp_path / "state.json", on_problem=seen.append)
    assert data(take(t, polls=5)) == lines(0, 3)
    append(tmp_path / "good.log", lines(3, 4))
    assert data(take(t)) == lines(3, 4)
    kinds = sorted(p.kind for p in seen)
    assert kinds == ["not_regular", "unreadable"], seen
    assert "secret.log" in next(p.path for p in seen if p.kind == "unreadable")
    assert t.problems == seen


def test_a_glob_that_matches_nothing_warns_once_and_is_rechecked(tmp_path: Path) -> None:
    seen: list[Problem] = []
    cfg = TailConfig((str(tmp_path / "logs" / "*.log"),))
    gone: list[Problem] = []
    t = Tailer(cfg, tmp_path / "state.json", on_problem=seen.append, on_resolved=gone.append)
    assert take(t) == []
    assert [p.kind for p in seen] == ["no_match"]
    assert t.problems == seen and gone == []
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "registry.log").write_bytes(lines(0, 2))
    assert data(take(t)) == lines(0, 2)
    assert len(seen) == 1
    # once it matches, the problem is gone (and said so once)
    assert t.problems == [] and gone == seen


def test_start_at_end_skips_what_was_there_also_across_a_restart(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_bytes(lines(0, 5) + b"half a li")
    t = make(tmp_path, "registry.log", start_at="end")
    assert take(t) == []
    append(log, b"ne\n" + lines(5, 6))
    assert data(take(t)) == b"half a line\n" + lines(5, 6)  # from the last complete line
    t.close()
    t2 = make(tmp_path, "registry.log", start_at="end")
    append(log, lines(6, 7))
    assert data(take(t2)) == lines(6, 7)


def test_start_at_end_before_anything_new_is_kept_across_a_restart(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_bytes(lines(0, 5))
    make(tmp_path, "registry.log", start_at="end").poll()
    t2 = make(tmp_path, "registry.log", start_at="end")
    assert take(t2) == []
    # a file of the same glob that appeared while it was down is read from 0
    log2 = tmp_path / "registry.log"
    os.rename(log, tmp_path / "registry.log.1")
    log2.write_bytes(lines(40, 42))
    t3 = make(tmp_path, "registry.log", start_at="end")
    assert data(take(t3)) == lines(40, 42)


def test_a_restart_resumes_exactly_at_the_committed_offset(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_bytes(lines(0, 20))
    t = make(tmp_path, "registry.log", max_bytes=500)
    c1 = t.poll()
    t.commit_chunks(c1)
    c2 = t.poll()  # read, never committed: the store did not take it
    assert c2 and c2[0].start == c1[-1].end
    ck = FileCheckpoint(tmp_path / "state" / "tail.json")
    assert next(iter(ck.load().values()))["offset"] == c1[-1].end
    t2 = make(tmp_path, "registry.log", max_bytes=500)
    got = take(t2)
    assert got[0].start == c1[-1].end
    assert data(c1) + data(got) == lines(0, 20)


def test_each_poll_is_bounded_and_commits_can_lag(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_bytes(lines(0, 200))
    t = make(tmp_path, "registry.log", max_bytes=1000, max_uncommitted=3000)
    polled: list[Chunk] = []
    for _ in range(10):
        got = t.poll()
        assert sum(len(c.data) for c in got) <= 1000
        polled.extend(got)
    assert 2000 <= t.uncommitted() < 4000  # stops reading once 3000 bytes wait for a commit
    t.commit_chunks(polled)
    polled.extend(take(t))
    assert data(polled) == lines(0, 200)


def test_the_checkpoint_keeps_its_format_and_the_tailer_globs(tmp_path: Path) -> None:
    (tmp_path / "registry.log").write_bytes(lines(0, 2))
    t = make(tmp_path, "registry.log")
    take(t)
    ck = FileCheckpoint(tmp_path / "state" / "tail.json")
    (entry,) = ck.load().values()
    assert set(entry) == {"offset", "path", "anchor"}
    assert list(ck.meta()["tail_globs"]) == [str(tmp_path / "registry.log")]


# -- the state machine ---------------------------------------------------------------


class TailMachine(RuleBasedStateMachine):
    """A writer appends, rotates (rename or copytruncate), gzips and deletes rotated
    copies; a consumer polls, stores, commits, loses uncommitted chunks and restarts.
    In the end every line written is stored exactly once, in the order written."""

    @initialize(max_bytes=st.sampled_from([300, 2000, 1 << 20]))
    def setup(self, max_bytes: int) -> None:
        import tempfile

        self.dir = Path(tempfile.mkdtemp(prefix="tailsm-"))
        self.log = self.dir / "registry.log"
        self.log.touch()
        self.max_bytes = max_bytes
        self.seq = 0
        self.written: list[bytes] = []  # whole lines, in the order written
        self.pending = b""  # the part of a line written without its newline
        self.stored = bytearray()
        self.keys: set[tuple[str, int]] = set()
        self.rotated: list[Path] = []  # .1 (newest) first
        self.tailer = self._new_tailer()

    def _new_tailer(self) -> Tailer:
        cfg = TailConfig((str(self.log),), max_bytes=self.max_bytes, partial_timeout=1e9, close_inactive=1e9)
        return Tailer(cfg, self.dir / "state.json")

    def teardown(self) -> None:
        if not hasattr(self, "dir"):
            return
        try:
            self._finish_line()
            got = take(self.tailer)
            self._store(got)
            self.tailer.commit_chunks(got)
            assert bytes(self.stored) == b"".join(self.written)
        finally:
            self.tailer.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _store(self, chunks: list[Chunk]) -> None:
        for c in chunks:
            for off, _ in c.lines():
                key = (str(c.fingerprint), off)
                assert key not in self.keys, f"line at {key} stored twice"
                self.keys.add(key)
            self.stored += c.data

    def _finish_line(self) -> None:
        if self.pending:
            self.complete_partial()

    @rule(n=st.integers(1, 8))
    def append_lines(self, n: int) -> None:
        self._finish_line()
        out = b""
        for _ in range(n):
            out += line(self.seq)
            self.written.append(line(self.seq))
            self.seq += 1
        append(self.log, out)

    @rule(cut=st.integers(1, 40))
    def append_partial(self, cut: int) -> None:
        if self.pending:
            return
        full = line(self.seq)[:-1]
        self.seq += 1
        append(self.log, full[:cut])
        self.pending = full[:cut]
        self.rest = full[cut:]

    @precondition(lambda self: bool(self.pending))
    @rule()
    def complete_partial(self) -> None:
        append(self.log, self.rest + b"\n")
        self.written.append(self.pending + self.rest + b"\n")
        self.pending = b""

    def _shift(self) -> Path:
        """Make room for a new .1 (logrotate's rotate N: .1 → .2 …)."""
        for i in range(len(self.rotated), 0, -1):
            old = self.rotated[i - 1]
            new = self.dir / old.name.replace(f".log.{i}", f".log.{i + 1}")
            os.rename(old, new)
            self.rotated[i - 1] = new
        return self.dir / "registry.log.1"

    @rule()
    def rename_rotation(self) -> None:
        self._finish_line()
        target = self._shift()
        os.rename(self.log, target)
        self.rotated.insert(0, target)
        self.log.touch()

    @rule()
    def copytruncate(self) -> None:
        self._finish_line()
        target = self._shift()
        shutil.copyfile(self.log, target)
        os.truncate(self.log, 0)
        self.rotated.insert(0, target)

    @precondition(lambda self: bool(self.rotated) and not self.rotated[0].name.endswith(".gz"))
    @rule()
    def gzip_newest_copy(self) -> None:
        src = self.rotated[0]
        dst = src.with_name(src.name + ".gz")
        with open(src, "rb") as fi, gzip.open(dst, "wb") as fo:
            shutil.copyfileobj(fi, fo)
        os.unlink(src)
        self.rotated[0] = dst

    @precondition(lambda self: len(self.rotated) >= 2)
    @rule()
    def delete_oldest_copy(self) -> None:
        # logrotate deletes old copies; only after the tailer has read them (else lost)
        got = take(self.tailer)
        self._store(got)
        self.tailer.commit_chunks(got)
        os.unlink(self.rotated.pop())

    @rule()
    def poll_store_commit(self) -> None:
        got = self.tailer.poll()
        self._store(got)
        self.tailer.commit_chunks(got)

    @rule()
    def poll_then_crash_before_storing(self) -> None:
        self.tailer.poll()  # read, never stored nor committed
        self.tailer.close()
        self.tailer = self._new_tailer()

    @rule()
    def restart(self) -> None:
        self.tailer.close()
        self.tailer = self._new_tailer()


TailMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_tail_state_machine = TailMachine.TestCase
