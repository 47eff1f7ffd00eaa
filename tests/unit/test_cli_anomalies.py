"""`regwatch audit anomalies` over a real embedded store filled with a seeded fortnight:
the store path (hourly grouped counts) flags what the event path flags."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from test_anomaly import END, SCORED, _is, planted, quiet

from regwatch.anomaly import anomalies, find
from regwatch.cli import main
from regwatch.clock import FixedClock
from regwatch.stores.embedded import EmbeddedStore

ISO = "%Y-%m-%dT%H:%M:%SZ"


def _fill(db: Path, events: list) -> Path:
    store = EmbeddedStore(db)
    try:
        store.write(events)
    finally:
        store.close()
    return db


@pytest.fixture(scope="module")
def planted_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    events, _ = planted(1)
    return _fill(tmp_path_factory.mktemp("anomalies") / "db", events)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv), clock=FixedClock(END))
    out, err = capsys.readouterr()
    return rc, out, err


def test_json_flags_the_planted_hours_like_the_library(capsys: pytest.CaptureFixture[str], planted_db: Path) -> None:
    events, plants = planted(1)
    rc, out, err = run(capsys, "audit", "anomalies", "--db", str(planted_db), "--since", SCORED.strftime(ISO),
                       "--format", "json")
    assert rc == 0, err
    rows = json.loads(out)
    expected = [a.to_dict() for a in find(events, since=SCORED)]
    assert [(r["kind"], r["actor"], r["hour"], r["features"]) for r in rows] == \
        [(r["kind"], r["actor"], r["hour"], r["features"]) for r in expected]
    assert [r["reasons"] for r in rows] == [r["reasons"] for r in expected]
    assert len(rows) >= len(plants)
    for p in plants:
        assert any(r["hour"] == p.hour.strftime(ISO) and (r["actor"] == p.actor or p.actor in r["related"])
                   for r in rows[:5]), p
        row = next(r for r in rows if r["hour"] == p.hour.strftime(ISO) and (r["actor"] == p.actor or p.actor in r["related"]))
        assert any(reason.startswith(p.feature + "=") for reason in row["reasons"])


def test_library_store_path_equals_the_event_path(planted_db: Path) -> None:
    events, plants = planted(1)
    store = EmbeddedStore(planted_db)
    try:
        flags = anomalies(store, since=SCORED, until=END, limit=3)
    finally:
        store.close()
    assert len(flags) == 3
    assert [(a.actor, a.hour, a.features) for a in flags] == \
        [(a.actor, a.hour, a.features) for a in find(events, since=SCORED)[:3]]
    assert all(any(_is(a, p) for p in plants) for a in flags)


def test_table_and_csv_and_the_default_window(capsys: pytest.CaptureFixture[str], planted_db: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGWATCH_DB", str(planted_db))  # no --db: the environment chooses the store
    rc, out, err = run(capsys, "audit", "anomalies")  # the last 7 days before "now" (END)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["KIND", "ACTOR", "HOUR", "SCORE", "REASONS"]
    assert "dev07" in out and "deletes=40" in out
    assert lines[-1].endswith("unusual hour(s) above the threshold")
    n = int(lines[-1].split()[0])
    rc, out, err = run(capsys, "audit", "anomalies", "--format", "csv", "--limit", "2")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2 <= n
    assert float(rows[0]["score"]) > 0.6 and rows[0]["reasons"]


def test_threshold_and_timezone_change_the_flags(capsys: pytest.CaptureFixture[str], planted_db: Path) -> None:
    _, plants = planted(1)
    deploy = plants[3]
    base = ("audit", "anomalies", "--db", str(planted_db), "--since", SCORED.strftime(ISO), "--format", "json")
    rc, out, _ = run(capsys, *base, "--threshold", "0.99")
    assert rc == 0 and json.loads(out) == []

    def deploy_reasons(*extra: str) -> list[str]:
        rc, out, err = run(capsys, *base, *extra)
        assert rc == 0, err
        rows = [r for r in json.loads(out) if r["actor"] == "svc-deploy" and r["hour"] == deploy.hour.strftime(ISO)]
        return [x.split("=")[0] for r in rows for x in r["reasons"]]

    assert "off_hours" in deploy_reasons()  # 01:00 UTC is night in UTC
    assert "off_hours" not in deploy_reasons("--timezone", "Pacific/Honolulu")  # and 15:00 in Honolulu


def test_a_quiet_store_flags_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = _fill(tmp_path / "db", quiet(2))
    rc, out, err = run(capsys, "audit", "anomalies", "--db", str(db), "--since", SCORED.strftime(ISO), "--format", "json")
    assert rc == 0, err
    assert json.loads(out) == []


@pytest.mark.parametrize(("argv", "message"), [
    (("--format", "yaml"), "use --format table, json or csv"),
    (("--work-hours", "nine-five"), "07-20"),
    (("--timezone", "Mars/Olympus"), "Europe/Berlin"),
    (("--since", "yesterday"), "cannot read time 'yesterday'"),
    (("--since", "1d", "--until", "2d"), "earlier --since"),
])
def test_bad_arguments_are_one_line_naming_the_fix(capsys: pytest.CaptureFixture[str], planted_db: Path,
                                                   argv: tuple[str, ...], message: str) -> None:
    rc, out, err = run(capsys, "audit", "anomalies", "--db", str(planted_db), *argv)
    assert rc != 0 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_missing_store_is_an_error_not_an_empty_answer(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = run(capsys, "audit", "anomalies", "--db", str(tmp_path / "nope"))
    assert rc != 0 and "no regwatch store" in err
