"""Finding promtool and amtool: missing, a test FAILS under CI=true and is skipped otherwise."""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_tool(name: str, package: str) -> str:
    """The path of ``name``; fails the test under CI=true when it is missing, else skips."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} not found on PATH: apt-get install {package} (scripts/install-sysdeps.sh)"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return path
