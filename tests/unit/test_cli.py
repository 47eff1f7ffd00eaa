"""The `regwatch` command line: through ``regwatch.cli.main`` and ``python -m regwatch``."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import regwatch_testlib as lib
from regwatch.cli import main
from regwatch.clock import FixedClock

TEXT = lib.SAMPLES / "registry-text.log"
JSON = lib.SAMPLES / "registry-json.log"
EXP = lib.expected("registry-text")
# the samples hold no TLS handshake error (the expectation files predate the counter)
TOP = {**{k: v for k, v in EXP.items() if k != "repositories"}, "tls_handshake_errors": 0}


def run(capsys, *argv: str, clock=None) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv), clock=clock) if clock is not None else main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def ingest_json(capsys, db: Path, *paths, extra=()) -> dict:
    rc, out, err = run(capsys, "ingest", "--db", str(db), "--json", "--quiet", *extra, *map(str, paths))
    assert rc == 0, err
    return json.loads(out)


def summary_json(capsys, db: Path, *extra: str, clock=None) -> dict:
    rc, out, err = run(capsys, "summary", "--db", str(db), "--json", *extra, clock=clock)
    assert rc == 0, err
    return json.loads(out)


def top(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "repositories"}


@pytest.fixture(scope="module")
def text_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("cli") / "db"
    lib.ingest_files([TEXT], db)
    return db


# -- ingest -----------------------------------------------------------------------------------
def test_ingest_json_via_python_m(tmp_path: Path) -> None:
    proc = lib.run_cli("ingest", "--db", str(tmp_path / "db"), "--json", str(TEXT))
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert {"lines", "events", "duplicates", "dropped"} <= set(d)
    assert isinstance(d["dropped"], dict)
    assert d["lines"] == 316 == len(TEXT.read_text().splitlines())
    assert d["events"] == 112  # one per request: 112 access lines
    assert d["duplicates"] == 0 and d["dropped"] == {}
    assert "Traceback" not in proc.stderr


def test_reingest_adds_nothing_with_checkpoint_and_from_start(tmp_path: Path, capsys) -> None:
    db = tmp_path / "db"
    first = ingest_json(capsys, db, TEXT)
    assert first["events"] == 112
    again = ingest_json(capsys, db, TEXT)
    # the checkpoint skips what was read; only the held tail (a request whose lines may
    # still be completed by appended lines) is read again, and it adds nothing
    assert again["events"] == 0 and again["lines"] < first["lines"]
    assert lib.accounting_gap(first) == lib.accounting_gap(again) == 0
    forced = ingest_json(capsys, db, TEXT, extra=("--from-start",))
    assert forced["events"] == 0
    assert forced["lines"] == first["lines"]
    assert forced["duplicates"] == first["events"]
    assert top(summary_json(capsys, db)) == {**TOP, "pushes_failed": 0}


def test_rotated_gzipped_copy_adds_nothing(tmp_path: Path, capsys) -> None:
    db = tmp_path / "db"
    live = tmp_path / "registry.log"
    shutil.copy(TEXT, live)
    assert ingest_json(capsys, db, live)["events"] == 112
    rotated = tmp_path / "registry.log.1.gz"
    rotated.write_bytes(gzip.compress(TEXT.read_bytes()))
    assert ingest_json(capsys, db, rotated)["events"] == 0
    assert ingest_json(capsys, db, rotated, extra=("--from-start",))["duplicates"] == 112
    assert top(summary_json(capsys, db)) == {**TOP, "pushes_failed": 0}


def _split_points() -> dict[str, int]:
    """Cut points (index of the first line of the second part) where a naive reader would
    lose or double a record: inside a request (after its app line(s), before its access
    line), and just after a pull that may still turn out to be a delete lookup."""
    lines = TEXT.read_text().splitlines()
    pts: dict[str, int] = {}

    def first(pred) -> int:
        return next(i for i, l in enumerate(lines) if pred(l))

    pts["challenge"] = first(lambda l: '"GET /v2/ HTTP/1.1" 401' in l)
    pts["push"] = first(lambda l: l.startswith("127.0.0.1") and '"PUT /v2/' in l and "/manifests/" in l)
    pts["upload"] = first(lambda l: l.startswith("127.0.0.1") and '"PUT /v2/' in l and "/blobs/uploads/" in l)
    pts["after-pull"] = first(lambda l: l.startswith("127.0.0.1") and '"GET /v2/' in l and "/manifests/" in l and '" 200 ' in l) + 1
    delete = first(lambda l: l.startswith("127.0.0.1") and '"DELETE /v2/' in l)
    pts["after-lookup"] = max(i for i in range(delete) if lines[i].startswith("127.0.0.1") and '"GET /v2/team-b/api/manifests/1.0' in lines[i]) + 1
    return pts


@pytest.mark.parametrize(
    "where",
    [
        "challenge",
        "push",
        "upload",
        "after-pull",
        # a pull written at the first end, which the DELETE appended later makes a delete
        # lookup: the second ingest replaces the stored record (Store.replace)
        "after-lookup",
    ],
)
def test_growing_log_ingested_in_two_steps_counts_like_once(tmp_path: Path, capsys, where: str) -> None:
    lines = TEXT.read_bytes().splitlines(keepends=True)
    k = _split_points()[where]
    if where in ("challenge", "push", "upload"):
        assert lines[k - 1].startswith(b"time=") and lines[k].startswith(b"127.0.0.1")
    else:
        assert lines[k - 1].startswith(b"127.0.0.1") and b" 200 " in lines[k - 1]
    live = tmp_path / "registry.log"
    live.write_bytes(b"".join(lines[:k]))
    db = tmp_path / "db"
    ingest_json(capsys, db, live)
    with open(live, "ab") as fh:
        fh.write(b"".join(lines[k:]))
    ingest_json(capsys, db, live)
    assert top(summary_json(capsys, db)) == {**TOP, "pushes_failed": 0}


def test_directories_globs_and_gzip(tmp_path: Path, capsys) -> None:
    logs = tmp_path / "logs"
    (logs / "sub").mkdir(parents=True)
    shutil.copy(TEXT, logs / "registry.log")
    (logs / "sub" / "registry-json.log.gz").write_bytes(gzip.compress(JSON.read_bytes()))
    (logs / ".hidden.log").write_text("not a log\n")
    double = {k: 2 * v for k, v in TOP.items()}
    # a directory, walked recursively
    s = ingest_json(capsys, tmp_path / "db1", logs)
    assert s["files"] == 2 and s["events"] == 224 and s["dropped"] == {}
    assert top(summary_json(capsys, tmp_path / "db1")) == {**double, "pushes_failed": 0}
    # a recursive glob, plus the same file named twice
    s = ingest_json(capsys, tmp_path / "db2", f"{logs}/**/*.log*", logs / "registry.log")
    assert s["files"] == 2 and s["events"] == 224
    # a plain glob
    s = ingest_json(capsys, tmp_path / "db3", f"{logs}/*.log")
    assert s["files"] == 1 and s["events"] == 112


# -- summary ----------------------------------------------------------------------------------
SUMMARY_KEYS = {*lib.ISSUE_COUNT_KEYS, "repositories"}


def test_summary_json_shape(text_db: Path, capsys) -> None:
    d = summary_json(capsys, text_db)
    assert SUMMARY_KEYS <= set(d)
    for k, v in d.items():
        if k == "repositories":
            assert isinstance(v, dict) and set(v) == set(EXP["repositories"])
            for counts in v.values():
                assert all(type(x) is int for x in counts.values())
        else:
            assert type(v) is int, k
    assert top(d) == {**TOP, "pushes_failed": 0}


def test_summary_text_output(text_db: Path, capsys) -> None:
    rc, out, err = run(capsys, "summary", "--db", str(text_db))
    assert rc == 0 and err == ""
    assert "team-b/api" in out and "challenges" in out and "25" in out


def _first_delete_time(db: Path, capsys) -> datetime:
    rc, out, _ = run(capsys, "audit", "deletes", "--db", str(db), "--format", "json")
    rows = json.loads(out)
    return datetime.fromisoformat(rows[0]["time"].replace("Z", "+00:00"))


def test_since_until_partition_the_events(text_db: Path, capsys) -> None:
    t = _first_delete_time(text_db, capsys)
    iso = t.isoformat().replace("+00:00", "Z")
    whole = summary_json(capsys, text_db)
    after = summary_json(capsys, text_db, "--since", iso)
    before = summary_json(capsys, text_db, "--until", iso)
    for k in top(whole):
        assert after[k] + before[k] == whole[k], k
    # every delete request is at or after the first one
    assert (after["deletes"], after["deletes_failed"]) == (EXP["deletes"], EXP["deletes_failed"])
    assert (before["deletes"], before["deletes_failed"]) == (0, 0)
    assert before["pushes"] == EXP["pushes"]  # the pushes all came first (ops.txt)
    # a zone offset means the same instant
    shifted = (t + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "+02:00"
    assert summary_json(capsys, text_db, "--since", shifted) == after


@pytest.mark.parametrize("rel", ["7d", "168h", "1w", f"{7 * 24 * 60}m"])
def test_relative_times_with_a_fixed_clock(text_db: Path, capsys, rel: str) -> None:
    t = _first_delete_time(text_db, capsys)
    clock = FixedClock(t + timedelta(days=7))
    iso = t.isoformat()
    assert summary_json(capsys, text_db, "--since", rel, clock=clock) == summary_json(capsys, text_db, "--since", iso)
    assert summary_json(capsys, text_db, "--until", rel, clock=clock) == summary_json(capsys, text_db, "--until", iso)
    # and a week later the window is empty
    later = FixedClock(t + timedelta(days=30))
    empty = summary_json(capsys, text_db, "--since", rel, clock=later)
    assert all(v == 0 for v in top(empty).values()) and empty["repositories"] == {}


def test_date_only_bounds(text_db: Path, capsys) -> None:
    assert top(summary_json(capsys, text_db, "--since", "2026-11-30")) == {**TOP, "pushes_failed": 0}
    d = summary_json(capsys, text_db, "--since", "2026-12-01")
    assert all(v == 0 for v in top(d).values())
    d = summary_json(capsys, text_db, "--until", "2026-11-30")
    assert all(v == 0 for v in top(d).values())


@pytest.mark.parametrize(
    ("glob", "repos"),
    [
        ("team-*", ["team-a/app", "team-b/api"]),
        ("library/*", ["library/alpine"]),
        ("team-?/app", ["team-a/app"]),
        ("team-[!a]/*", ["team-b/api"]),
        ("*", ["library/alpine", "team-a/app", "team-b/api"]),
        ("nothing/*", []),
    ],
)
def test_repo_glob(text_db: Path, capsys, glob: str, repos: list[str]) -> None:
    d = summary_json(capsys, text_db, "--repo", glob)
    assert sorted(d["repositories"]) == repos
    for k in lib.ISSUE_COUNT_KEYS:
        # repository-less records (challenges, the /v2/ login failure) are outside any glob
        assert d[k] == sum(EXP["repositories"][r][k] for r in repos), k
        for r in repos:
            assert d["repositories"][r][k] == EXP["repositories"][r][k]


# -- audit deletes ----------------------------------------------------------------------------
def test_audit_deletes_formats(text_db: Path, capsys) -> None:
    rc, out, err = run(capsys, "audit", "deletes", "--db", str(text_db), "--format", "json")
    assert rc == 0, err
    rows = json.loads(out)
    assert [(r["repository"], r["status"], r["outcome"]) for r in rows] == [
        ("team-b/api", 202, "success"),
        ("team-a/app", 404, "failure"),
        ("team-a/app", 400, "failure"),
        ("team-b/api", 202, "success"),
    ]
    rc, out, _ = run(capsys, "audit", "deletes", "--db", str(text_db), "--format", "csv")
    assert rc == 0
    crows = list(csv.DictReader(io.StringIO(out)))
    assert len(crows) == 4
    assert {"time", "user", "repository", "reference", "client_ip", "outcome", "status"} <= set(crows[0])
    assert [(r["repository"], r["status"], r["reference"]) for r in crows] == [(r["repository"], str(r["status"]), r["reference"]) for r in rows]
    rc, out, _ = run(capsys, "audit", "deletes", "--db", str(text_db), "--format", "table")
    assert rc == 0
    lines = out.strip().splitlines()
    assert "REPOSITORY" in lines[0] and "OUTCOME" in lines[0]
    assert lines[-1] == "4 delete(s)"
    assert len(lines) == 1 + 4 + 1
    rc, out, _ = run(capsys, "audit", "deletes", "--db", str(text_db))  # table is the default
    assert out.strip().splitlines()[-1] == "4 delete(s)"


def test_audit_deletes_filters(text_db: Path, capsys) -> None:
    def rows(*extra):
        rc, out, err = run(capsys, "audit", "deletes", "--db", str(text_db), "--format", "json", *extra)
        assert rc == 0, err
        return json.loads(out)

    # 2.8 logs name the user only on failed requests (domain.md §1): the raw DELETEs by ci-bot
    by_ci = rows("--user", "ci-bot")
    assert [(r["status"], r["user"]) for r in by_ci] == [(404, "ci-bot"), (400, "ci-bot")]
    assert rows("--user", "alice") == []
    assert [r["status"] for r in rows("--repo", "team-b/*")] == [202, 202]
    t = _first_delete_time(text_db, capsys)
    assert len(rows("--since", (t + timedelta(microseconds=1)).isoformat())) == 3


# -- store location ---------------------------------------------------------------------------
def test_regwatch_db_env_is_used_without_db_flag(tmp_path: Path) -> None:
    db = tmp_path / "envdb"
    env = lib.cli_env(REGWATCH_DB=str(db), HOME=str(tmp_path / "home"))
    p = lib.run_cli("ingest", "--json", str(TEXT), env=env)
    assert p.returncode == 0, p.stderr
    assert (db / "manifest.json").exists()
    assert not (tmp_path / "home").exists()
    p = lib.run_cli("summary", "--json", env=env)
    assert p.returncode == 0 and top(json.loads(p.stdout)) == {**TOP, "pushes_failed": 0}


def test_regwatch_db_env_in_process(tmp_path: Path, capsys, monkeypatch) -> None:
    db = tmp_path / "envdb"
    monkeypatch.setenv("REGWATCH_DB", str(db))
    rc, out, err = run(capsys, "ingest", "--json", "--quiet", str(TEXT))
    assert rc == 0, err
    assert json.loads(out)["events"] == 112
    assert (db / "manifest.json").exists()
    rc, out, _ = run(capsys, "check")
    assert rc == 0 and "112" in out and str(db) in out
    # --db wins over the environment: a store that does not exist is an error, not zeros
    rc, out, err = run(capsys, "summary", "--db", str(tmp_path / "other"), "--json")
    assert rc != 0 and str(tmp_path / "other") in err and out == ""
    assert summary_json(capsys, db)["pulls"] == EXP["pulls"]


# -- errors: exit code, exactly one line naming the bad value, no traceback -------------------------
def _unprivileged(cmd: list[str]) -> list[str]:
    """Run as a process that DAC really applies to, even when the tests run as root."""
    if os.geteuid() != 0:
        return cmd
    return ["unshare", "--user", "--map-root-user", *cmd]


def _userns_ok() -> bool:
    if os.geteuid() != 0:
        return True
    try:
        return subprocess.run(["unshare", "--user", "--map-root-user", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _assert_one_line_error(proc: subprocess.CompletedProcess[str], value: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert value in lines[0], proc.stderr


def _cli_many(cases: list[list[str]], env=None) -> list[subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda a: lib.run_cli(*a, env=env), cases))


def test_bad_values_give_one_line_errors(tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    missing = str(tmp_path / "no-such.log")
    cases = {
        missing: ["ingest", "--db", db, missing],
        "nope-format": ["ingest", "--db", db, "--format", "nope-format", str(TEXT)],
        "last-tuesday": ["summary", "--db", db, "--since", "last-tuesday"],
        "2026-13-45": ["audit", "deletes", "--db", db, "--until", "2026-13-45"],
        "12x": ["summary", "--db", db, "--until", "12x"],
        "glob-nothing-*.log": ["ingest", "--db", db, str(tmp_path / "glob-nothing-*.log")],
    }
    for value, proc in zip(cases, _cli_many(list(cases.values()))):
        _assert_one_line_error(proc, value)
    assert not Path(db).exists()  # every one of them failed before touching the store


def test_unknown_audit_format_one_line(tmp_path: Path) -> None:
    proc = lib.run_cli("audit", "deletes", "--db", str(tmp_path / "db"), "--format", "xml")
    _assert_one_line_error(proc, "xml")


def test_unreadable_file_is_one_line_error(tmp_path: Path) -> None:
    if os.geteuid() == 0 and not _userns_ok():
        target = "/proc/sys/vm/drop_caches"  # write-only even for root
        if not os.path.exists(target) or os.access(target, os.R_OK):
            pytest.skip("no way to make an unreadable file as root here")
    else:
        target = str(tmp_path / "secret.log")
        shutil.copy(TEXT, target)
        os.chmod(target, 0o000)
        if os.geteuid() == 0:
            os.chown(target, 12345, 12345)
    db = tmp_path / "db"
    import sys

    cmd = _unprivileged([sys.executable, "-m", "regwatch", "ingest", "--db", str(db), target])
    proc = subprocess.run(cmd, cwd=lib.ROOT, env=lib.cli_env(), capture_output=True, text=True, timeout=60)
    _assert_one_line_error(proc, target)
    assert proc.returncode == 3


def test_path_under_unsearchable_directory_is_one_line_error(tmp_path: Path) -> None:
    if not _userns_ok():
        pytest.skip("needs an unprivileged process")
    locked = tmp_path / "locked"
    locked.mkdir()
    shutil.copy(TEXT, locked / "registry.log")
    locked.chmod(0o700)
    if os.geteuid() == 0:
        os.chown(locked / "registry.log", 12345, 12345)
        os.chown(locked, 12345, 12345)
    import sys

    target = str(locked / "registry.log")
    cmd = _unprivileged([sys.executable, "-m", "regwatch", "ingest", "--db", str(tmp_path / "db"), target])
    try:
        proc = subprocess.run(cmd, cwd=lib.ROOT, env=lib.cli_env(), capture_output=True, text=True, timeout=60)
    finally:
        if os.geteuid() == 0:
            os.chown(locked, 0, 0)
    _assert_one_line_error(proc, target)


# -- check, formats, dropped --------------------------------------------------------------------
def test_check(text_db: Path, capsys, tmp_path: Path) -> None:
    rc, out, err = run(capsys, "check", "--db", str(text_db))
    assert rc == 0 and "ok" in out and "112 events" in out
    rc, out, _ = run(capsys, "check", "--db", str(tmp_path / "fresh"))
    assert rc == 0 and "0 events" in out


def test_formats(capsys) -> None:
    rc, out, _ = run(capsys, "formats")
    assert rc == 0
    names = out.split()
    assert {"auto", "distribution"} <= set(names)


def test_dropped_lists_quarantined_lines(tmp_path: Path, capsys) -> None:
    p = tmp_path / "mixed.log"
    good = TEXT.read_text().splitlines(keepends=True)
    p.write_text("".join(good[:20]) + "this is not a registry line password=hunter2\n" + "".join(good[20:]))
    db = tmp_path / "db"
    s = ingest_json(capsys, db, p)
    assert s["dropped"] == {"unparsable": 1}
    rc, out, _ = run(capsys, "dropped", "--db", str(db))
    rows = [json.loads(l) for l in out.splitlines()]
    assert len(rows) == 1
    assert rows[0]["reason"] == "unparsable"
    assert rows[0]["offset"] == len("".join(good[:20]).encode())
    assert "hunter2" not in rows[0]["text"] and rows[0]["text"].startswith("this is not a registry line")
    rc, out, _ = run(capsys, "dropped", "--db", str(tmp_path / "empty-db"))
    assert rc == 0 and out == ""


def test_dropped_limit_zero(tmp_path: Path, capsys) -> None:
    p = tmp_path / "junk.log"
    p.write_text("junk one\njunk two\n")
    db = tmp_path / "db"
    assert ingest_json(capsys, db, p)["dropped"] == {"unparsable": 2}
    rc, out, _ = run(capsys, "dropped", "--db", str(db), "--limit", "1")
    assert len(out.splitlines()) == 1
    rc, out, _ = run(capsys, "dropped", "--db", str(db), "--limit", "0")
    assert out == ""


# -- custom formats from --config ----------------------------------------------------------------
CUSTOM = """\
formats:
  - name: mylb
    pattern: '^%{TIMESTAMP_ISO8601:ts} %{IP:ip} %{NOTSPACE:who} %{WORD:verb} %{NOTSPACE:path} %{INT:code} %{INT:size}$'
    fields: {timestamp: ts, client_ip: ip, user: who, method: verb, uri: path, status: code, bytes: size}
    component: lb
"""
CUSTOM_LOG = """\
2026-11-30T10:00:00Z 10.1.2.3 alice GET /v2/team/x/manifests/1.0 200 500
2026-11-30T10:00:01Z 10.1.2.3 alice GET /v2/team/x/blobs/sha256:aaaa 200 12345
2026-11-30T10:00:02Z 10.1.2.4 bob DELETE /v2/team/x/manifests/sha256:abcd 202 0
2026-11-30T10:00:03Z 10.1.2.5 - GET /v2/ 401 87
2026-11-30T10:00:04Z 10.1.2.5 mallory GET /v2/team/x/manifests/1.0 401 150
2026-11-30T10:00:05+02:00 10.1.2.6 carol PUT /v2/team/y/manifests/2 201 0
this line is not in the format
"""


def test_custom_grok_format(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "regwatch.yaml"
    cfg.write_text(CUSTOM)
    log = tmp_path / "lb.log"
    log.write_text(CUSTOM_LOG)
    db = tmp_path / "db"
    rc, out, _ = run(capsys, "--config", str(cfg), "formats")
    assert "mylb" in out.split()
    rc, out, err = run(capsys, "--config", str(cfg), "ingest", "--db", str(db), "--json", "--quiet", "--format", "mylb", str(log))
    assert rc == 0, err
    s = json.loads(out)
    assert s["lines"] == 7 and s["events"] == 6 and s["dropped"] == {"unparsable": 1}
    d = summary_json(capsys, db)
    assert (d["pulls"], d["bytes_pulled"], d["deletes"], d["pushes"]) == (1, 12345, 1, 1)
    assert (d["challenges"], d["auth_failures"], d["pulls_failed"]) == (1, 1, 1)
    assert set(d["repositories"]) == {"team/x", "team/y"}
    rc, out, _ = run(capsys, "audit", "deletes", "--db", str(db), "--format", "json", "--user", "bob")
    (row,) = json.loads(out)
    assert row["repository"] == "team/x" and row["reference"] == "sha256:abcd" and row["client_ip"] == "10.1.2.4"
    assert row["component"] == "lb" and row["status"] == 202 and row["time"] == "2026-11-30T10:00:02Z"
    # the +02:00 line is stored in UTC
    rc, out, _ = run(capsys, "summary", "--db", str(db), "--json", "--since", "2026-11-30T08:00:05Z", "--until", "2026-11-30T08:00:06Z")
    assert json.loads(out)["pushes"] == 1
    # without --config the format name is unknown
    rc, out, err = run(capsys, "ingest", "--db", str(db), "--format", "mylb", str(log))
    assert rc == 2 and "mylb" in err


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ("formats:\n  - name: x\n    pattern: '%{NO_SUCH_PATTERN:foo}'\n", "NO_SUCH_PATTERN"),
        ("formats:\n  - name: x\n    pattern: '(%{INT:foo}'\n", "(%{INT:foo}"),
        ("formats:\n  - name: x\n    pattern: '%{INT:foo}'\n    fields: {status: bar}\n", "bar"),
        ("formats:\n  - name: x\n    pattern: '%{INT:foo}'\n    fields: {colour: foo}\n", "colour"),
        ("bogus_key: 1\n", "bogus_key"),
        ("store:\n  pth: /tmp/x\n", "pth"),
        ("harbor:\n  host_tz: Mars/Olympus\n", "Mars/Olympus"),
    ],
)
def test_bad_config_fails_before_any_work(tmp_path: Path, capsys, config: str, needle: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(config)
    db = tmp_path / "db"
    rc, out, err = run(capsys, "--config", str(cfg), "ingest", "--db", str(db), str(TEXT))
    assert rc == 2
    assert needle in err
    assert str(cfg) in err
    assert len(err.strip().splitlines()) == 1, err
    assert out == ""
    assert not db.exists()


def test_bad_config_via_python_m_has_no_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("formats:\n  - name: x\n    pattern: '%{NO_SUCH_PATTERN:foo}'\n")
    proc = lib.run_cli("--config", str(cfg), "ingest", "--db", str(tmp_path / "db"), str(TEXT))
    _assert_one_line_error(proc, "NO_SUCH_PATTERN")
    assert proc.returncode == 2 and not (tmp_path / "db").exists()


def test_invalid_yaml_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("store: [\n")
    rc, out, err = run(capsys, "--config", str(cfg), "formats")
    assert rc == 2 and str(cfg) in err
    assert len(err.strip().splitlines()) == 1, err


def test_unknown_key_in_a_format_entry_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("formats:\n  - name: x\n    pattern: '%{IP:ip}'\n    feilds: {client_ip: ip}\n")
    proc = lib.run_cli("--config", str(cfg), "formats")
    assert proc.returncode == 2
    assert "feilds" in proc.stderr


# -- run --------------------------------------------------------------------------------------
def test_run_over_a_samples_directory_counts_the_logs_once(tmp_path: Path, capsys) -> None:
    """A directory walk reads the logs and passes over the notes, *.expected.json, *.ops.txt
    and webhook captures beside them (NOTES.md quotes real log lines verbatim)."""
    d = tmp_path / "distribution"
    shutil.copytree(lib.SAMPLES, d)
    assert (d / "NOTES.md").exists() and (d / "registry-text.expected.json").exists()
    rc, out, err = run(capsys, "run", "--db", str(tmp_path / "db"), str(d))
    assert rc == 0, err
    assert "dropped: none" in out
    got = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in TOP:
            got[parts[0]] = int(parts[1].replace(",", ""))
    want = {k: sum(lib.expected(n).get(k, 0) for n in lib.REGISTRY_LOGS) for k in TOP}
    assert got == want


def test_store_and_checkpoint_problems_are_one_line_errors(tmp_path: Path, capsys) -> None:
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    rc, out, err = run(capsys, "ingest", "--db", str(a_file / "db"), str(TEXT))
    assert rc == 4 and len(err.strip().splitlines()) == 1 and str(a_file / "db") in err
    rc, out, err = run(capsys, "summary", "--db", str(a_file))
    assert rc == 4 and len(err.strip().splitlines()) == 1 and str(a_file) in err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text('{"version": 1, "files": [')
    rc, out, err = run(capsys, "summary", "--db", str(broken))
    assert rc == 4 and len(err.strip().splitlines()) == 1 and "manifest.json" in err
    db = tmp_path / "db"
    ingest_json(capsys, db, TEXT)
    (db / "checkpoint.json").write_text("{garbage")
    rc, out, err = run(capsys, "ingest", "--db", str(db), str(TEXT))
    assert rc == 5 and len(err.strip().splitlines()) == 1 and "checkpoint.json" in err


def test_summary_says_why_harbors_registry_log_alone_counts_nothing(tmp_path: Path, capsys) -> None:
    harbor = lib.SAMPLES.parent / "harbor"
    alone, both = tmp_path / "alone", tmp_path / "both"
    ingest_json(capsys, alone, harbor / "registry.log")
    rc, out, err = run(capsys, "summary", "--db", str(alone))
    assert rc == 0 and "not counted" in err and "proxy.log" in err, err
    assert "pulls" in out
    ingest_json(capsys, both, harbor / "registry.log", harbor / "proxy.log")
    rc, out, err = run(capsys, "summary", "--db", str(both), "--json")
    assert rc == 0 and "not counted" not in err
    assert json.loads(out)["pulls"] > 0
