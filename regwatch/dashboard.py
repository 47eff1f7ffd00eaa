"""Launching the operator dashboard, and opening its store the way the CLI does.

The dashboard is a Streamlit app packaged in :mod:`regwatch.dashboard_app` (so it ships
with ``pip install .``). It is a separate process that only reads the store: the
service starts it with :func:`dashboard_command` when ``service.dashboard`` is true, and
``regwatch dashboard`` runs the same command. The config path and the store directory
travel as arguments after ``--``, which Streamlit hands to the app's ``sys.argv``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

APP = Path(__file__).resolve().parent / "dashboard_app" / "app.py"
DEFAULT_PORT = 8501
DEFAULT_HOST = "127.0.0.1"


def dashboard_command(
    config_path: str | os.PathLike[str] | None,
    db: str | os.PathLike[str] | None,
    port: int,
    host: str = DEFAULT_HOST,
) -> list[str]:
    """The argv that serves the dashboard on ``host:port`` (loopback by default: put it
    behind authentication before binding it elsewhere, see docs/dashboard.md) over the
    store that ``config_path`` and ``db`` choose, as the CLI's ``--config`` and ``--db``."""
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host,
        "--server.port", str(int(port)),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        # the app's files do not change under a running service: no watcher threads
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--client.toolbarMode", "viewer",
        "--",
    ]
    if config_path is not None:
        cmd += ["--config", str(Path(config_path).resolve())]
    if db is not None:
        cmd += ["--db", str(Path(os.path.expanduser(str(db))).resolve())]
    return cmd


@dataclass(frozen=True)
class Settings:
    """What the app was started on: the config file (None: defaults), the store
    directory (None: config, ``REGWATCH_DB``, the default), and an optional fixed
    ``now`` (ISO-8601) for reproducible pages in tests and demos."""

    config_path: str | None = None
    db: str | None = None
    now: str | None = None
    refresh: int | None = None  # the sidebar's initial refresh interval, seconds


def app_settings(argv: list[str], environ: dict[str, str] | os._Environ[str]) -> Settings:
    """The app's settings from its arguments (after ``--``) and the environment
    (``REGWATCH_CONFIG``, ``REGWATCH_DB`` as the CLI, ``REGWATCH_DASHBOARD_NOW``,
    ``REGWATCH_DASHBOARD_REFRESH``: seconds, one of the sidebar's choices)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config")
    p.add_argument("--db")
    p.add_argument("--now")
    p.add_argument("--refresh")
    args, _ = p.parse_known_args(argv)
    raw = args.refresh or environ.get("REGWATCH_DASHBOARD_REFRESH") or None
    try:
        refresh = int(raw) if raw is not None else None
    except ValueError:
        refresh = None  # not a number of seconds: the sidebar's default
    return Settings(
        config_path=args.config or environ.get("REGWATCH_CONFIG") or None,
        db=args.db or environ.get("REGWATCH_DB") or None,
        now=args.now or environ.get("REGWATCH_DASHBOARD_NOW") or None,
        refresh=refresh,
    )


@dataclass
class Opened:
    """An open store and where its state lives (status file, quarantine)."""

    store: Any
    state_dir: Path  # where the service writes status.json
    store_state: Path  # the store's own state directory (`regwatch ingest`'s quarantine)
    description: str  # "embedded store at DIR" / "Elasticsearch at URL"
    config_path: str | None

    @property
    def quarantine_dir(self) -> Path:
        """The service's quarantine when it keeps one (``service.state_dir``), else the
        one `regwatch ingest` fills beside the store."""
        service = self.state_dir / "quarantine"
        return service if service.exists() or self.state_dir == self.store_state else self.store_state / "quarantine"


def open_dashboard_store(config_path: str | None, db: str | None) -> Opened:
    """The store the CLI would open with ``--config config_path --db db`` (read-only: a
    missing embedded store is a StoreError naming it). Raises ConfigError, StoreError."""
    from regwatch.cli import _es_url, open_store
    from regwatch.config import load_config
    from regwatch.service.status import default_state_dir

    config = load_config(config_path)
    args = argparse.Namespace(db=db, es=None)
    store, state = open_store(args, config, create=False)
    url = _es_url(args, config)
    status_dir = default_state_dir(config, state)  # as `regwatch status` finds it
    desc = f"Elasticsearch at {url}" if url else f"embedded store at {state}"
    return Opened(store, status_dir, state, desc, config_path)
