"""An idle service gives back what a burst of reading touched: the freed heap (malloc_trim,
Arrow's pool) and the library code pages (madvise MADV_PAGEOUT on read-only file
mappings), in a real process, measured from /proc."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json
def rollup():
    out = {}
    with open("/proc/self/smaps_rollup") as fh:
        for line in fh:
            k, _, v = line.partition(":")
            if v.strip().endswith("kB"):
                out[k] = int(v.split()[0])
    return out
import duckdb, pyarrow as pa, pyarrow.compute as pc
from regwatch.service.daemon import _trim_memory
# a burst: DuckDB and Arrow code and buffers
con = duckdb.connect()
con.execute("SELECT sum(i), count(DISTINCT i % 977) FROM range(3000000) t(i)").fetchall()
t = pa.table({"x": pa.array(range(2_000_000))})
pc.sum(pc.multiply(t["x"], 3)).as_py()
del t
con.close()
before = rollup()
_trim_memory()
after = rollup()
print(json.dumps({"before": before, "after": after}))
"""


def test_trim_hands_back_code_pages_and_keeps_working() -> None:
    res = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=False)
    assert res.returncode == 0, res.stderr
    d = json.loads(res.stdout.strip().splitlines()[-1])
    file_before = d["before"]["Rss"] - d["before"]["Anonymous"]
    file_after = d["after"]["Rss"] - d["after"]["Anonymous"]
    print(f"\nfile-backed RSS {file_before // 1024} -> {file_after // 1024} MB; "
          f"anonymous {d['before']['Anonymous'] // 1024} -> {d['after']['Anonymous'] // 1024} MB")
    assert file_before > 20 * 1024  # the burst touched tens of MB of library code
    assert file_after < file_before / 2
    assert d["after"]["Anonymous"] <= d["before"]["Anonymous"]
