"""An idle service gives back what a burst of reading touched: the freed heap (malloc_trim,
Arrow's pool) and the file pages only it maps, such as library code (madvise MADV_PAGEOUT
on read-only file mappings), in a real process, measured from /proc/self/smaps.

The file here is the probe's own (a library's pages may also be mapped by the test runner,
and the kernel pages out only what one process maps)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, mmap, os, sys
from regwatch.service.daemon import _trim_memory

path = sys.argv[1]
with open(path, "wb") as fh:
    fh.write(os.urandom(1 << 20) * 32)  # 32 MiB
    fh.flush()
    os.fsync(fh.fileno())  # clean pages: reclaiming them needs no write-back
fd = os.open(path, os.O_RDONLY)
m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
total = sum(m[i] for i in range(0, len(m), 4096))  # touch every page

def rss_of(name):
    kb, inside = 0, False
    with open("/proc/self/smaps") as fh:
        for line in fh:
            parts = line.split()
            if parts and "-" in parts[0] and len(parts) >= 5 and all(c in "0123456789abcdef-" for c in parts[0]):
                inside = len(parts) > 5 and parts[5] == name
            elif inside and line.startswith("Rss:"):
                kb += int(parts[1])
    return kb

before = rss_of(path)
_trim_memory()
after = rss_of(path)
again = sum(m[i] for i in range(0, len(m), 4096))  # still readable, the same bytes
print(json.dumps({"before_kb": before, "after_kb": after, "same": again == total}))
"""


def test_trim_hands_back_file_pages_only_this_process_maps(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "mapped.bin")], capture_output=True, text=True,
                         timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=False)
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"\nmapped file resident {d['before_kb'] // 1024} -> {d['after_kb'] // 1024} MB")
    assert d["before_kb"] >= 30 * 1024
    assert d["after_kb"] < d["before_kb"] / 4
    assert d["same"]
