"""End to end: a real Distribution registry, real skopeo traffic, then the regwatch CLI.

`scripts/make_distribution_samples.py` runs a scripted scenario against a fresh
`docker-registry` and returns the log plus the counts the scenario performed (derived from
the operations it ran, not from the log).  The log is ingested with
`python -m regwatch ingest --db DB --json LOG`, and `python -m regwatch summary --db DB --json`
must report exactly those counts, in total and per repository.

Needs docker-registry, skopeo and htpasswd (Debian: docker-registry, skopeo, apache2-utils).
Without them the tests skip, except under CI=true where they fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "make_distribution_samples.py"
TOOLS = ("docker-registry", "skopeo", "htpasswd")
CLI_TIMEOUT = 300


def _load_samples_module() -> ModuleType:
    name = "make_distribution_samples"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None, f"cannot load {SCRIPT}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


def _require_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if not missing:
        return
    msg = (
        f"e2e needs {', '.join(missing)} on PATH "
        "(apt-get install docker-registry skopeo apache2-utils)"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "regwatch", *args],
        check=False,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    assert proc.returncode == 0, (
        f"`python -m regwatch {' '.join(args)}` exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
    )
    return proc


class Run:
    """One scenario run: the real log, its expected counts, and (lazily) regwatch's summary."""

    def __init__(self, formatter: str, workdir: Path, log: Path, expected: dict[str, Any]) -> None:
        self.formatter = formatter
        self.workdir = workdir
        self.log = log
        self.expected = expected
        self._summary: dict[str, Any] | None = None

    @property
    def summary(self) -> dict[str, Any]:
        if self._summary is None:
            db = self.workdir / "db"
            _run_cli("ingest", "--db", str(db), "--json", str(self.log))
            out = _run_cli("summary", "--db", str(db), "--json").stdout
            try:
                self._summary = json.loads(out)
            except ValueError as err:
                raise AssertionError(
                    f"`regwatch summary --json` printed non-JSON: {out[:2000]!r}"
                ) from err
        return self._summary


@pytest.fixture(scope="module", params=["text", "json"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    _require_tools()
    samples = _load_samples_module()
    workdir = tmp_path_factory.mktemp(f"registry-{request.param}")
    log, expected = samples.run_scenario(workdir, request.param)
    return Run(request.param, workdir, log, expected)


def _counts(d: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: d.get(k) for k in keys}


def test_scenario_model_matches_the_raw_log(run: Run) -> None:
    """Guards the expected numbers themselves: if skopeo or the registry on this machine
    behave differently from what the scenario encodes, fail here, not in regwatch's tests."""
    samples = _load_samples_module()
    problems = samples.diff_counts(run.expected, samples.tally_log(run.log))
    assert not problems, (
        "the scripted counts disagree with the real log (tool versions changed?):\n  "
        + "\n  ".join(problems)
    )


def test_summary_top_level_counts(run: Run) -> None:
    keys = _load_samples_module().COUNT_KEYS
    assert _counts(run.summary, keys) == _counts(run.expected, keys)


def test_summary_per_repository_counts(run: Run) -> None:
    keys = _load_samples_module().COUNT_KEYS
    got_repos: dict[str, Any] = run.summary.get("repositories") or {}
    for repo, want in run.expected["repositories"].items():
        assert repo in got_repos, f"{repo!r} missing from summary repositories {sorted(got_repos)}"
        assert _counts(got_repos[repo], keys) == _counts(want, keys), repo
    for repo, got in got_repos.items():
        if repo not in run.expected["repositories"]:
            nonzero = {k: got.get(k) for k in keys if got.get(k, 0)}
            assert not nonzero, f"unexpected repository {repo!r} with counts {nonzero}"
