"""The two ingest stages (parse on a worker thread, correlate and store on the caller's)
keep block order, and an error in the worker reaches the caller."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from regwatch import pipeline
from regwatch.sources.blocks import Block


class _Run:
    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.threads: set[str] = set()

    def parse(self, block: Block) -> int:
        self.threads.add(threading.current_thread().name)
        n = int(block.texts[0])
        if n == self.fail_at:
            raise ValueError(f"block {n}")
        return n


def _blocks(n: int):
    for i in range(n):
        yield Block([str(i)], [i], [i + 1], None)


def test_stages_keep_block_order_and_parse_off_the_caller_thread() -> None:
    run = _Run()
    got = list(pipeline._staged(_blocks(50), run))  # type: ignore[arg-type]
    assert got == list(range(50))
    assert threading.current_thread().name not in run.threads


def test_an_error_in_the_parse_stage_reaches_the_caller() -> None:
    run = _Run(fail_at=7)
    seen = []
    with pytest.raises(ValueError, match="block 7"):
        for n in pipeline._staged(_blocks(20), run):  # type: ignore[arg-type]
            seen.append(n)
    assert seen == list(range(7))


def test_staged_ingest_equals_a_sequential_one(tmp_path: Path, monkeypatch) -> None:
    """The same events, ids and counts whether blocks are parsed ahead or one by one,
    over a file of many small blocks."""
    import importlib.util

    from regwatch.sources import blocks
    from regwatch.stores.base import Query
    from regwatch.stores.embedded import EmbeddedStore

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("synth", root / "bench" / "synth.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    log = tmp_path / "registry.log"
    log.write_text("\n".join(mod.generate(6000, 3)) + "\n")
    monkeypatch.setattr(blocks.read_blocks, "__defaults__", (0, 64 << 10))  # ~170 lines a block

    def run(db: Path) -> tuple[list, dict]:
        store = EmbeddedStore(db)
        stats = pipeline.ingest([str(log)], store)
        return store.search(Query()), stats.to_dict()

    staged = run(tmp_path / "a")

    def sequential(blocks_, r):
        for b in blocks_:
            yield r.parse(b)

    monkeypatch.setattr(pipeline, "_staged", sequential)
    assert run(tmp_path / "b") == staged
    assert staged[1]["events"] > 1000


def test_the_parse_stage_runs_ahead_but_boundedly_and_stops_with_the_caller() -> None:
    parsed: list[int] = []

    class Counting(_Run):
        def parse(self, block: Block) -> int:
            n = super().parse(block)
            parsed.append(n)
            return n

    gen = pipeline._staged(_blocks(1000), Counting(), ahead=3)  # type: ignore[arg-type]
    got = [next(gen) for _ in range(3)]
    import time

    time.sleep(0.3)  # the worker fills the queue, then waits
    assert got == [0, 1, 2]
    assert 3 < len(parsed) <= 3 + 3 + 1
    gen.close()
    time.sleep(0.1)
    assert not any(t.name == "regwatch-parse" and t.is_alive() for t in threading.enumerate())
    assert len(parsed) <= 3 + 3 + 2
