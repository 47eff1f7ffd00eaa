"""Fixtures for the unit tests; helper functions live in regwatch_testlib.py (same folder)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import regwatch_testlib as lib  # noqa: E402

_ROOT = str(lib.ROOT)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)


@pytest.fixture
def samples() -> Path:
    return lib.SAMPLES


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A fresh embedded store directory."""
    return tmp_path / "db"


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, object]]:
    """Each sample registry log ingested once into its own store: name -> (stats, store)."""
    out: dict[str, tuple[dict, object]] = {}
    for name in lib.REGISTRY_LOGS + ("gc", "gc-json"):
        d = tmp_path_factory.mktemp(name)
        stats, store = lib.ingest_files([lib.SAMPLES / f"{name}.log"], d / "db")
        out[name] = (stats.to_dict(), store)
    return out


@pytest.fixture
def cli_env() -> dict[str, str]:
    return lib.cli_env()
