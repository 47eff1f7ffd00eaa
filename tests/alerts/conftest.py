"""promtool and amtool, the real ones (Debian packages prometheus and prometheus-alertmanager,
installed by scripts/install-sysdeps.sh). Missing: the tests FAIL under CI=true and are
skipped with the reason otherwise (alert_tools.require_tool)."""

from __future__ import annotations

import pytest
from alert_tools import require_tool


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool", "prometheus")


@pytest.fixture(scope="session")
def amtool() -> str:
    return require_tool("amtool", "prometheus-alertmanager")
