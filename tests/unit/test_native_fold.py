"""The native request folder (native/src/fold.rs) gives exactly the records of the
DuckDB correlator (regwatch/correlate.py): same events, ids, raw text and counts, over
the samples, synthetic logs cut into small blocks (so requests and delete lookups are
carried across block ends), and shuffled, truncated and mixed streams."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

import regwatch_testlib as lib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regwatch import native
from regwatch.pipeline import ingest
from regwatch.sources import blocks
from regwatch.sources.checkpoint import FileCheckpoint
from regwatch.stores.base import Query
from regwatch.stores.embedded import EmbeddedStore

ROOT = Path(__file__).resolve().parents[2]

lib.require_native()




def _events(files: list[Path], db: Path, *, use_native: bool, block_bytes: int | None, monkeypatch, checkpoint: Path | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    monkeypatch.setenv("REGWATCH_NATIVE", "1" if use_native else "0")
    if block_bytes is not None:
        real = blocks.read_blocks

        def small(info, start=0, block_bytes_=block_bytes):  # type: ignore[no-untyped-def]
            return real(info, start, block_bytes_)

        monkeypatch.setattr("regwatch.pipeline.read_blocks", small)
    store = EmbeddedStore(str(db))
    cp = FileCheckpoint(str(checkpoint)) if checkpoint is not None else None
    stats = ingest([str(f) for f in files], store, checkpoint=cp)
    rows = sorted((_row(e) for e in store.search(Query())), key=lambda r: r["id"])
    monkeypatch.undo()
    return stats.to_dict(), rows


def _row(e: Any) -> dict[str, Any]:
    return {f: getattr(e, f) for f in e.__slots__}


def _same(tmp_path: Path, files: list[Path], monkeypatch, block_bytes: int | None = None) -> int:
    s0, r0 = _events(files, tmp_path / "duck", use_native=False, block_bytes=block_bytes, monkeypatch=monkeypatch)
    s1, r1 = _events(files, tmp_path / "native", use_native=True, block_bytes=block_bytes, monkeypatch=monkeypatch)
    assert s1 == s0
    assert len(r1) == len(r0)
    for a, b in zip(r0, r1):
        assert b == a
    return len(r0)


def test_samples_give_the_same_events(tmp_path: Path, monkeypatch) -> None:
    files = sorted((ROOT / "sample_logs" / "distribution").glob("*.log"))
    files += sorted(p for p in (ROOT / "sample_logs" / "harbor").rglob("*") if p.is_file() and "expected" not in p.name)
    assert _same(tmp_path, files, monkeypatch) > 100


def test_synthetic_log_in_small_blocks(tmp_path: Path, monkeypatch) -> None:
    log = tmp_path / "synth.log"
    log.write_text("\n".join(lib.synth_lines(15_000, 3)) + "\n")
    # ~170 blocks: requests, held pulls and carried app lines cross many block ends
    n = _same(tmp_path, [log], monkeypatch, block_bytes=64 << 10)
    assert n > 5_000


def _jumble(lines: list[str], rng: random.Random) -> list[str]:
    """Local reorderings, lost lines and duplicated lines: FIFO matching, lone access
    lines, unfinished requests and repeated request ids all occur."""
    out = list(lines)
    for _ in range(len(out) // 5):
        i = rng.randrange(len(out))
        r = rng.random()
        if r < 0.5 and i + 1 < len(out):
            j = min(len(out) - 1, i + rng.randint(1, 6))
            out[i], out[j] = out[j], out[i]
        elif r < 0.75:
            out.pop(i)
        else:
            out.insert(i, out[rng.randrange(len(out))])
    return out


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), block_kb=st.sampled_from([8, 32]))
def test_jumbled_streams_give_the_same_events(tmp_path_factory, monkeypatch, seed: int, block_kb: int) -> None:
    tmp = tmp_path_factory.mktemp("jumble")
    rng = random.Random(seed)
    lines = _jumble(lib.synth_lines(1_500, seed), rng)
    samples = (ROOT / "sample_logs" / "distribution" / "registry-text.log").read_text().splitlines()
    k = rng.randrange(len(lines))
    lines[k:k] = samples[: rng.randint(0, len(samples))]  # real lines amid synthetic ones
    log = tmp / "j.log"
    log.write_text("\n".join(lines) + "\n")
    _same(tmp, [log], monkeypatch, block_bytes=block_kb << 10)


def test_a_log_read_in_two_steps_gives_the_same_events(tmp_path: Path, monkeypatch) -> None:
    """What the folder holds at the end of the first read (unfinished requests, pulls
    that may be lookups) is read again the second time, with the same ids."""
    lines = lib.synth_lines(6_000, 9)
    results = []
    for use_native in (False, True):
        d = tmp_path / ("n" if use_native else "d")
        d.mkdir()
        log = d / "grow.log"
        log.write_text("\n".join(lines[:3_333]) + "\n")
        _events([log], d / "db", use_native=use_native, block_bytes=16 << 10, monkeypatch=monkeypatch, checkpoint=d / "cp.json")
        with log.open("a") as fh:
            fh.write("\n".join(lines[3_333:]) + "\n")
        results.append(_events([log], d / "db", use_native=use_native, block_bytes=16 << 10, monkeypatch=monkeypatch, checkpoint=d / "cp.json")[1])
    duck, nat = results
    assert [r["id"] for r in nat] == [r["id"] for r in duck]
    for a, b in zip(duck, nat):
        assert {k: v for k, v in b.items() if k != "log_file"} == {k: v for k, v in a.items() if k != "log_file"}


def test_folder_rejects_a_table_of_the_wrong_shape() -> None:
    folder = native.Folder("fp")
    with pytest.raises(native.NativeError, match="code 2"):
        _bad(folder)


def _bad(folder: native.Folder) -> None:
    """A table with the wrong column kinds reaches Rust and is refused (not a crash)."""
    import ctypes

    import pyarrow as pa

    from regwatch.correlate import OBS_SCHEMA

    arrays = [pa.array([1], pa.int64()) for _ in OBS_SCHEMA]
    cols = native.in_cols(arrays)
    lines = pa.array([""], pa.string())
    lb = lines.buffers()
    r, o = ctypes.c_void_p(), ctypes.c_void_p()
    import numpy as np

    offs = np.zeros(1, np.int64)
    rc = folder._lib.rw_fold_run(folder._ptr, cols, len(arrays), 1, lb[1].address, 0, 1, None, offs.ctypes.data, 0, 1, 1, ctypes.byref(r), ctypes.byref(o))
    if rc != 0:
        raise native.NativeError(f"code {rc}")
