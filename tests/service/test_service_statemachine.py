"""A hypothesis state machine over the service, driven pass by pass (``Service.step``):
random appends of real registry lines, rename rotations, copytruncates, gzips of the
rotated copy, deletions of rotated copies that were read, clean restarts and crashes
(the service dropped without ``finish``: nothing past the last commit survives but the
files). The model is the list of lines written to each file lineage (a rename or a
copytruncate starts a new one; see docs/tailing.md). At the end the service catches up,
and its store must equal a one-shot ingest of those lineages as files (named as
logrotate names them, so one family): the same event ids, each once, and the same
summary, however the reads, restarts and crashes fell; and that summary must equal the
one of all the lines ingested as one file (a request cut by a rotation counts once).
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from regwatch.clock import FixedClock
from regwatch.config import config_from_dict
from regwatch.pipeline import ingest
from regwatch.sources.files import file_info
from regwatch.service.daemon import Service
from regwatch.stores.base import Query
from regwatch.stores.embedded import EmbeddedStore
from regwatch.summary import summarize

ROOT = Path(__file__).resolve().parents[2]
REAL = [l for l in (ROOT / "sample_logs" / "distribution" / "registry-text.log").read_text().splitlines() if l.strip()]
_APP = re.compile(r'^time="([^"]+)"')
_ACC = re.compile(r"\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2}) \+0000\]")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NOW = datetime(2026, 12, 7, tzinfo=timezone.utc)


def _shifted(line: str, hours: int) -> str:
    def app(m: re.Match[str]) -> str:
        t = datetime.fromisoformat(m.group(1)[:26].rstrip("Z"))
        return 'time="' + (t + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + '"'

    def acc(m: re.Match[str]) -> str:
        t = datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S")
        return "[" + (t + timedelta(hours=hours)).strftime("%d/%b/%Y:%H:%M:%S") + " +0000]"

    # request ids and upload uuids are unique in a real log: give each cycle its own
    line = _UUID.sub(lambda m: f"{hours:08x}" + m.group(0)[8:], line)
    return _ACC.sub(acc, _APP.sub(app, line))


def _summary(store: EmbeddedStore) -> dict[str, object]:
    return {k: v for k, v in summarize(store, Query()).items() if isinstance(v, int)}


class ServiceMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="regwatch-sm-"))
        self.logs = self.dir / "logs"
        self.logs.mkdir()
        self.log = self.logs / "registry.log"
        self.log.touch()
        self.db = self.dir / "db"
        self.state = self.dir / "state"
        self.config = config_from_dict(
            {
                "sources": [{"paths": [str(self.log)]}],
                "service": {"state_dir": str(self.state), "idle_flush": 3600.0, "poll_interval": 0.01},
            }
        )
        self.lineages: list[list[str]] = [[]]
        self.deleted = 0
        self.seq = 0
        self.store = EmbeddedStore(self.db)
        self.svc = self._start()

    def _start(self) -> Service:
        return Service(self.config, self.store, self.state, clock=FixedClock(NOW))

    def _line(self) -> str:
        s = _shifted(REAL[self.seq % len(REAL)], self.seq // len(REAL)) + "\n"
        self.seq += 1
        self.lineages[-1].append(s)
        return s

    def _rotated(self) -> list[tuple[int, Path]]:
        out = []
        for p in self.logs.iterdir():
            m = re.fullmatch(r"registry\.log\.(\d+)(\.gz)?", p.name)
            if m:
                out.append((int(m.group(1)), p))
        return sorted(out, reverse=True)

    def _shift(self) -> Path:
        for n, p in self._rotated():
            os.rename(p, p.with_name(p.name.replace(f".log.{n}", f".log.{n + 1}", 1)))
        return self.logs / "registry.log.1"

    def _read_all(self) -> None:
        """Pass until nothing more is read (held lines may stay unwritten): the read
        positions stand still for 5 passes. (A lineage's path is where it was last read,
        which a later rotation may have given to another file; anything left unread
        shows in the comparison at the end.)"""
        src = self.svc.sources[0]
        last, still = None, 0
        for _ in range(400):
            self.svc.step()
            now = src.tailer.read_positions()
            still = still + 1 if now == last else 0
            if still >= 5:
                return
            last = now
        raise AssertionError("the service kept reading for 400 passes")

    def _settle(self, keep_live: bool) -> None:
        """Finish the folders (of the rotated lineages only, with keep_live), then write and commit."""
        src = self.svc.sources[0]
        fps = [fp for fp, (path, _) in src.tailer.read_positions().items() if not (keep_live and path == str(self.log))]
        src.ingestor.settle(fps)
        self.svc.step()
        self.svc.step()

    @rule(n=st.integers(min_value=1, max_value=60))
    def append(self, n: int) -> None:
        with open(self.log, "a", encoding="utf-8") as fh:
            fh.write("".join(self._line() for _ in range(n)))

    @rule(n=st.integers(min_value=1, max_value=6))
    def steps(self, n: int) -> None:
        for _ in range(n):
            self.svc.step()

    @rule()
    def rename_rotation(self) -> None:
        os.rename(self.log, self._shift())
        self.log.touch()
        self.lineages.append([])

    @rule()
    def copytruncate(self) -> None:
        target = self._shift()
        shutil.copyfile(self.log, target)
        os.truncate(self.log, 0)
        self.lineages.append([])

    @precondition(lambda self: (self.logs / "registry.log.1").exists())
    @rule()
    def gzip_copy(self) -> None:
        src = self.logs / "registry.log.1"
        with open(src, "rb") as fi, gzip.open(str(src) + ".gz", "wb") as fo:
            shutil.copyfileobj(fi, fo)
        os.unlink(src)

    @precondition(lambda self: len(self._rotated()) >= 2)
    @rule()
    def delete_oldest_after_read(self) -> None:
        # as logrotate does it long after: once the rotated copy is read, stored and
        # committed (a line of it the family's folder still holds, waiting for the lines
        # after the rotation, keeps it: then it stays)
        self._read_all()
        self.svc.step()
        oldest = self._rotated()[0][1]
        size = len(gzip.decompress(oldest.read_bytes())) if oldest.suffix == ".gz" else oldest.stat().st_size
        src = self.svc.sources[0]
        fp = str(file_info(str(oldest)).fingerprint)
        committed = src.tailer.positions().get(fp)
        if committed is not None and committed[1] >= size:
            os.unlink(oldest)
            self.deleted += 1

    @rule()
    def restart(self) -> None:
        self.svc.finish()
        self.svc.close()
        self.svc = self._start()

    @rule()
    def crash(self) -> None:
        # no finish(): what was read and not committed is read again by the next service
        self.svc.close()
        self.svc = self._start()

    def teardown(self) -> None:
        try:
            if not hasattr(self, "svc"):
                return
            self._read_all()
            self._settle(keep_live=False)
            self.svc.finish()
            self.svc.close()
            files = self.dir / "lineages"
            files.mkdir()
            # the lineages as logrotate names them (oldest highest): one family, which
            # a one-shot ingest reads as one stream, as the service does
            kept = [lines for lines in self.lineages if lines]
            for i, lines in enumerate(kept):
                n = len(kept) - 1 - i
                name = "registry.log" if n == 0 else f"registry.log.{n}"
                (files / name).write_text("".join(lines), encoding="utf-8")
            one = EmbeddedStore(self.dir / "one")
            try:
                ingest([str(files)], one)
                ids = [e.id for e in self.store.search(Query())]
                assert len(ids) == len(set(ids)), "an event id is stored twice"
                assert sorted(ids) == sorted(e.id for e in one.search(Query()))
                assert _summary(self.store) == _summary(one)
            finally:
                one.close()
            # and the rotations cut nothing: the counts of every line in one file
            whole = self.dir / "whole" / "registry.log"
            whole.parent.mkdir()
            whole.write_text("".join("".join(lines) for lines in self.lineages), encoding="utf-8")
            single = EmbeddedStore(self.dir / "single")
            try:
                ingest([str(whole)], single)
                assert _summary(self.store) == _summary(single)
            finally:
                single.close()
        finally:
            if hasattr(self, "store"):
                self.store.close()
            shutil.rmtree(self.dir, ignore_errors=True)


ServiceMachine.TestCase.settings = settings(
    max_examples=12, stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck)
)
test_service_state_machine = pytest.mark.timeout(900)(ServiceMachine.TestCase)
