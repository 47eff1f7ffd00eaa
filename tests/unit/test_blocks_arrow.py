"""The Arrow block split gives the same lines, offsets and ends as the per-line split,
and leaves every block that needs per-line care (CR, control bytes, bad UTF-8) to it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regwatch.sources import blocks


def _plain(body: bytes, base: int) -> blocks.Block:
    orig = blocks._split_arrow
    blocks._split_arrow = lambda b, o: None  # type: ignore[assignment]
    try:
        return blocks._split(body, base)
    finally:
        blocks._split_arrow = orig  # type: ignore[assignment]


def _same(a: blocks.Block, b: blocks.Block) -> None:
    assert list(a.texts) == list(b.texts)
    assert [int(x) for x in a.offsets] == [int(x) for x in b.offsets]
    assert [int(x) for x in a.ends] == [int(x) for x in b.ends]
    def norm(p: list | None) -> list | None:
        return None if p is None or all(x is None for x in p) else p

    assert norm(a.problems) == norm(b.problems)


@pytest.mark.parametrize(
    "body",
    [
        b'time="2026-01-01T00:00:00Z" level=info msg="a"\n10.0.0.1 - - [x] "GET /v2/ HTTP/1.1" 401 87 "" "skopeo"',
        "duration=1.5\u00b5s user=j\u00f6rg\tx\n\nlast".encode(),
        b"",
        b"\n\n",
    ],
)
def test_arrow_split_matches_plain_split(body: bytes) -> None:
    fast = blocks._split(body, 100)
    assert fast.arrow is not None
    _same(fast, _plain(body, 100))


@pytest.mark.parametrize("body", [b"a\r\nb", b"a\x00b\nc", b"ok\n\xff\xfe bad", b"a\x07b"])
def test_blocks_needing_care_take_the_per_line_split(body: bytes) -> None:
    got = blocks._split(body, 0)
    assert got.arrow is None
    _same(got, _plain(body, 0))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40), max_size=20))
def test_any_text_splits_the_same_either_way(lines: list[str]) -> None:
    body = "\n".join(lines).encode("utf-8")
    _same(blocks._split(body, 7), _plain(body, 7))
