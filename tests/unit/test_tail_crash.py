"""The tail loop (``python -m regwatch.sources.tail``) SIGKILLed at random points while a
writer process appends real registry lines to a log and rotates it (rename, and
copytruncate, each sometimes followed by an immediate gzip of the copy).

Semantics checked: the loop appends each chunk's lines to its output as
``fingerprint<TAB>offset<TAB>line``, fsyncs, and only then commits the chunk to the
checkpoint. A kill between the fsync and the commit replays that chunk after the restart,
so the raw output is *at least once*: every line written is there, possibly more than
once. Each line's key (fingerprint, offset) is the same in a replay (offsets are in the
lineage's content, whichever file it is read from), so after dropping repeated keys the
output is *exactly once*: the lines written, each once, in the order written; and a
repeated key always carries the same line. A kill inside the loop's write can leave a
torn last row (its chunk was not committed): the restarted loop cuts it off first.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import regwatch_testlib as lib

WRITER = r'''
import gzip, os, random, re, shutil, sys, time
from pathlib import Path

d, sample, stop = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
rng = random.Random(int(sys.argv[4]))
real = [l for l in sample.read_text().splitlines() if l.startswith('time="')]
log = d / "registry.log"
written = []
seq = 0
rotations = {"rename": 0, "copytruncate": 0, "gzip": 0}

def next_line():
    global seq
    # a real line, with a time of its own: every file of the lineage starts differently
    t = f"2026-12-06T{seq // 3600000 % 24:02d}:{seq // 60000 % 60:02d}:{seq // 1000 % 60:02d}.{seq % 1000:03d}{seq:06d}Z"
    s = re.sub(r'^time="[^"]*"', f'time="{t}"', real[seq % len(real)]) + "\n"
    seq += 1
    written.append(s)
    return s.encode()

def rotated():
    out = []
    for p in d.iterdir():
        m = re.fullmatch(r"registry\.log\.(\d+)(\.gz)?", p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out, reverse=True)

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
until_rotation = rng.randint(100, 400)
while not stop.exists():
    for _ in range(rng.randint(1, 15)):
        b = next_line()
        if rng.random() < 0.05:  # a line in two writes: the tailer sees half a line
            cut = rng.randint(1, len(b) - 1)
            os.write(fd, b[:cut])
            time.sleep(0.002)
            os.write(fd, b[cut:])
        else:
            os.write(fd, b)
        until_rotation -= 1
    if until_rotation <= 0:
        until_rotation = rng.randint(100, 400)
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
    time.sleep(0.004)
os.close(fd)
(d / "written.txt").write_text("".join(written))
print(rotations, flush=True)
'''


def _tail_cmd(state: Path, out: Path, log: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "regwatch.sources.tail",
        "--state", str(state), "--out", str(out),
        "--interval", "0.01", "--partial-timeout", "3600", "--max-bytes", "65536",
        *extra, str(log),
    ]  # fmt: skip


def test_sigkilled_tail_loop_loses_nothing_and_stores_each_line_once(tmp_path: Path) -> None:
    rng = random.Random(20261206)
    logs = tmp_path / "logs"
    logs.mkdir()
    state, out, stop = tmp_path / "state", tmp_path / "out.tsv", tmp_path / "stop"
    sample = lib.SAMPLES / "registry-text.log"
    env = {**os.environ, "PYTHONPATH": str(lib.ROOT)}
    (tmp_path / "writer.py").write_text(WRITER)
    # the loop follows the glob before the first line is written: rotated copies of
    # content it never saw, older than that, are not its to read (docs/tailing.md), and
    # on a loaded machine the writer rotates before a loop started beside it first polls
    first = subprocess.run(
        _tail_cmd(state, out, logs / "registry.log", "--once"), env=env, capture_output=True, timeout=60, check=False
    )
    assert first.returncode == 0, first.stderr.decode()
    writer = subprocess.Popen(
        [sys.executable, str(tmp_path / "writer.py"), str(logs), str(sample), str(stop), "7"],
        stdout=subprocess.PIPE,
        text=True,
    )
    kills = in_flight = 0
    started = time.monotonic()
    try:
        while kills < 24:
            assert writer.poll() is None, "the writer died"
            before = out.stat().st_size if out.exists() else 0
            tail = subprocess.Popen(_tail_cmd(state, out, logs / "registry.log"), env=env, stderr=subprocess.PIPE)
            if rng.random() < 0.25:
                # early: during the imports, the first poll or the first commit
                time.sleep(rng.uniform(0.05, 1.2))
            else:
                # once it writes output (python + regwatch imports take ~1 s, more on a
                # loaded machine), somewhere in its read, write, fsync, commit cycle
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and (out.stat().st_size if out.exists() else 0) <= before:
                    time.sleep(0.01)
                time.sleep(rng.uniform(0.0, 0.8))
            tail.send_signal(signal.SIGKILL)
            tail.wait()
            kills += 1
            if out.exists() and out.stat().st_size > before:
                in_flight += 1
            assert tail.stderr is not None
            err = tail.stderr.read().decode()
            assert "Traceback" not in err, err
    finally:
        stop.touch()
        rotations = writer.communicate(timeout=30)[0]
    assert writer.returncode == 0
    drain = subprocess.run(
        _tail_cmd(state, out, logs / "registry.log", "--once"), env=env, capture_output=True, timeout=60, check=False
    )
    assert drain.returncode == 0, drain.stderr.decode()
    elapsed = time.monotonic() - started

    written = (logs / "written.txt").read_text().splitlines()
    raw = out.read_bytes().decode().splitlines()
    seen: dict[tuple[str, int], str] = {}
    stored: list[str] = []
    for row in raw:
        fp, off, text = row.split("\t", 2)
        key = (fp, int(off))
        if key in seen:
            assert seen[key] == text, f"key {key} came back with another line"
            continue
        seen[key] = text
        stored.append(text)
    print(
        f"\n{kills} kills ({in_flight} with output written since the start), {rotations.strip()}, "
        f"{len(written)} lines written, {len(raw)} output rows, {len(raw) - len(stored)} replayed, "
        f"{len({k[0] for k in seen})} lineages, {elapsed:.1f} s"
    )
    assert kills >= 20 and in_flight >= 10
    assert len(raw) >= len(written)
    assert len(stored) == len(written)
    assert stored == written  # no loss, no duplicate, in the order written


def test_restarted_tail_loop_cuts_a_torn_last_row(tmp_path: Path) -> None:
    log, out, state = tmp_path / "registry.log", tmp_path / "out.tsv", tmp_path / "state"
    lines = [l for l in (lib.SAMPLES / "registry-text.log").read_text().splitlines() if l.startswith('time="')][:5]
    log.write_text("".join(l + "\n" for l in lines))
    out.write_bytes(b"abc\t0\tan earlier row\n" + b"dc1cb1d8915e11")  # killed inside its write
    env = {**os.environ, "PYTHONPATH": str(lib.ROOT)}
    done = subprocess.run(_tail_cmd(state, out, log, "--once"), env=env, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    rows = out.read_bytes().decode().splitlines()
    assert rows[0] == "abc\t0\tan earlier row"
    assert [r.split("\t", 2)[2] for r in rows[1:]] == lines
    assert len({r.split("\t", 1)[0] for r in rows[1:]}) == 1  # one lineage: no torn bytes glued to a key
