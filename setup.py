"""Build hook for the native core (native/, a std-only Rust cdylib loaded through ctypes).

Everything else about the package is in pyproject.toml. setuptools-rust builds the crate
with `cargo rustc --release --offline --locked` into ``regwatch/_native.<EXT_SUFFIX>``
(regwatch/native.py finds it there, in a wheel, a plain install or an editable one). The
extension is optional: without a Rust toolchain the install still succeeds and regwatch
runs on its DuckDB path, saying so once on stderr.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools import setup
from setuptools_rust import Binding, RustExtension

# rustup installs into ~/.cargo/bin, which is often not on the PATH of a build (sudo,
# CI shells, IDEs); setuptools-rust looks for `cargo` and `rustc` on PATH.
if shutil.which(os.environ.get("CARGO", "cargo")) is None:
    cargo_bin = Path.home() / ".cargo" / "bin"
    if (cargo_bin / "cargo").exists():
        os.environ["PATH"] = f"{cargo_bin}{os.pathsep}{os.environ.get('PATH', '')}"

setup(
    rust_extensions=[
        RustExtension(
            "regwatch._native",
            path="native/Cargo.toml",
            binding=Binding.NoBinding,
            # the crate has no dependencies and Cargo.lock is committed: nothing to fetch
            cargo_manifest_args=["--locked", "--offline"],
            debug=False,  # an editable install builds in place; keep the release profile
            optional=True,
        )
    ],
)
