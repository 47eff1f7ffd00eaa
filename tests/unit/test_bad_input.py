"""Bad input never crashes an ingest, never costs a good line, and is counted and kept.

Every test drives `regwatch ingest --json` / `regwatch dropped` through ``regwatch.cli.main``
(the ``test_cli_*`` ones through ``python -m regwatch`` in a subprocess, checking the
warning each bad file gets on stderr: file, 1-based line, problem) and compares with
ingesting the good lines alone.
"""

from __future__ import annotations

import gzip
import json
import random
import zlib
from pathlib import Path

import pytest

import regwatch_testlib as lib
from regwatch.cli import main

GOOD = (lib.SAMPLES / "registry-text.log").read_bytes().splitlines(keepends=True)
TEN_MB = 10 * 1024 * 1024


def cli_ingest(capsys: pytest.CaptureFixture[str], db: Path, *paths: Path, extra: tuple[str, ...] = ()) -> dict:
    capsys.readouterr()
    rc = main(["ingest", "--db", str(db), "--json", "--quiet", *extra, *map(str, paths)])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "Traceback" not in err
    return json.loads(out)


def cli_summary(capsys: pytest.CaptureFixture[str], db: Path) -> dict:
    capsys.readouterr()
    assert main(["summary", "--db", str(db), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def cli_dropped(capsys: pytest.CaptureFixture[str], db: Path) -> list[dict]:
    capsys.readouterr()
    assert main(["dropped", "--db", str(db), "--limit", "1000"]) == 0
    return [json.loads(l) for l in capsys.readouterr().out.splitlines() if l.strip()]


def _garbage() -> bytes:
    rnd = random.Random(7)
    return b"\x00" + rnd.randbytes(600).replace(b"\n", b"")


def test_mixed_file_good_lines_all_stored_and_bad_lines_counted(tmp_path: Path, capsys) -> None:
    binary = _garbage()
    invalid_utf8 = b"caf\xe9 au lait password=hunter2 \xff\xfe end"
    huge = b"Authorization: Bearer sup3rs3cr3t " + b"A" * TEN_MB
    nuls = b"abc\x00\x00\x00def"
    bad = [binary, invalid_utf8, huge, nuls]
    parts = GOOD[:100] + [binary + b"\n"] + GOOD[100:150] + [invalid_utf8 + b"\n"] + GOOD[150:200] + [huge + b"\n"] + GOOD[200:] + [nuls + b"\n"]
    mixed = tmp_path / "mixed.log"
    mixed.write_bytes(b"".join(parts))
    only_good = tmp_path / "good.log"
    only_good.write_bytes(b"".join(GOOD))

    s_mixed = cli_ingest(capsys, tmp_path / "db-mixed", mixed)
    s_good = cli_ingest(capsys, tmp_path / "db-good", only_good)

    assert s_mixed["dropped"] == {"binary": 2, "invalid_utf8": 1, "too_long": 1}, s_mixed
    assert s_good["dropped"] == {}
    assert s_mixed["events"] == s_good["events"]
    assert s_mixed["lines"] == s_good["lines"] + len(bad)
    assert lib.accounting_gap(s_mixed) == 0
    summary = cli_summary(capsys, tmp_path / "db-mixed")
    assert summary == cli_summary(capsys, tmp_path / "db-good")
    exp = lib.expected("registry-text")
    assert {k: summary[k] for k in exp if k != "repositories"} == {k: v for k, v in exp.items() if k != "repositories"}

    # the quarantine holds exactly the four bad lines, at their byte offsets, redacted and capped
    rows = cli_dropped(capsys, tmp_path / "db-mixed")
    assert len(rows) == 4
    data = mixed.read_bytes()
    by_reason: dict[str, list[dict]] = {}
    for r in rows:
        by_reason.setdefault(r["reason"], []).append(r)
        assert r["path"] == str(mixed)
    assert sorted(r["offset"] for r in rows) == sorted(data.index(b) for b in bad)
    assert len(by_reason["too_long"]) == 1
    t = by_reason["too_long"][0]["text"]
    assert len(t) <= 4096 and t.startswith("Authorization: Bearer ")
    assert "sup3rs3cr3t" not in t and "[REDACTED]" in t
    assert len(t.encode()) >= 4000  # the head is kept, not dropped entirely
    u = by_reason["invalid_utf8"][0]["text"]
    assert "hunter2" not in u and "[REDACTED]" in u and u.startswith("caf")
    assert all(len(r["text"]) <= 4096 for r in rows)
    assert all(r["text"] for r in by_reason["binary"])


def test_quarantine_says_a_capped_line_is_truncated(tmp_path: Path, capsys) -> None:
    p = tmp_path / "huge.log"
    p.write_bytes(GOOD[0] + b"Z" * TEN_MB + b"\n" + GOOD[1])
    s = cli_ingest(capsys, tmp_path / "db", p)
    assert s["dropped"] == {"too_long": 1}
    (row,) = cli_dropped(capsys, tmp_path / "db")
    assert row["text"] == "Z" * 4096
    assert row["truncated"] is True


def test_unparsable_long_line_is_capped_in_quarantine(tmp_path: Path, capsys) -> None:
    p = tmp_path / "l.log"
    p.write_bytes(b"x" * 100_000 + b" token=abc123\n")
    s = cli_ingest(capsys, tmp_path / "db", p)
    assert s["dropped"] == {"unparsable": 1}
    (row,) = cli_dropped(capsys, tmp_path / "db")
    assert row["text"] == "x" * 4096 and row["truncated"] is True and row["offset"] == 0


def test_line_just_over_the_limit_is_too_long(tmp_path: Path, capsys) -> None:
    p = tmp_path / "l.log"
    p.write_bytes(GOOD[0] + b"y" * (1536 * 1024) + b"\n" + GOOD[1])
    s = cli_ingest(capsys, tmp_path / "db", p)
    assert s["dropped"] == {"too_long": 1}, s


def test_ten_megabyte_line_alone_completes(tmp_path: Path, capsys) -> None:
    import resource
    import time

    p = tmp_path / "only-huge.log"
    p.write_bytes(b"q" * (TEN_MB + 12345))  # no newline at all
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    s = cli_ingest(capsys, tmp_path / "db", p)
    assert time.monotonic() - t0 < 20
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, f"peak RSS grew by {grown_mb:.0f} MB for one 10 MB line"
    assert s["dropped"] == {"too_long": 1} and s["lines"] == 1 and s["events"] == 0


def test_empty_file(tmp_path: Path, capsys) -> None:
    p = tmp_path / "empty.log"
    p.write_bytes(b"")
    s = cli_ingest(capsys, tmp_path / "db", p)
    assert s["files"] == 1 and s["events"] == 0 and s["lines"] == 0
    assert s["dropped"] == {"empty_file": 1}
    # an empty file next to a good one costs the good one nothing
    g = tmp_path / "good.log"
    g.write_bytes(b"".join(GOOD))
    s2 = cli_ingest(capsys, tmp_path / "db2", p, g)
    assert s2["events"] == 112 and s2["dropped"] == {"empty_file": 1}


def _truncated_gzip(tmp_path: Path) -> tuple[Path, bytes]:
    gz = gzip.compress(b"".join(GOOD))
    cut = gz[: len(gz) // 2]
    p = tmp_path / "registry.log.1.gz"
    p.write_bytes(cut)
    readable = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(cut)
    return p, readable


def test_truncated_gzip_does_not_crash_and_is_counted(tmp_path: Path, capsys) -> None:
    p, readable = _truncated_gzip(tmp_path)
    assert readable.count(b"\n") > 50  # half the stream really holds many good lines
    s = cli_ingest(capsys, tmp_path / "db", p)
    assert s["dropped"].get("truncated") == 1, s
    assert set(s["dropped"]) == {"truncated"}
    rows = cli_dropped(capsys, tmp_path / "db")
    assert [r["reason"] for r in rows] == ["truncated"]


def test_truncated_gzip_keeps_the_good_lines_before_the_cut(tmp_path: Path, capsys) -> None:
    p, readable = _truncated_gzip(tmp_path)
    complete = readable[: readable.rindex(b"\n") + 1]
    prefix = tmp_path / "prefix.log"
    prefix.write_bytes(complete)
    s_gz = cli_ingest(capsys, tmp_path / "db-gz", p)
    s_plain = cli_ingest(capsys, tmp_path / "db-plain", prefix)
    assert s_plain["events"] > 30
    assert s_gz["lines"] == s_plain["lines"] + 1  # + the partial last line
    assert s_gz["events"] == s_plain["events"]
    assert cli_summary(capsys, tmp_path / "db-gz") == cli_summary(capsys, tmp_path / "db-plain")


def test_whole_gzip_equals_plain(tmp_path: Path, capsys) -> None:
    p = tmp_path / "registry.log.gz"
    p.write_bytes(gzip.compress(b"".join(GOOD)))
    s = cli_ingest(capsys, tmp_path / "db", p)
    assert s["events"] == 112 and s["dropped"] == {}
    got = cli_summary(capsys, tmp_path / "db")
    exp = lib.expected("registry-text")
    assert {k: got[k] for k in exp if k != "repositories"} == {k: v for k, v in exp.items() if k != "repositories"}


def test_only_binary_file(tmp_path: Path, capsys) -> None:
    p = tmp_path / "image.png"
    rnd = random.Random(3)
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + rnd.randbytes(200_000))
    s = cli_ingest(capsys, tmp_path / "db", p)
    assert s["events"] == 0
    assert lib.accounting_gap(s) == 0
    assert s["dropped"].get("binary", 0) > 0


def test_odd_raw_quote_does_not_swallow_following_records(tmp_path: Path, capsys) -> None:
    """2.7/2.8 upstream and Harbor print inner quotes raw (domain.md §1); a JSON decode error
    in err.detail (`invalid character '"' ...`) has an odd number of them."""
    odd = lib.logrus_line(
        "2026-11-30T01:40:36.5Z",
        "error",
        "response completed with error",
        lib.request_fields(
            "0b0b0b0b-0000-4000-8000-000000000001",
            "PUT",
            "/v2/zz/bad/manifests/1",
            ip="10.9.9.9",
            ua="docker/18.09",
            **{
                "auth.user.name": "ci-bot",
                "err.code": "manifest invalid",
                "err.detail": "invalid character '\"' after object key:value pair",
                "err.message": "manifest invalid",
                "http.response.status": 400,
                "http.response.written": 10,
                "vars.name": "zz/bad",
                "vars.reference": "1",
            },
        ),
        escape=False,
    )
    assert odd.count('"') % 2 == 1
    p = tmp_path / "r.log"
    p.write_bytes(odd.encode() + b"\n" + b"".join(GOOD))
    s = cli_ingest(capsys, tmp_path / "db", p)
    assert s["lines"] == len(GOOD) + 1
    got = cli_summary(capsys, tmp_path / "db")
    exp = lib.expected("registry-text")
    assert got["pushes_failed"] == 1
    assert {k: got[k] for k in exp if k != "repositories"} == {k: v for k, v in exp.items() if k != "repositories"}


def test_value_with_raw_newline_is_one_record(tmp_path: Path, capsys) -> None:
    """A quoted value holding a raw newline makes one record span two physical lines."""
    app = lib.logrus_line(
        "2026-11-30T01:40:36.5Z",
        "error",
        "response completed with error",
        lib.request_fields(
            "r-ml-1",
            "GET",
            "/v2/zz/ml/manifests/1",
            ip="10.9.9.9",
            **{
                "auth.user.name": "bob",
                "err.code": "manifest unknown",
                "err.detail": "first\nsecond",
                "http.response.status": 404,
                "http.response.written": 10,
                "vars.name": "zz/ml",
                "vars.reference": "1",
            },
        ),
        escape=False,
    )
    assert "\n" in app
    from datetime import datetime, timezone

    acc = lib.access_line("10.9.9.9", datetime(2026, 11, 30, 1, 40, 36, tzinfo=timezone.utc), "GET", "/v2/zz/ml/manifests/1", 404, 10, "skopeo/1.9.3")
    p = tmp_path / "ml.log"
    p.write_text(app + "\n" + acc + "\n")
    s = cli_ingest(capsys, tmp_path / "db", p)
    assert s["lines"] == 2 and s["events"] == 1 and s["dropped"] == {}
    got = cli_summary(capsys, tmp_path / "db")
    assert got["pulls_failed"] == 1 and got["repositories"]["zz/ml"]["pulls_failed"] == 1


# -- through the real command line (`python -m regwatch ingest`): each kind of bad input gives
# one clear message on stderr naming the file and the 1-based line, and every good line
# around it is stored ------------------------------------------------------------------------
GOOD_EVENTS = 112  # registry-text.expected.json


def _ingest_cli(tmp_path: Path, db: str, *paths: Path) -> tuple[dict, list[str], str]:
    # paths relative to the working directory, as a user types them (messages repeat them)
    names = [str(p.relative_to(tmp_path)) for p in paths]
    proc = lib.run_cli("ingest", "--db", str(tmp_path / db), "--json", "--quiet", *names, cwd=tmp_path, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    warnings = [l for l in proc.stderr.splitlines() if l.startswith("regwatch: warning: ")]
    return json.loads(proc.stdout), warnings, proc.stderr


def _summary_cli(tmp_path: Path, db: str) -> dict:
    proc = lib.run_cli("summary", "--db", str(tmp_path / db), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _dropped_cli(tmp_path: Path, db: str) -> list[dict]:
    proc = lib.run_cli("dropped", "--db", str(tmp_path / db), "--limit", "100000", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]


def _good_only(tmp_path: Path) -> tuple[dict, dict]:
    p = tmp_path / "good-only.log"
    p.write_bytes(b"".join(GOOD))
    stats, warnings, _ = _ingest_cli(tmp_path, "db-good", p)
    assert warnings == [] and stats["events"] == GOOD_EVENTS and stats["dropped"] == {}
    return stats, _summary_cli(tmp_path, "db-good")


def _between_good_lines(tmp_path: Path, name: str, bad: bytes, at: int = 100) -> Path:
    """The sample with ``bad`` (one line) inserted as line ``at + 1``."""
    p = tmp_path / name
    p.write_bytes(b"".join(GOOD[:at]) + bad + b"\n" + b"".join(GOOD[at:]))
    return p


def _assert_all_good_lines_stored(tmp_path: Path, stats: dict, bad_lines: int) -> None:
    good_stats, good_summary = _good_only(tmp_path)
    assert stats["lines"] == good_stats["lines"] + bad_lines, stats
    assert stats["events"] == GOOD_EVENTS and stats["duplicates"] == 0, stats
    assert lib.accounting_gap(stats) == 0
    assert _summary_cli(tmp_path, "db") == good_summary


def test_cli_fifty_megabyte_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    p = _between_good_lines(tmp_path, "huge.log", b"A" * (50 << 20))
    stats, warnings, _ = _ingest_cli(tmp_path, "db", p)
    assert stats["dropped"] == {"too_long": 1}, stats
    assert warnings == [
        (
            "regwatch: warning: huge.log: line 101: a line of 52,428,800 bytes, over the 1,048,576-byte limit "
            "(its first 4,096 bytes are kept); that line is dropped, the lines around it are kept"
        )
    ]
    _assert_all_good_lines_stored(tmp_path, stats, 1)
    (row,) = _dropped_cli(tmp_path, "db")
    assert row["line"] == 101 and row["reason"] == "too_long" and row["text"] == "A" * 4096


def test_cli_nul_bytes_inside_a_line_are_named_by_file_and_line(tmp_path: Path) -> None:
    line = GOOD[40].rstrip(b"\n")
    p = _between_good_lines(tmp_path, "nul.log", line[:25] + b"\x00\x00\x00" + line[25:], at=150)
    stats, warnings, _ = _ingest_cli(tmp_path, "db", p)
    assert stats["dropped"] == {"binary": 1}, stats
    assert warnings == [
        (
            "regwatch: warning: nul.log: line 151: NUL bytes (3 in the line): binary data, not text; "
            "that line is dropped, the lines around it are kept"
        )
    ]
    _assert_all_good_lines_stored(tmp_path, stats, 1)
    (row,) = _dropped_cli(tmp_path, "db")
    assert row["line"] == 151 and row["offset"] == len(b"".join(GOOD[:150]))


def test_cli_invalid_utf8_is_named_by_file_line_and_column(tmp_path: Path) -> None:
    line = GOOD[7].rstrip(b"\n")
    p = _between_good_lines(tmp_path, "latin1.log", line[:30] + b"caf\xe9" + line[30:], at=3)
    stats, warnings, _ = _ingest_cli(tmp_path, "db", p)
    assert stats["dropped"] == {"invalid_utf8": 1}, stats
    assert warnings == [
        (
            "regwatch: warning: latin1.log: line 4: invalid UTF-8 (byte 0xe9 at column 34); "
            "that line is dropped, the lines around it are kept"
        )
    ]
    _assert_all_good_lines_stored(tmp_path, stats, 1)
    assert [r["line"] for r in _dropped_cli(tmp_path, "db")] == [4]


def test_cli_binary_files_are_named_and_cost_the_good_file_nothing(tmp_path: Path) -> None:
    elf = next((Path(p) for p in ("/bin/true", "/usr/bin/true", "/bin/ls") if Path(p).exists()), None)
    assert elf is not None and elf.read_bytes()[:4] == b"\x7fELF"
    small_elf = tmp_path / "a-tool"
    small_elf.write_bytes(elf.read_bytes())
    noise = tmp_path / "b-noise.bin"
    noise.write_bytes(b"\x00" + random.Random(5).randbytes(100_000))
    good = tmp_path / "c-registry.log"
    good.write_bytes(b"".join(GOOD))
    stats, warnings, _ = _ingest_cli(tmp_path, "db", small_elf, noise, good)
    assert stats["files"] == 3 and stats["events"] == GOOD_EVENTS, stats
    assert lib.accounting_gap(stats) == 0
    # one line per file and kind of problem; each names the file and its first bad line
    assert warnings and all(w.startswith(("regwatch: warning: a-tool: line ", "regwatch: warning: b-noise.bin: line ")) for w in warnings), warnings
    assert warnings[0].startswith("regwatch: warning: a-tool: line 1: NUL bytes (")
    assert any(w.startswith("regwatch: warning: b-noise.bin: line 1: NUL bytes (") for w in warnings)
    n_binary_lines = stats["dropped"]["binary"]
    assert sum(int(w.split("; ")[1].split()[0].replace(",", "")) for w in warnings if "binary lines in this file" in w) == n_binary_lines
    assert not any("c-registry.log" in w for w in warnings)
    _, good_summary = _good_only(tmp_path)
    assert _summary_cli(tmp_path, "db") == good_summary
    rows = _dropped_cli(tmp_path, "db")
    assert all(isinstance(r.get("line"), int) and r["line"] >= 1 for r in rows if r["reason"] in ("binary", "invalid_utf8"))


def test_cli_truncated_gzip_is_named_by_file_and_line_and_keeps_the_lines_before(tmp_path: Path) -> None:
    p, readable = _truncated_gzip(tmp_path)
    complete = readable[: readable.rindex(b"\n") + 1]
    partial_line = complete.count(b"\n") + 1
    stats, warnings, _ = _ingest_cli(tmp_path, "db", p)
    assert stats["dropped"] == {"truncated": 1}, stats
    assert warnings == [
        (
            f"regwatch: warning: {p.name}: line {partial_line}: truncated gzip (compressed file ended before the "
            "end-of-stream marker was reached): the file ends inside this line; that partial line is dropped, "
            "the lines before it are kept"
        )
    ]
    prefix = tmp_path / "prefix.log"
    prefix.write_bytes(complete)
    s_plain, w_plain, _ = _ingest_cli(tmp_path, "db-plain", prefix)
    assert w_plain == [] and s_plain["events"] > 30
    assert stats["lines"] == s_plain["lines"] + 1 and stats["events"] == s_plain["events"]
    assert _summary_cli(tmp_path, "db") == _summary_cli(tmp_path, "db-plain")
    (row,) = _dropped_cli(tmp_path, "db")
    assert row["line"] == partial_line and row["offset"] == len(complete)


def test_cli_bad_line_after_a_resume_gets_its_line_in_the_whole_file(tmp_path: Path) -> None:
    """A second ingest reads on from the checkpoint; the line number still counts from the
    file's start (the newlines before the checkpoint are counted only because a problem came)."""
    p = tmp_path / "growing.log"
    p.write_bytes(b"".join(GOOD[:200]))
    first, warnings, _ = _ingest_cli(tmp_path, "db", p)
    assert warnings == [] and first["lines"] == 200
    with open(p, "ab") as fh:
        fh.write(b"oops \xff\xfe\x00 garbage\n" + b"".join(GOOD[200:]))
    second, warnings, _ = _ingest_cli(tmp_path, "db", p)
    assert second["dropped"] == {"binary": 1}, second
    assert warnings == [
        (
            "regwatch: warning: growing.log: line 201: NUL bytes (1 in the line): binary data, not text; "
            "that line is dropped, the lines around it are kept"
        )
    ]
    assert first["events"] + second["events"] == GOOD_EVENTS


def test_cli_many_bad_files_give_bounded_messages(tmp_path: Path) -> None:
    """One message per file and kind, at most 20, then one line saying how many more."""
    paths = []
    for i in range(25):
        p = tmp_path / f"bad-{i:02d}.log"
        p.write_bytes(GOOD[i] + b"nul\x00here %d\n" % i + GOOD[i + 1])  # distinct files (own fingerprints)
        paths.append(p)
    stats, warnings, _ = _ingest_cli(tmp_path, "db", *paths)
    assert stats["dropped"] == {"binary": 25}, stats
    assert len(warnings) == 21
    assert [w.split(": ")[2] for w in warnings[:20]] == [f"bad-{i:02d}.log" for i in range(20)]
    assert all(": line 2: NUL bytes (1 in the line)" in w for w in warnings[:20])
    assert warnings[20] == (
        "regwatch: warning: 5 more kind(s) of bad input in 5 file(s); "
        "`regwatch dropped` lists every dropped line with its file and line"
    )


# lines up to the 1 MiB limit are parsed: no pattern may cost more than linear time on
# them (a stack-frame pattern that split at every dot took 130 s on a 400 KB "a.a.a..."
# line before it was rewritten). Each head is a form the auto parser dispatches on.
_HEADS = [
    "", "        ", "\t", 'time="2024-01-01T00:00:00Z" level=info msg="', 'time="2024-01-01T00:00:00Z" level=info msg=x ',
    "Mar  5 11:00:08 host core[1]: ", "Mar  5 11:00:08 host registry[1]: ", "Mar  5 11:00:08 host proxy[1]: ",
    "2024-01-01T00:00:00Z [INFO] [/a.go:1]: ", "2024-01-01T00:00:00.123456789Z ", '{"level":"x",',
    '1.2.3.4 - - [05/Mar/2024:11:00:10 +0000] "GET /', "2024/01/01 00:00:00 ", "redis: ", "find: '/", "  -a, --",
    "2024-01-01T00:00:00.1Z stdout F ", '{"log":"',
]
_ATOMS = [
    "a.", "a(", "a)", '"', '\\"', "=", " k=v", " k=", "[", "]", ":", "/", "%2", "#0", " ", "\t", "a ", "- ", "0x",
    "{", "}", ",", 'a="', "\\", ".go:1 ", "(a)", "[a]", "a.(", "1.", "1:", "a-", "@", "|", "*", "x://", "eyJ",
    "pass=", "GET /", ' HTTP/1.1"', "#033[", "Z ", "00:",
]


def test_no_long_line_hangs_the_parser() -> None:
    import time

    from regwatch.config import Config
    from regwatch.events import RawLine
    from regwatch.formats import make_parser

    parser = make_parser("auto", Config())
    slow = []
    for head in _HEADS:
        for atom in _ATOMS:
            text = head + atom * (60_000 // len(atom))
            t0 = time.perf_counter()
            parser.parse(RawLine("x", "x", text, "fp", 0))
            took = time.perf_counter() - t0
            if took > 1.0:  # linear work on 60 KB is milliseconds; quadratic is seconds
                slow.append((head, atom, round(took, 2)))
    assert not slow, slow
