"""Which ingest path runs, as `regwatch check` and the first ingest tell it, for each way
the native core can be missing: never built, a REGWATCH_NATIVE_LIB that does not exist or
is not a library, and REGWATCH_NATIVE=0 (deliberate: reported by check, no notice).

Runs the real command line (``python -m regwatch``) of this tree in subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.package

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_logs" / "distribution" / "registry-text.log"
NOTICE = "regwatch: note: running without the native core"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if k not in ("REGWATCH_NATIVE", "REGWATCH_NATIVE_LIB", "REGWATCH_DB")}
    e["PYTHONPATH"] = str(ROOT)
    e.update(env)
    return subprocess.run(
        [sys.executable, "-m", "regwatch", *args], capture_output=True, text=True, env=e, cwd=tmp_path, timeout=120, check=False
    )


def _ingest_twice_in_one_run(tmp_path: Path, **env: str) -> tuple[dict, list[str]]:
    """Two different files (the second lacks the first line, so it has its own fingerprint
    and is read too): each gets its own block run, the notice still comes once."""
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    other = tmp_path / "sample-but-the-first-line.log"
    other.write_bytes(b"".join(lines[1:]))
    proc = _run(tmp_path, "ingest", "--db", "db", "--json", "--quiet", str(SAMPLE), str(other), **env)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout)
    assert stats["lines"] == 2 * len(lines) - 1, stats  # both files were read
    assert stats["events"] == 2 * 112, stats  # the first line starts no request; other ids: other file
    return stats, [l for l in proc.stderr.splitlines() if l.startswith(NOTICE)]


def test_missing_library_named_by_env_falls_back_and_says_so_once(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "libregwatch_native.so"
    check = _run(tmp_path, "check", "--db", "db", REGWATCH_NATIVE_LIB=str(missing))
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines()[-1] == (
        f"ingest path: DuckDB fallback, about 9x slower than the native core (REGWATCH_NATIVE_LIB={missing} does not exist)"
    )
    assert NOTICE not in check.stderr  # check reports it on stdout; the notice is the ingest's
    stats, notices = _ingest_twice_in_one_run(tmp_path, REGWATCH_NATIVE_LIB=str(missing))
    assert stats["files"] == 2
    assert notices == [
        (
            f"{NOTICE} (REGWATCH_NATIVE_LIB={missing} does not exist); ingest uses the DuckDB fallback, about 9x slower "
            "(measured 20k vs 189k lines/s, docs/benchmarks.md). To build it, install Rust (cargo on PATH or in "
            "~/.cargo/bin) and reinstall regwatch from source (pip install .)."
        )
    ]


def test_a_file_that_is_not_a_library_falls_back_with_the_loader_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.so"
    junk.write_bytes(b"not an ELF file\n")
    check = _run(tmp_path, "check", "--db", "db", REGWATCH_NATIVE_LIB=str(junk))
    assert check.returncode == 0 and "Traceback" not in check.stderr, check.stderr
    last = check.stdout.splitlines()[-1]
    assert last.startswith("ingest path: DuckDB fallback") and f"{junk} cannot be loaded: " in last, last
    _, notices = _ingest_twice_in_one_run(tmp_path, REGWATCH_NATIVE_LIB=str(junk))
    assert len(notices) == 1 and "cannot be loaded" in notices[0]


def test_native_disabled_on_purpose_is_reported_by_check_without_a_notice(tmp_path: Path) -> None:
    check = _run(tmp_path, "check", "--db", "db", REGWATCH_NATIVE="0")
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines()[-1] == (
        "ingest path: DuckDB fallback, about 9x slower than the native core (disabled by REGWATCH_NATIVE=0)"
    )
    _, notices = _ingest_twice_in_one_run(tmp_path, REGWATCH_NATIVE="0")
    assert notices == []


def test_check_names_the_library_it_loads(tmp_path: Path) -> None:
    """This tree's own build (make / pip install -e): check names the file it loaded."""
    from regwatch import native

    st = native.status()
    if not st.active:
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"the native core is required when CI=true: {st.reason}", pytrace=False)
        pytest.skip(f"the native core is not built here: {st.reason}")
    check = _run(tmp_path, "check", "--db", "db")
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines()[-1] == f"ingest path: native core ({st.path})"
    assert st.path is not None and st.path.parent == ROOT / "regwatch"
    _, notices = _ingest_twice_in_one_run(tmp_path)
    assert notices == []
