"""The service's problems, as `regwatch status` shows them, are the current ones: a glob
that matched no file at start is warned about, and the warning goes once a file matches."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from regwatch.clock import FixedClock
from regwatch.config import config_from_dict
from regwatch.service.daemon import Service
from regwatch.service.status import read_status
from regwatch.stores.embedded import EmbeddedStore

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def test_a_glob_that_comes_to_match_leaves_the_status_problems(tmp_path: Path) -> None:
    logs, state = tmp_path / "logs", tmp_path / "state"
    cfg = config_from_dict(
        {"sources": [{"paths": [str(logs / "*.log")]}], "service": {"state_dir": str(state), "poll_interval": 0.01}}
    )
    store = EmbeddedStore(tmp_path / "db")
    svc = Service(cfg, store, state, clock=FixedClock(NOW))
    try:
        svc.step()
        assert any("matches no file yet" in p for p in svc.problems), svc.problems
        logs.mkdir()
        (logs / "registry.log").write_bytes((ROOT / "sample_logs" / "distribution" / "registry-text.log").read_bytes())
        for _ in range(5):
            svc.step()
        assert not any("matches no file yet" in p for p in svc.problems), svc.problems
        svc.finish()
        st = read_status(state, NOW)
        assert st is not None and not any("matches no file" in p for p in st.problems)
    finally:
        svc.close()
        store.close()
