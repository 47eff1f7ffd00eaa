"""Share of real lines regwatch does not recognize, with no hints (issue target: <= 1%).

Runs the real ingest over a folder of real lines (by default the held-out set in
bench/corpus_holdout/, which no test reads and no parser change was tuned on) and prints
lines, unrecognized lines (unparsable or bad_field), noise by kind and runtime envelopes.

    python bench/bench_corpus.py [DIR ...]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from regwatch.pipeline import ingest
from regwatch.quarantine import Quarantine
from regwatch.stores.embedded import EmbeddedStore

HERE = Path(__file__).resolve().parent


def measure(folder: Path) -> dict:
    files = sorted(str(p) for p in folder.glob("*.log"))
    with tempfile.TemporaryDirectory() as tmp:
        q = Quarantine(Path(tmp) / "q")
        stats = ingest(files, EmbeddedStore(str(Path(tmp) / "db")), quarantine=q)
        bad = []
        if q.file.exists():
            for line in q.file.read_text().splitlines():
                d = json.loads(line)
                bad.append((Path(d.get("path", "")).name, d.get("reason"), d.get("text", "")[:140]))
    unrec = sum(v for k, v in stats.dropped.items() if k in ("unparsable", "bad_field"))
    return {
        "folder": str(folder),
        "files": len(files),
        "lines": stats.lines,
        "events": stats.events,
        "unrecognized": unrec,
        "unrecognized_share": round(unrec / max(stats.lines, 1), 4),
        "dropped": stats.dropped,
        "noise": stats.noise,
        "wrappers": stats.wrappers,
        "examples": bad[:40],
    }


def main(argv: list[str]) -> int:
    folders = [Path(a) for a in argv] or [HERE / "corpus_holdout", HERE.parent / "sample_logs" / "corpus"]
    for f in folders:
        r = measure(f)
        print(
            f"{r['folder']}: {r['files']} files, {r['lines']} lines, {r['unrecognized']} unrecognized "
            f"({100 * r['unrecognized_share']:.2f}%), {r['events']} events"
        )
        print(f"  noise by kind: {json.dumps(r['noise'], sort_keys=True)}")
        print(f"  envelopes: {json.dumps(r['wrappers'], sort_keys=True)}")
        for ex in r["examples"]:
            print(f"  unrecognized: {ex}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
