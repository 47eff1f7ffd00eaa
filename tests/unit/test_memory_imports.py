"""An ingest does not load pandas (or pyarrow.dataset): they cost ~50 MB of the 300 MB
peak the ingest is allowed, and it has no use for them (see regwatch/arrowkit.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_PROBE = r"""
import json, sys, traceback
tried = []
class Watch:
    def find_spec(self, name, path=None, target=None):
        if name in ("pandas", "pyarrow.dataset"):
            frames = [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in traceback.extract_stack()[:-1]
                      if "regwatch" in f.filename]
            tried.append([name, frames[-3:]])
        return None
sys.meta_path.insert(0, Watch())
from regwatch.cli import main
rc = main(["ingest", "--db", sys.argv[1], "--json", "--quiet", *sys.argv[2:]])
print(json.dumps({"rc": rc, "tried": tried}))
"""


def test_ingest_loads_neither_pandas_nor_pyarrow_dataset(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import synth
    finally:
        sys.path.pop(0)
    log = tmp_path / "synth.log"
    log.write_text("\n".join(synth.generate(20_000, 5)) + "\n")
    logs = [str(log), *map(str, sorted((ROOT / "sample_logs" / "distribution").glob("*.log")))]
    logs += [str(p) for p in sorted((ROOT / "sample_logs" / "harbor").rglob("*.log"))]
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "db"), *logs],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["rc"] == 0
    assert res["tried"] == [], res["tried"]
