"""Storage sampling on real temporary directories: statvfs against ``df``, the tree walk
against ``du`` and sums computed here, vanished and unreadable paths, the history, the
Harbor part against a real HTTP server, the config section and ``regwatch storage``."""

from __future__ import annotations

import base64
import http.server
import json
import math
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from regwatch.cli import main
from regwatch.clock import FixedClock
from regwatch.config import HarborStatsConfig, StorageConfig, StoragePathConfig, config_from_dict
from regwatch.errors import ConfigError
from regwatch.storage import KIND, StorageSampler, TreeWalker, history, statvfs_sample
from regwatch.storage.harbor import harbor_sample
from regwatch.storage.render import sparkline
from regwatch.stores.embedded import EmbeddedStore

UTC = timezone.utc
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def du_like(root: Path) -> tuple[int, int]:
    """Allocated bytes (files and directories, st_blocks * 512) and the file count."""
    total = os.lstat(root).st_blocks * 512
    files = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames:
            total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
            files += os.path.islink(os.path.join(dirpath, n))  # a link is an entry, not followed
        for n in filenames:
            total += os.lstat(os.path.join(dirpath, n)).st_blocks * 512
            files += 1
    return total, files


def make_registry(root: Path, blobs: int, size: int = 3000) -> None:
    """A registry-shaped tree: one directory per blob, a repository with link files."""
    for i in range(blobs):
        digest = f"{i:064x}"
        d = root / "docker/registry/v2/blobs/sha256" / digest[:2] / digest
        d.mkdir(parents=True, exist_ok=True)
        (d / "data").write_bytes(os.urandom(size + i))
        link = root / "docker/registry/v2/repositories/lib/app/_layers/sha256" / digest
        link.mkdir(parents=True, exist_ok=True)
        (link / "link").write_text(f"sha256:{digest}")


class Ticks:
    """A CPU clock that advances one unit per reading: a budget of 0 stops a step
    after its first check (every 64 directories)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


# -- statvfs and the tree walk --------------------------------------------------------


def test_statvfs_sample_agrees_with_df(tmp_path: Path) -> None:
    def df() -> tuple[int, int]:
        out = subprocess.run(["df", "-B1", "--output=used,size", str(tmp_path)], check=True,
                             capture_output=True, text=True).stdout.split()
        return int(out[-2]), int(out[-1])

    before = df()
    s = statvfs_sample(str(tmp_path), T0)
    after = df()
    assert s.method == "statvfs" and s.path == str(tmp_path) and s.timestamp == T0  # type: ignore[union-attr]
    assert s.capacity_bytes == before[1] == after[1]  # type: ignore[union-attr]
    # other processes write to the same filesystem meanwhile: within what they changed
    lo, hi = min(before[0], after[0]), max(before[0], after[0])
    assert lo - 2**20 <= s.used_bytes <= hi + 2**20  # type: ignore[union-attr]


def test_tree_walk_equals_du(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    make_registry(root, 40)
    (root / "docker/registry/v2/empty").mkdir()
    os.symlink("/etc", root / "docker/link-to-etc")  # not followed
    total = TreeWalker(str(root)).step(10.0)
    want_bytes, want_files = du_like(root)
    assert total is not None and (total.bytes, total.files) == (want_bytes, want_files)
    du = int(subprocess.run(["du", "-sB1", str(root)], check=True, capture_output=True, text=True).stdout.split()[0])
    assert total.bytes == du


def test_tree_walk_in_slices_and_incremental(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    make_registry(root, 150)
    w = TreeWalker(str(root), full_every=3, cpu=Ticks())
    steps = 0
    total = None
    while total is None:
        total = w.step(0.0)
        steps += 1
    assert steps > 3  # ~600 directories, 64 a step
    assert (total.bytes, total.files) == du_like(root)
    # a new blob (its directories are new, their parents' mtimes change)
    make_registry(root, 160)
    shutil.rmtree(root / "docker/registry/v2/blobs/sha256/00")  # garbage-collected
    total = w.step(100.0)  # reuses unchanged directories: one step now
    assert total is not None and (total.bytes, total.files) == du_like(root)
    # a file growing in place (an upload) does not change its directory's mtime: it is
    # picked up by the next full pass (every third)
    up = root / "docker/registry/v2/repositories/lib/app/_uploads/u1"
    up.mkdir(parents=True)
    (up / "data").write_bytes(b"x" * 5000)
    assert w.step(100.0) == TreeWalker(str(root)).step(100.0)
    with open(up / "data", "ab") as fh:
        fh.write(os.urandom(200_000))
    for _ in range(3):
        last = w.step(100.0)
    assert last is not None and (last.bytes, last.files) == du_like(root)


def test_tree_walk_entries_vanishing_mid_pass_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    make_registry(root, 100)
    w = TreeWalker(str(root), cpu=Ticks())
    assert w.step(0.0) is None
    shutil.rmtree(root / "docker/registry/v2/repositories")
    total = None
    while total is None:
        total = w.step(0.0)
    blobs_bytes, blobs_files = du_like(root)
    assert total.files == blobs_files and total.bytes <= blobs_bytes + 100 * 8192


# -- the sampler ----------------------------------------------------------------------


def test_sampler_writes_records_and_history_reads_them(tmp_path: Path) -> None:
    reg, other = tmp_path / "reg", tmp_path / "other"
    make_registry(reg, 10)
    other.mkdir()
    store = EmbeddedStore(tmp_path / "db")
    cfg = StorageConfig(300, (StoragePathConfig(str(reg)), StoragePathConfig(str(other), tree=False)))
    sampler = StorageSampler(cfg, store)
    for i in range(3):
        res = sampler.sample(T0 + timedelta(minutes=5 * i))
        assert not res.problems and res.written == 3
        assert sorted(s.method for s in res.samples) == ["statvfs", "statvfs", "tree"]
    # a retry of the same instant replaces, it does not add
    sampler.sample(T0 + timedelta(minutes=10))
    assert len(store.get_records(KIND)) == 9
    hist = history(store)
    assert sorted(hist) == [str(other), str(reg)]
    df = hist[str(reg)]
    assert isinstance(df.index, pd.DatetimeIndex) and str(df.index.tz) == "UTC"
    assert list(df.index) == [pd.Timestamp(T0 + timedelta(minutes=5 * i)) for i in range(3)]
    assert df["complete"].all() and (df["tree_bytes"] == du_like(reg)[0]).all()
    assert (df["files"] == 20).all()
    assert df["used_bytes"].dtype == "float64" and (df["used_bytes"] <= df["capacity_bytes"]).all()
    assert math.isnan(history(store, path=str(other))[str(other)]["tree_bytes"].iloc[0])
    # a window, and a path that is a prefix of another one is not mixed in
    got = history(store, path=str(reg), since=T0 + timedelta(minutes=5))
    assert list(got) == [str(reg)] and len(got[str(reg)]) == 2
    assert history(store, path=str(tmp_path / "re")) == {}


def test_a_vanished_path_is_a_problem_and_the_others_go_on(tmp_path: Path) -> None:
    keep, gone = tmp_path / "keep", tmp_path / "gone"
    keep.mkdir()
    make_registry(gone, 5)
    store = EmbeddedStore(tmp_path / "db")
    sampler = StorageSampler(StorageConfig(300, (StoragePathConfig(str(gone)), StoragePathConfig(str(keep)))), store)
    assert not sampler.sample(T0).problems
    shutil.rmtree(gone)
    res = sampler.sample(T0 + timedelta(minutes=5))
    assert [(p.path, p.reason) for p in res.problems] == [(str(gone), "vanished")]
    assert "\n" not in str(res.problems[0]) and str(gone) in str(res.problems[0])
    assert {s.path for s in res.samples} == {str(keep)}
    assert len(history(store)[str(keep)]) == 2 and len(history(store)[str(gone)]) == 1
    make_registry(gone, 2)  # it is back: sampled again, from a fresh pass
    res = sampler.sample(T0 + timedelta(minutes=10))
    assert not res.problems
    tree = [s for s in res.samples if s.method == "tree" and s.path == str(gone)]
    assert tree[0].complete and tree[0].used_bytes == du_like(gone)[0]


def test_a_fifo_path_cannot_be_read_and_the_others_go_on(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    ok = tmp_path / "ok"
    ok.mkdir()
    store = EmbeddedStore(tmp_path / "db")
    res = StorageSampler(StorageConfig(300, (StoragePathConfig(str(fifo)), StoragePathConfig(str(ok)))), store).sample(T0)
    assert [(p.path, p.reason) for p in res.problems] == [(str(fifo), "not_a_directory")]
    assert len(res.samples) == 2 and res.written == 2


def test_the_root_vanishing_mid_pass_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    make_registry(root, 100)
    store = EmbeddedStore(tmp_path / "db")
    # a 1 s interval gives the smallest budget: one check (64 directories) per sample
    sampler = StorageSampler(StorageConfig(1, (StoragePathConfig(str(root)),)), store)
    sampler._walkers[str(root)]._cpu = Ticks()  # a pass spans several samples
    first = sampler.sample(T0)
    tree = [s for s in first.samples if s.method == "tree"][0]
    assert not tree.complete and tree.used_bytes < du_like(root)[0]
    shutil.rmtree(root)
    res = sampler.sample(T0 + timedelta(minutes=5))
    assert [p.reason for p in res.problems] == ["vanished"]


# -- Harbor, against a real HTTP server -----------------------------------------------


@pytest.fixture
def harbor() -> Iterator[dict[str, Any]]:
    state: dict[str, Any] = {"auth": [], "quotas": [{"hard": {"storage": 10_000}, "used": {"storage": 10}},
                                                    {"hard": {"storage": 5_000}, "used": {"storage": 20}}]}
    good = "Basic " + base64.b64encode(b"admin:s3cret-pw").decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the http.server API names it so
            state["auth"].append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") != good:
                self.send_response(401)
                self.end_headers()
                return
            if self.path == "/api/v2.0/statistics":
                body: Any = {"total_storage_consumption": 4321, "total_project_count": 2}
            elif self.path.startswith("/api/v2.0/quotas"):
                body = state["quotas"] if "page=1&" in self.path else []
            else:
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{srv.server_address[1]}"
    yield state
    srv.shutdown()
    srv.server_close()


def test_harbor_statistics_and_quotas(harbor: dict[str, Any], tmp_path: Path) -> None:
    cfg = HarborStatsConfig(harbor["url"], "admin", "HARBOR_PW", timeout=5)
    s = harbor_sample(cfg, T0, {"HARBOR_PW": "s3cret-pw"})
    assert (s.path, s.used_bytes, s.capacity_bytes, s.method) == (f"harbor:{harbor['url']}", 4321, 15_000, "harbor")  # type: ignore[union-attr]
    harbor["quotas"].append({"hard": {"storage": -1}})  # an unlimited project: no capacity
    assert harbor_sample(cfg, T0, {"HARBOR_PW": "s3cret-pw"}).capacity_bytes is None  # type: ignore[union-attr]
    # through the sampler, into the store, without the password anywhere in it
    store = EmbeddedStore(tmp_path / "db")
    res = StorageSampler(StorageConfig(300, (), cfg), store, environ={"HARBOR_PW": "s3cret-pw"}).sample(T0)
    assert not res.problems and res.written == 1
    assert "s3cret" not in (tmp_path / "db").joinpath("records.json").read_text()
    for f in (tmp_path / "db" / "records").rglob("*.parquet"):
        assert b"s3cret" not in f.read_bytes()
    assert history(store)[f"harbor:{harbor['url']}"]["used_bytes"].iloc[0] == 4321


def test_harbor_wrong_password_or_none_is_a_problem_without_the_secret(harbor: dict[str, Any]) -> None:
    cfg = HarborStatsConfig(harbor["url"], "admin", "HARBOR_PW", timeout=5)
    p = harbor_sample(cfg, T0, {"HARBOR_PW": "wrong-pw"})
    assert p.reason == "harbor" and "401" in str(p) and "wrong-pw" not in str(p)  # type: ignore[union-attr]
    p = harbor_sample(cfg, T0, {})
    assert "HARBOR_PW" in str(p) and p.reason == "harbor"  # type: ignore[union-attr]
    dead = HarborStatsConfig("http://127.0.0.1:9", "admin", "HARBOR_PW", timeout=2)
    assert harbor_sample(dead, T0, {"HARBOR_PW": "x"}).reason == "harbor"  # type: ignore[union-attr]


# -- config, rendering, CLI -----------------------------------------------------------


def test_config_storage_section() -> None:
    cfg = config_from_dict({"storage": {"interval": "10m", "paths": [{"path": "/var/lib/registry/"},
                                                                     {"path": "/srv/b", "tree": False}],
                                        "harbor": {"url": "https://h.example/", "username": "admin",
                                                   "password_env": "HARBOR_PASSWORD"}}})
    assert cfg.storage == StorageConfig(600.0, (StoragePathConfig("/var/lib/registry"), StoragePathConfig("/srv/b", False)),
                                        HarborStatsConfig("https://h.example", "admin", "HARBOR_PASSWORD"))
    with pytest.raises(ConfigError) as info:
        config_from_dict({"storage": {"interval": "soon", "paths": [{"path": " "}, {"path": "/a", "tree": "yes"},
                                                                   {"path": "/a/"}, 3],
                                      "harbor": {"url": "ftp://h", "password": "hunter2"}, "extra": 1}})
    msg = str(info.value)
    for part in ("storage.interval", "storage.paths[0].path", "storage.paths[1].tree", "storage.paths[2].path",
                 "storage.paths[3]", "storage.harbor.url", "storage.harbor.password", "storage.harbor.username",
                 "storage.extra"):
        assert part in msg, part
    assert "hunter2" not in msg
    # a relative path is taken from the working directory (the example config's store dir)
    rel = config_from_dict({"storage": {"paths": [{"path": "regwatch-data"}]}})
    assert rel.storage is not None and rel.storage.paths[0].path == os.path.abspath("regwatch-data")


def test_sparkline() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([5, 5, 5]) == "▁▁▁"
    assert sparkline([0, float("nan"), 7]) == "▁ █"
    assert len(sparkline(list(range(1000)), width=40)) == 40
    assert sparkline([]) == ""


def test_cli_storage_table_sparkline_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = tmp_path / "reg"
    make_registry(reg, 5)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"storage:\n  interval: 5m\n  paths:\n    - path: {reg}\n    - path: {tmp_path / 'gone'}\n")
    db = tmp_path / "db"
    now = datetime.now(UTC)
    sizes = []
    for i in range(3):
        clock = FixedClock(now - timedelta(hours=2 - i))
        sizes.append(du_like(reg))
        assert main(["--config", str(cfg), "storage", "--db", str(db), "--sample-now"], clock=clock) == 0
        make_registry(reg, 6 + 3 * i)
    out, err = capsys.readouterr()
    assert "gone" in err and "does not exist" in err
    last = out.strip().split("\n\n")[-1]
    assert str(reg) in last and "3 samples" in last
    assert any(ch in last for ch in "▁▂▃▄▅▆▇█") and "used %" in last
    assert main(["storage", "--db", str(db), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and all(r["path"] == str(reg) for r in rows)
    # each --sample-now is a fresh process-like sampler: a whole pass of this small tree
    assert [(r["tree_bytes"], r["files"]) for r in rows] == sizes
    assert [r["complete"] for r in rows] == [True] * 3
    assert main(["storage", "--db", str(db), "--since", "90m", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["storage", "--db", str(db), "--path", "/elsewhere"]) == 0
    assert "no storage samples for path '/elsewhere'" in capsys.readouterr().out
    assert main(["storage", "--db", str(db), "--since", "whenever"]) == 2
    assert main(["storage", "--db", str(tmp_path / "nothing")]) == 4
    assert main(["storage", "--db", str(db), "--sample-now"]) == 2  # no storage.paths in a config


# -- records in the embedded store: readers in other processes -----------------------

_READER = r"""
import sys, time
from regwatch.stores.embedded import EmbeddedStore
s = EmbeddedStore(sys.argv[1])
seen, bad = 0, 0
deadline = time.time() + 60
while time.time() < deadline:
    recs = s.get_records("storage_sample")
    n = len(recs)
    # every put is 25 new keys plus a replacement of key 'last': whole puts only
    if n % 25 != 1 and n != 0:
        bad += 1
    if n and recs[-1].key != "last":
        bad += 1
    seen += 1
    if n == 25 * 40 + 1:
        break
print(seen, bad, n)
"""


def test_embedded_records_readers_in_other_processes_see_whole_puts(tmp_path: Path) -> None:
    import sys

    db = tmp_path / "db"
    store = EmbeddedStore(db)
    store.put_records([rec_last(0)])
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(db)], stdout=subprocess.PIPE, text=True)
    for j in range(40):  # over several merges (8 files a level)
        store.put_records([rec_sample(f"k{j:03d}-{i:02d}", j) for i in range(25)] + [rec_last(j + 1)])
    out, _ = reader.communicate(timeout=120)
    seen, bad, n = (int(x) for x in out.split())
    assert bad == 0 and n == 25 * 40 + 1 and seen >= 1
    assert len(store.get_records("storage_sample")) == 1001


def rec_sample(key: str, j: int) -> Any:
    from regwatch.stores.base import Record

    return Record("storage_sample", key, T0 + timedelta(minutes=j), {"j": j})


def rec_last(j: int) -> Any:
    from regwatch.stores.base import Record

    return Record("storage_sample", "last", T0 + timedelta(days=1, minutes=j), {"j": j})


def test_tree_walk_with_a_small_cache_still_counts_everything(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    make_registry(root, 60)
    w = TreeWalker(str(root), cache_dirs=10)
    for n in range(3):
        make_registry(root, 60 + 5 * n)
        total = w.step(100.0)
        assert total is not None and (total.bytes, total.files) == du_like(root)
    assert len(w._cache) == 10
