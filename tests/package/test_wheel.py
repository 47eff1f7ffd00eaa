"""The package as users get it: a wheel (and an editable install) built from the source
tree by pip with setuptools-rust, installed into a fresh virtualenv, ingesting a real
sample log.

* with cargo (on PATH or in ~/.cargo/bin): the wheel ships ``regwatch/_native*.so``, and
  the installed ``regwatch`` runs on the native core (``regwatch check`` says so, naming
  the library inside the new virtualenv, and the ingest prints no fallback notice). Under
  ``CI=true`` a missing cargo FAILS these tests instead of skipping them;
* without cargo (PATH without it, CARGO unset, a HOME without ~/.cargo): the build still
  succeeds, the wheel has no library, and regwatch says once on stderr that it runs on
  the slower DuckDB fallback, with the same events.

The builds run on a copy of the tree (pip builds in place, writing build/ and
native/target), without build isolation and with ``--no-deps``: the build requirements
(setuptools-rust, wheel) and the runtime dependencies come from the virtualenv running
the tests, which the fresh one sees through a ``.pth`` path line (that adds its
site-packages to sys.path without running its own ``.pth`` hooks, so the editable
regwatch installed there stays out of the way). Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.package, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_logs" / "distribution" / "registry-text.log"
SAMPLE_EVENTS = 112  # sample_logs/distribution/registry-text.expected.json
NOTICE = "running without the native core"
# what a build needs of the tree (pyproject.toml's readme is README.md)
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "regwatch", "native")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _cargo() -> str | None:
    """cargo as setup.py finds it: $CARGO, PATH, then ~/.cargo/bin."""
    found = shutil.which(os.environ.get("CARGO", "cargo"))
    if found:
        return found
    home = Path.home() / ".cargo" / "bin" / "cargo"
    return str(home) if home.exists() else None


def _require_cargo() -> None:
    if _cargo() is not None:
        return
    if _in_ci():
        pytest.fail("cargo is required when CI=true: the wheel must ship the native core", pytrace=False)
    pytest.skip("no cargo (not on PATH, not in ~/.cargo/bin): cannot build the native core")


def _tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *BUILD_INPUTS],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f]


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tree's build inputs (tracked or new, not ignored: no stale build output)."""
    dst = tmp_path_factory.mktemp("src") / "regwatch-src"
    for rel in _tracked_files():
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    assert (dst / "setup.py").exists() and (dst / "native" / "Cargo.lock").exists()
    return dst


def _venv(path: Path) -> Path:
    """A fresh virtualenv (no pip of its own) that sees this one's packages after its own."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    py = path / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    (Path(site) / "_regwatch_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return py


def _pip(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=240, check=False,
    )
    assert proc.returncode == 0, f"pip {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def _build_wheel(src: Path, out: Path, env: dict[str, str] | None = None) -> Path:
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out), str(src), env=env)
    (whl,) = out.glob("regwatch-*.whl")
    return whl


def _run_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("REGWATCH_NATIVE", "REGWATCH_NATIVE_LIB", "PYTHONPATH")}


def _regwatch(venv_py: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = venv_py.parent / "regwatch"  # the console script pip installed
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=_run_env(), cwd=cwd, timeout=120, check=False
    )


def _ingest(venv_py: Path, tmp: Path) -> tuple[dict, str]:
    proc = _regwatch(venv_py, "ingest", "--db", str(tmp / "db"), "--json", "--quiet", str(SAMPLE), cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout), proc.stderr


def _imported_from(venv_py: Path, tmp: Path) -> Path:
    out = subprocess.run(
        [str(venv_py), "-c", "import regwatch.native as n; print(n.__file__)"],
        capture_output=True, text=True, env=_run_env(), cwd=tmp, check=True,
    ).stdout.strip()
    return Path(out).parent


def _without_cargo_env(tmp: Path) -> dict[str, str]:
    """A build environment with no Rust toolchain to be found: PATH without any directory
    holding cargo or rustc, CARGO unset, and a HOME with no ~/.cargo."""
    keep = [
        d for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not any((Path(d) / exe).exists() for exe in ("cargo", "rustc"))
    ]
    home = tmp / "home-without-rust"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CARGO", "RUSTUP_HOME", "CARGO_HOME")}
    env.update(PATH=os.pathsep.join(keep), HOME=str(home))
    assert shutil.which("cargo", path=env["PATH"]) is None and shutil.which("rustc", path=env["PATH"]) is None
    return env


def test_wheel_ships_the_native_core_and_ingests_with_it(source_copy: Path, tmp_path: Path) -> None:
    _require_cargo()
    whl = _build_wheel(source_copy, tmp_path / "dist")
    libs = [n for n in zipfile.ZipFile(whl).namelist() if n.startswith("regwatch/_native") and n.endswith(".so")]
    assert libs == [f"regwatch/_native{sysconfig.get_config_var('EXT_SUFFIX')}"], libs
    assert "-cp311-" in whl.name or "-cp3" in whl.name  # a platform wheel, not py3-none-any

    py = _venv(tmp_path / "venv")
    _pip("--python", str(py), "install", "--no-deps", "--no-index", str(whl))
    pkg = _imported_from(py, tmp_path)
    assert pkg.is_relative_to(tmp_path / "venv"), f"regwatch imported from {pkg}, not the new virtualenv"

    check = _regwatch(py, "check", "--db", str(tmp_path / "db"), cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert f"ingest path: native core ({pkg / libs[0].split('/')[1]})" in check.stdout, check.stdout

    stats, err = _ingest(py, tmp_path)
    assert stats["events"] == SAMPLE_EVENTS and stats["dropped"] == {}, stats
    assert NOTICE not in err, err


def test_editable_install_finds_the_library_built_in_place(source_copy: Path, tmp_path: Path) -> None:
    _require_cargo()
    py = _venv(tmp_path / "venv")
    _pip("--python", str(py), "install", "--no-deps", "--no-build-isolation", "--no-index", "-e", str(source_copy))
    pkg = _imported_from(py, tmp_path)
    assert pkg == source_copy / "regwatch", pkg  # the source tree itself
    lib = pkg / f"_native{sysconfig.get_config_var('EXT_SUFFIX')}"
    assert lib.exists()
    check = _regwatch(py, "check", "--db", str(tmp_path / "db"), cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert f"ingest path: native core ({lib})" in check.stdout, check.stdout
    stats, err = _ingest(py, tmp_path)
    assert stats["events"] == SAMPLE_EVENTS and NOTICE not in err, (stats, err)


def test_install_without_cargo_succeeds_and_says_once_that_it_is_slower(source_copy: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(source_copy, src, ignore=shutil.ignore_patterns("build", "target", "*.egg-info", "_native*.so"))
    whl = _build_wheel(src, tmp_path / "dist", env=_without_cargo_env(tmp_path))
    assert not [n for n in zipfile.ZipFile(whl).namelist() if n.startswith("regwatch/_native")]

    py = _venv(tmp_path / "venv")
    _pip("--python", str(py), "install", "--no-deps", "--no-index", str(whl))
    assert _imported_from(py, tmp_path).is_relative_to(tmp_path / "venv")

    check = _regwatch(py, "check", "--db", str(tmp_path / "db"), cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert "ingest path: DuckDB fallback" in check.stdout and "not built" in check.stdout, check.stdout

    # two files in one run: the notice comes once, with the measured figures
    second = tmp_path / "again.log"
    second.write_bytes(SAMPLE.read_bytes())
    proc = _regwatch(py, "ingest", "--db", str(tmp_path / "db"), "--json", "--quiet", str(SAMPLE), str(second), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    notices = [line for line in proc.stderr.splitlines() if NOTICE in line]
    assert len(notices) == 1, proc.stderr
    assert "DuckDB fallback" in notices[0] and "20k vs 189k lines/s" in notices[0] and "9x slower" in notices[0]
    stats = json.loads(proc.stdout)
    assert stats["files"] == 2 and stats["events"] == SAMPLE_EVENTS, stats  # the copy is the same file


def test_sdist_carries_the_crate_and_its_wheel_ships_the_native_core(source_copy: Path, tmp_path: Path) -> None:
    """`pip install regwatch-*.tar.gz` must be able to build the native core too."""
    _require_cargo()
    src = tmp_path / "src"
    shutil.copytree(source_copy, src, ignore=shutil.ignore_patterns("build", "target", "*.egg-info", "_native*.so"))
    proc = subprocess.run(
        [sys.executable, "-c", "from setuptools import build_meta; print(build_meta.build_sdist('dist'))"],
        cwd=src, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    sdist = src / "dist" / proc.stdout.strip().splitlines()[-1]
    import tarfile

    with tarfile.open(sdist) as tf:
        names = {n.split("/", 1)[1] for n in tf.getnames() if "/" in n}
        tf.extractall(tmp_path / "unpacked", filter="data")
    assert {"setup.py", "native/Cargo.toml", "native/Cargo.lock", "native/src/lib.rs"} <= names, sorted(names)
    assert not any(n.startswith("native/target") or "_native" in n.rsplit("/", 1)[-1] and n.endswith(".so") for n in names)
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    whl = _build_wheel(unpacked, tmp_path / "dist")
    assert f"regwatch/_native{sysconfig.get_config_var('EXT_SUFFIX')}" in zipfile.ZipFile(whl).namelist()
