"""The service (`regwatch run`) SIGKILLed at random points while a writer process
appends real registry lines to a log and rotates it (rename and copytruncate, each
sometimes followed by a gzip of the copy).

The writer replays sample_logs/distribution/registry-text.log (a real registry's log:
app lines and access lines of real requests) in order, cycle after cycle, each cycle
shifted one hour later, so requests keep their lines together and reads, kills and
restarts cut them anywhere. At the end the store must hold exactly what a one-shot
`regwatch ingest` of the log files holds (the live log and its rotated copies, each one
file lineage, docs/tailing.md, read as one rotation family): the same event ids, none
twice, and the same `regwatch summary --json`; every line written is in those files;
and that summary equals the one of all the lines written ingested as one file (a
request cut by a rotation counts once).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_logs" / "distribution" / "registry-text.log"

WRITER = r'''
import gzip, os, random, re, shutil, sys, time
from datetime import datetime, timedelta, timezone
from pathlib import Path

d, sample, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
rng = random.Random(int(sys.argv[4]))
real = [l for l in sample.read_text().splitlines() if l.strip()]
log = d / "registry.log"
out = open(d / "written.txt", "w")
seq = 0
rotations = {"rename": 0, "copytruncate": 0, "gzip": 0}
APP = re.compile(r'^time="([^"]+)"')
ACC = re.compile(r'\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2}) \+0000\]')
UUID = re.compile(r'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}')

def shifted(line, hours):
    def app(m):
        t = datetime.fromisoformat(m.group(1)[:26].rstrip("Z").replace("Z", ""))
        return 'time="' + (t + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + '"'
    def acc(m):
        t = datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S")
        return "[" + (t + timedelta(hours=hours)).strftime("%d/%b/%Y:%H:%M:%S") + " +0000]"
    # request ids and upload uuids are unique in a real log: give each cycle its own
    line = UUID.sub(lambda m: f"{hours:08x}" + m.group(0)[8:], line)
    return ACC.sub(acc, APP.sub(app, line))

def next_line():
    global seq
    s = shifted(real[seq % len(real)], seq // len(real)) + "\n"
    seq += 1
    out.write(s)
    return s.encode()

def rotated():
    found = []
    for p in d.iterdir():
        m = re.fullmatch(r"registry\.log\.(\d+)(\.gz)?", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found, reverse=True)

def shift():
    for n, p in rotated():
        os.rename(p, p.with_name(p.name.replace(f".log.{n}", f".log.{n + 1}", 1)))
    return d / "registry.log.1"

def gzip_first():
    src = d / "registry.log.1"
    with open(src, "rb") as fi, gzip.open(str(src) + ".gz", "wb") as fo:
        shutil.copyfileobj(fi, fo)
    os.unlink(src)
    rotations["gzip"] += 1

fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
until_rotation = rng.randint(150, 500)
while not stop.exists():
    for _ in range(rng.randint(1, 20)):
        os.write(fd, next_line())
        until_rotation -= 1
    if until_rotation <= 0:
        until_rotation = rng.randint(150, 500)
        target = shift()
        if rng.random() < 0.5:
            os.rename(log, target)
            for _ in range(rng.randint(0, 3)):  # written to the old fd before the reopen
                os.write(fd, next_line())
            os.close(fd)
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            rotations["rename"] += 1
        else:
            shutil.copyfile(log, target)
            os.truncate(log, 0)
            rotations["copytruncate"] += 1
        if rng.random() < 0.5:
            gzip_first()
    time.sleep(0.005)
os.close(fd)
out.close()
print(rotations, flush=True)
'''


def _regwatch(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "regwatch", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _summary(db: Path, env: dict[str, str]) -> dict[str, object]:
    res = _regwatch("summary", "--db", str(db), "--json", env=env)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    return {k: v for k, v in doc.items() if isinstance(v, int)}


def _ids(db: Path) -> list[str]:
    from regwatch.stores.base import Query
    from regwatch.stores.embedded import EmbeddedStore

    store = EmbeddedStore(db)
    try:
        return [e.id for e in store.search(Query())]
    finally:
        store.close()


def _wait_caught_up(state: Path, log_dir: Path, deadline: float) -> None:
    from datetime import datetime, timezone

    from regwatch.service.status import read_status

    while time.monotonic() < deadline:
        st = read_status(state, datetime.now(timezone.utc))
        if st is not None and st.running and st.sources and all(s.lag_bytes == 0 for s in st.sources):
            return
        time.sleep(0.3)
    raise AssertionError(f"the service did not catch up: {read_status(state, datetime.now(timezone.utc))}")


@pytest.mark.timeout(600)
def test_sigkilled_service_stores_every_request_once(tmp_path: Path) -> None:
    rng = random.Random(20261207)
    logs, db, state, stop = tmp_path / "logs", tmp_path / "db", tmp_path / "state", tmp_path / "stop"
    logs.mkdir()
    cfg = tmp_path / "regwatch.yaml"
    cfg.write_text(
        f"store: {{kind: embedded, path: {db}}}\n"
        f"sources:\n  - paths: [{logs / 'registry.log'}]\n"
        f"service: {{state_dir: {state}, poll_interval: 0.02, idle_flush: 0.5}}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    (tmp_path / "writer.py").write_text(WRITER)
    writer = subprocess.Popen(
        [sys.executable, str(tmp_path / "writer.py"), str(logs), str(SAMPLE), str(stop), "11"], stdout=subprocess.PIPE, text=True
    )
    kills = 0
    try:
        while kills < 22:
            assert writer.poll() is None, "the writer died"
            svc = subprocess.Popen([sys.executable, "-m", "regwatch", "--config", str(cfg), "run"], env=env, stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.8, 3.0))  # imports take ~1 s: most kills land while it works
            svc.send_signal(signal.SIGKILL)
            svc.wait()
            kills += 1
            assert svc.stderr is not None
            err = svc.stderr.read().decode()
            assert "Traceback" not in err, err
    finally:
        stop.touch()
        rotations = writer.communicate(timeout=30)[0]
    assert writer.returncode == 0
    # a last, clean run: catch up, then SIGTERM (finish the batch, commit, exit 0)
    svc = subprocess.Popen([sys.executable, "-m", "regwatch", "--config", str(cfg), "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        _wait_caught_up(state, logs, time.monotonic() + 180)
    finally:
        svc.send_signal(signal.SIGTERM)
        _, err = svc.communicate(timeout=60)
    assert svc.returncode == 0, err
    assert "Traceback" not in err, err

    import gzip

    written = (logs / "written.txt").read_text().splitlines()
    on_disk = 0
    for p in logs.iterdir():
        if p.name.startswith("registry.log"):
            on_disk += len((gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()).splitlines())
    assert on_disk == len(written)
    one = tmp_path / "one"
    res = _regwatch("ingest", "--db", str(one), "--quiet", "--json", str(logs), env=env, timeout=300)
    assert res.returncode == 0, res.stderr

    ids = _ids(db)
    expected = _ids(one)
    print(f"\n{kills} kills, rotations {rotations.strip()}, {len(written)} lines written, "
          f"{len(ids)} events stored, {len(expected)} by a one-shot ingest of the files")
    assert len(ids) == len(set(ids)), "an event id is stored twice"
    assert sorted(ids) == sorted(expected)
    assert _summary(db, env) == _summary(one, env)
    # and no rotation cut a request: the counts of the same lines in one file
    whole = tmp_path / "whole" / "registry.log"
    whole.parent.mkdir()
    whole.write_text("".join(line + "\n" for line in written))
    single = tmp_path / "single"
    res = _regwatch("ingest", "--db", str(single), "--quiet", "--json", str(whole), env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert _summary(db, env) == _summary(single, env)
