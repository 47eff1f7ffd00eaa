"""The same sample logs give identical reports from the embedded and the Elasticsearch store.

Everything goes through the CLI, as a user would run it::

    regwatch ingest --db DIR sample_logs/        regwatch ingest --es URL sample_logs/
    regwatch summary --json                      (both)
    regwatch audit deletes --format json         (both)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.es

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_logs"
WINDOW = ["--since", "1970-01-01T00:00:00Z", "--until", "2100-01-01T00:00:00Z"]


def regwatch(args: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "regwatch", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"regwatch {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
    return proc.stdout


def test_embedded_and_elasticsearch_reports_are_identical(
    es_node: dict[str, Any], es_client: Any, tmp_path: Path
) -> None:
    assert any(SAMPLES.rglob("*.log")), f"no sample logs under {SAMPLES}"
    prefix = f"parity{uuid.uuid4().hex[:8]}"
    config = tmp_path / "regwatch.yaml"
    config.write_text(f"store:\n  index_prefix: {prefix}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "HOME": str(tmp_path / "home"), "REGWATCH_STATE": str(tmp_path / "state")}
    for var in ("REGWATCH_DB", "REGWATCH_ES_URL", "REGWATCH_ES_API_KEY", "REGWATCH_ES_USERNAME"):
        env.pop(var, None)
    db = ["--db", str(tmp_path / "db")]
    es = ["--es", es_node["url"]]
    try:
        stats = {}
        for name, where in (("embedded", db), ("elasticsearch", es)):
            out = regwatch(["--config", str(config), "ingest", *where, "--json", "--quiet",
                            str(SAMPLES)], env, tmp_path)
            stats[name] = json.loads(out.strip().splitlines()[-1])
        assert stats["embedded"] == stats["elasticsearch"]
        assert stats["embedded"]["events"] > 0
        es_client.indices.refresh(index=f"{prefix}-events-*")

        def report(where: list[str]) -> tuple[Any, Any]:
            summary = json.loads(regwatch(["--config", str(config), "summary", *where, "--json",
                                           *WINDOW], env, tmp_path))
            deletes = json.loads(regwatch(["--config", str(config), "audit", "deletes", *where,
                                           "--format", "json", *WINDOW], env, tmp_path))
            return summary, deletes

        embedded_summary, embedded_deletes = report(db)
        es_summary, es_deletes = report(es)
        assert es_summary == embedded_summary
        assert es_deletes == embedded_deletes
        assert embedded_deletes, "the samples contain deletes; an empty audit proves nothing"

        # a replay into Elasticsearch (checkpoint ignored) stores nothing new
        again = json.loads(regwatch(["--config", str(config), "ingest", *es, "--json", "--quiet",
                                     "--from-start", str(SAMPLES)], env, tmp_path).strip().splitlines()[-1])
        assert again["events"] == 0
        # every record of the first run comes back as a duplicate, including those that were
        # already duplicates then (one Harbor audit record found in several export files)
        first = stats["elasticsearch"]
        assert again["duplicates"] == first["events"] + first["duplicates"]
    finally:
        es_client.options(ignore_status=404).indices.delete(index=f"{prefix}-events-*")
        es_client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-events")
        for part in ("settings", "mappings"):
            es_client.options(ignore_status=404).cluster.delete_component_template(
                name=f"{prefix}-events@{part}")
