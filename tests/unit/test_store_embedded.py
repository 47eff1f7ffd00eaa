"""The embedded (Parquet + DuckDB) store: idempotent writes, lossless compaction, and readers
that never fail or go backwards while another process writes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import regwatch_testlib as lib
from regwatch.events import Event
from regwatch.stores.base import Aggregation, Query
from regwatch.stores.embedded import EmbeddedStore
from regwatch.summary import summarize

T0 = datetime(2026, 11, 30, 0, 0, 0, tzinfo=timezone.utc)


def mk(i: int, *, day: int = 0, repo: str = "r/x", user: str | None = None, tally: str = "pull", repeat: int = 1, nbytes: int | None = None) -> Event:
    return Event(
        id=f"ev-{day}-{i:06d}",
        timestamp=T0 + timedelta(days=day, seconds=i % 86_000, microseconds=i % 1000),
        source="distribution",
        component="registry",
        action="pull" if tally == "pull" else "blob_pull",
        outcome="success",
        tally=tally,
        repository=repo,
        user=user,
        method="GET",
        status=200,
        bytes=nbytes,
        repeat=repeat,
        raw=f"line {i}",
    )


def test_write_is_idempotent(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "db")
    batch = [mk(i) for i in range(100)]
    r1 = s.write(batch)
    assert (r1.written, r1.duplicates) == (100, 0)
    r2 = s.write(batch)
    assert (r2.written, r2.duplicates) == (0, 100)
    # a batch that repeats ids inside itself, and mixes old and new ids
    r3 = s.write([mk(5), mk(5), mk(100), mk(100), mk(101)])
    assert (r3.written, r3.duplicates) == (2, 3)
    evs = s.search(Query())
    assert len(evs) == 102 == len({e.id for e in evs})
    assert summarize(s)["pulls"] == 102


def test_events_round_trip(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "db")
    e = mk(1, user="alice", nbytes=2**40).with_(duration_ms=3.5, error_code="manifest unknown", log_offset=12345, reference="1.0")
    s.write([e])
    (back,) = s.search(Query())
    assert back == e
    assert back.timestamp.tzinfo is not None


def test_search_order_and_filters(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "db")
    evs = [mk(i, repo="team-a/app" if i % 2 else "library/alpine", user="alice" if i % 3 == 0 else None) for i in range(50)]
    s.write(list(reversed(evs)))
    got = s.search(Query())
    assert [e.id for e in got] == [e.id for e in sorted(evs, key=lambda e: (e.timestamp, e.id))]
    cut = evs[20].timestamp
    assert {e.id for e in s.search(Query(since=cut))} == {e.id for e in evs if e.timestamp >= cut}
    assert {e.id for e in s.search(Query(until=cut))} == {e.id for e in evs if e.timestamp < cut}
    assert {e.id for e in s.search(Query(repo="team-*"))} == {e.id for e in evs if e.repository == "team-a/app"}
    assert {e.id for e in s.search(Query(user="alice"))} == {e.id for e in evs if e.user == "alice"}
    assert len(s.search(Query(limit=7))) == 7


def test_aggregate_counts_repeat_and_sums_bytes(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "db")
    s.write([mk(1, repeat=5), mk(2), mk(3, tally="blob_pull", nbytes=1000), mk(4, tally="blob_pull", nbytes=24)])
    rows = {r["tally"]: r for r in s.aggregate(Aggregation(Query(), ("tally",)))}
    assert rows["pull"]["count"] == 6
    assert rows["blob_pull"]["bytes"] == 1024
    summ = summarize(s)
    assert summ["pulls"] == 6 and summ["bytes_pulled"] == 1024


def test_compaction_keeps_every_row(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "db", compact_at=3)
    all_ids = set()
    for b in range(10):
        batch = [mk(b * 37 + i) for i in range(37)] + [mk(b * 11 + i, day=1) for i in range(11)]
        s.write(batch)
        all_ids |= {e.id for e in batch}
    got = s.search(Query())
    assert len(got) == len(all_ids) == 10 * 48
    assert {e.id for e in got} == all_ids
    assert s.count() == len(all_ids)
    s.compact()
    got = s.search(Query())
    assert {e.id for e in got} == all_ids and len(got) == len(all_ids)
    parts = sorted(p.parent.name for p in (tmp_path / "db" / "events").rglob("*.parquet"))
    assert "day=2026-11-30" in parts and "day=2026-12-01" in parts
    # after compaction, ids already stored are still recognised
    r = s.write([mk(0), mk(5), mk(0, day=1)])
    assert r.written == 0 and r.duplicates == 3
    # and a fresh reader sees the same
    assert EmbeddedStore(tmp_path / "db").count() == len(all_ids)


def test_bulk_holds_compaction_back_until_the_run_ends(tmp_path: Path) -> None:
    """An ingest writes inside bulk(): no merge meanwhile (its memory would add to the
    ingest's), every row readable throughout, and one compaction at the end."""
    import json

    s = EmbeddedStore(tmp_path / "db", compact_at=3)

    def files() -> int:
        doc = json.loads((tmp_path / "db" / "manifest.json").read_text())
        return sum(1 for f in doc["files"] if f.get("set", "events") == "events")

    ids: set[str] = set()
    with s.bulk():
        for b in range(7):
            batch = [mk(b * 20 + i) for i in range(20)]
            s.write(batch)
            ids |= {e.id for e in batch}
            assert {e.id for e in EmbeddedStore(tmp_path / "db").search(Query())} == ids
        assert files() == 7
    assert files() < 7
    assert {e.id for e in s.search(Query())} == ids
    # outside bulk(), writes compact as they go again
    for b in range(7, 10):
        s.write([mk(b * 20 + i) for i in range(20)])
    assert files() < 5


def test_bulk_does_not_compact_after_a_failed_run(tmp_path: Path) -> None:
    import json

    s = EmbeddedStore(tmp_path / "db", compact_at=2)
    with pytest.raises(RuntimeError):
        with s.bulk():
            for b in range(4):
                s.write([mk(b * 10 + i) for i in range(10)])
            raise RuntimeError("the ingest failed")
    doc = json.loads((tmp_path / "db" / "manifest.json").read_text())
    assert sum(1 for f in doc["files"] if f.get("set", "events") == "events") == 4
    assert s.count() == 40


def test_idempotent_for_years_before_1000(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "db")
    old = [Event(id=f"old-{i}", timestamp=datetime(999, 1, 1, 0, 0, i, tzinfo=timezone.utc), source="t", component="registry") for i in range(3)]
    assert s.write(old).written == 3
    r = s.write(old)
    assert (r.written, r.duplicates) == (0, 3)


def test_reingest_of_a_year_0999_log_line_adds_nothing(tmp_path: Path) -> None:
    p = tmp_path / "odd.log"
    line = lib.access_line("10.0.0.1", datetime(2026, 1, 1, tzinfo=timezone.utc), "GET", "/v2/a/manifests/1", 200, 1, "ua")
    p.write_text(line.replace("/2026:", "/0999:") + "\n")
    from regwatch.pipeline import IngestOptions, ingest

    s = EmbeddedStore(tmp_path / "db")
    first = ingest([str(p)], s).to_dict()
    assert first["events"] == 1
    again = ingest([str(p)], s, options=IngestOptions(from_start=True)).to_dict()
    assert (again["events"], again["duplicates"]) == (0, 1)


WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime, timedelta, timezone
    sys.path.insert(0, {root!r})
    from regwatch.events import Event
    from regwatch.stores.embedded import EmbeddedStore
    s = EmbeddedStore({db!r}, compact_at=4)
    t0 = datetime(2026, 11, 30, tzinfo=timezone.utc)
    for b in range({batches}):
        evs = [Event(id=f"w-{{b}}-{{i}}", timestamp=t0 + timedelta(seconds=b * 100 + i), source="distribution",
                     component="registry", action="pull", outcome="success", tally="pull", repository="r/x")
               for i in range({size})]
        s.write(evs)
        time.sleep(0.03)
    print("done", flush=True)
    """
)


def test_readers_never_fail_and_never_go_backwards_while_a_process_writes(tmp_path: Path) -> None:
    db = tmp_path / "db"
    batches, size = 12, 100
    reader = EmbeddedStore(db)  # creates the directory; nothing written yet
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(root=str(lib.ROOT), db=str(db), batches=batches, size=size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pulls_seen: list[int] = []
    found_seen: list[int] = []
    errors: list[BaseException] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            running = proc.poll() is None
            try:
                pulls_seen.append(summarize(reader)["pulls"])
                found_seen.append(len(reader.search(Query(repo="r/*"))))
            except Exception as exc:  # noqa: BLE001 - the point of the test
                errors.append(exc)
            if not running:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "done" in out
    assert errors == []
    assert len(pulls_seen) >= 5, "the reader should have overlapped the writer"
    assert pulls_seen == sorted(pulls_seen)
    assert found_seen == sorted(found_seen)
    assert all(n % size == 0 for n in pulls_seen), "a reader saw half a batch"
    assert pulls_seen[-1] == found_seen[-1] == batches * size
    assert len(set(pulls_seen) - {0, batches * size}) >= 1, "no read overlapped the writes"


def _written(tmp_path: Path, evs: list[Event], *, step: int, replay: tuple[int, int]) -> EmbeddedStore:
    """A store (merging every 3 files) given ``evs`` in batches of ``step``, then a replay
    of ``evs[replay[0]:replay[1]]``, which must add nothing to any set."""
    s = EmbeddedStore(tmp_path / "db", compact_at=3)
    for k in range(0, len(evs), step):
        s.write(evs[k : k + step])
    s.write(evs[replay[0] : replay[1]])
    return s


def _mixed(n: int) -> list[Event]:
    """Pulls, deletes, blob deletes and failed deletes over three days and four repositories."""
    out = []
    for i in range(n):
        e = mk(i, day=i % 3, repo=f"team-{'ab'[i % 2]}/svc-{i % 4}", user=["ann", "bob", None][i % 3])
        kind = i % 7
        if kind == 0:
            e = replace(e, action="delete", tally="delete", method="DELETE", status=202)
        elif kind == 1:
            e = replace(e, action="delete", tally="delete_failed", outcome="failure", method="DELETE", status=404)
        elif kind == 2:
            e = replace(e, action="blob_delete", tally="none", method="DELETE", status=202)
        out.append(e)
    return out


@pytest.mark.parametrize(
    "query",
    [
        Query(actions=frozenset({"delete"})),
        Query(actions=frozenset({"delete"}), repo="team-a/*", user="ann"),
        Query(actions=frozenset({"delete", "blob_delete"}), since=T0 + timedelta(days=1), newest_first=True, limit=7),
        Query(actions=frozenset({"delete"}), outcome="failure"),
        Query(actions=frozenset({"delete", "pull"})),  # not all audited: read from the events
    ],
)
def test_audit_side_set_answers_like_a_full_scan(tmp_path: Path, query: Query) -> None:
    """Deletes are also kept in a small side set; reading it must give what filtering
    every event gives, through replays (duplicates) and compaction."""
    s = _written(tmp_path, _mixed(700), step=50, replay=(100, 300))
    everything = s.search(Query(newest_first=query.newest_first))
    want = [
        e
        for e in everything
        if e.action in query.actions
        and (query.user is None or e.user == query.user)
        and (query.repo is None or e.repository.startswith("team-a/"))
        and (query.outcome is None or e.outcome == query.outcome)
        and (query.since is None or e.timestamp >= query.since)
    ][: query.limit]
    assert want, "the scenario must hold rows for this query"
    assert s.search(query) == want
    groups = s.aggregate(Aggregation(query, ("repository", "action")))
    assert sum(g["count"] for g in groups) == sum(
        1 for e in everything if e.action in query.actions and (query.user is None or e.user == query.user)
        and (query.repo is None or e.repository.startswith("team-a/"))
        and (query.outcome is None or e.outcome == query.outcome)
        and (query.since is None or e.timestamp >= query.since)
    )
    assert s.count() == 700  # the side set is not counted twice


def test_side_set_is_used_and_skipped_for_stores_made_before_it(tmp_path: Path) -> None:
    import json

    s = EmbeddedStore(tmp_path / "db")
    s.write(_mixed(70))
    doc = json.loads((tmp_path / "db" / "manifest.json").read_text())
    sets = {f.get("set", "events") for f in doc["files"]}
    assert sets == {"events", "deletes", "rollup"}
    side_rows = sum(f["rows"] for f in doc["files"] if f.get("set") == "deletes")
    assert side_rows == sum(1 for e in _mixed(70) if e.action in ("delete", "blob_delete"))
    # a store written before the side set existed: its manifest names no side set, so
    # every query reads the events, and later writes do not start a partial side set
    old = tmp_path / "old"
    o = EmbeddedStore(old)
    o.write(_mixed(70)[:35])
    m = json.loads((old / "manifest.json").read_text())
    m.pop("side")
    m.pop("rollup")
    m["files"] = [f for f in m["files"] if f.get("set", "events") == "events"]
    (old / "manifest.json").write_text(json.dumps(m))
    o.write(_mixed(70)[35:])
    q = Query(actions=frozenset({"delete"}))
    assert o.search(q) == s.search(q)
    by = Aggregation(Query(since=T0 + timedelta(hours=3)), ("repository", "tally"))
    assert o.aggregate(by) == s.aggregate(by)
    assert all(f.get("set", "events") == "events" for f in json.loads((old / "manifest.json").read_text())["files"])


def _oracle(everything: list[Event], agg: Aggregation) -> list[dict]:
    q = agg.query
    import fnmatch

    sums: dict[tuple, list[int]] = {}
    for e in everything:
        if q.since is not None and e.timestamp < q.since:
            continue
        if q.until is not None and e.timestamp >= q.until:
            continue
        if q.repo is not None and not (e.repository and fnmatch.fnmatchcase(e.repository, q.repo)):
            continue
        if q.tallies is not None and e.tally not in q.tallies:
            continue
        if q.actions is not None and e.action not in q.actions:
            continue
        if q.user is not None and e.user != q.user:
            continue
        key = tuple(getattr(e, g) for g in agg.group_by)
        acc = sums.setdefault(key, [0, 0])
        acc[0] += e.repeat
        acc[1] += e.bytes or 0
    rows = [dict(zip(agg.group_by, k), count=v[0], bytes=v[1]) for k, v in sums.items() if v[0]]
    return sorted(rows, key=lambda r: tuple("" if r[g] is None else str(r[g]) for g in agg.group_by))


@pytest.mark.parametrize(
    "agg",
    [
        Aggregation(Query(), ("repository", "tally", "auth")),
        Aggregation(Query(since=T0 + timedelta(hours=5), until=T0 + timedelta(days=2, hours=3)), ("repository", "tally")),
        Aggregation(Query(since=T0 + timedelta(days=1)), ("tally",)),
        Aggregation(Query(until=T0 + timedelta(hours=20)), ("action",)),
        Aggregation(Query(repo="team-a/*", tallies=frozenset({"pull", "delete"})), ("repository", "tally")),
        Aggregation(Query(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=2)), ()),
        Aggregation(Query(user="ann"), ("tally",)),  # user is not rolled up: read from the events
        Aggregation(Query(), ()),
    ],
)
def test_rollup_aggregates_equal_a_count_of_the_events(tmp_path: Path, agg: Aggregation) -> None:
    """Whole days come from the rollup, partial days at the range's edges from the events;
    the sums must equal counting the events themselves, through replays and compaction."""
    s = EmbeddedStore(tmp_path / "db", compact_at=3)
    evs = [replace(e, repeat=1 + i % 3, bytes=(i * 7) % 500 or None) for i, e in enumerate(_mixed(700))]
    for k in range(0, 700, 50):
        s.write(evs[k : k + 50])
    s.write(evs[200:400])  # replay
    everything = s.search(Query())
    assert len(everything) == 700
    got = s.aggregate(agg)
    key = lambda r: tuple("" if r[g] is None else str(r[g]) for g in agg.group_by)  # noqa: E731
    assert sorted(got, key=key) == _oracle(everything, agg)


def test_dedupe_skips_files_by_id_range_but_never_misses_a_duplicate(tmp_path: Path) -> None:
    s = EmbeddedStore(tmp_path / "db", compact_at=4)
    evs = [mk(i) for i in range(1000)]
    for k in range(0, 1000, 100):
        assert s.write(evs[k : k + 100]).written == 100
    mixed = evs[350:360] + evs[720:725] + [mk(i) for i in range(5000, 5007)]
    r = s.write(mixed)
    assert (r.written, r.duplicates) == (7, 15)
    assert s.count() == 1007


def _auth_mixed(n: int) -> list[Event]:
    """Auth failures, anonymous denials, challenges and plain pulls from a few users and IPs."""
    kinds = ["auth_failure", "anonymous_denial", "challenge", "none", "none"]
    out = []
    for i in range(n):
        auth = kinds[i % 5]
        e = mk(i, day=i % 3, repo=f"team-{'ab'[i % 2]}/svc-{i % 4}", user=[None, "ann", "bob", "eve"][i % 4] if auth != "anonymous_denial" else None)
        e = replace(e, auth=auth, client_ip=f"10.0.0.{i % 6}", status=401 if auth != "none" else 200,
                    outcome="failure" if auth != "none" else "success", tally="pull_failed" if auth != "none" else "pull")
        out.append(e)
    return out


@pytest.mark.parametrize(
    "query",
    [
        Query(auth=frozenset({"auth_failure"})),
        Query(auth=frozenset({"auth_failure", "anonymous_denial"}), since=T0 + timedelta(days=1), newest_first=True, limit=9),
        Query(auth=frozenset({"auth_failure"}), user="ann"),
        Query(auth=frozenset({"auth_failure", "challenge"})),  # challenges are not kept aside: the events
    ],
)
def test_auth_side_set_answers_like_a_full_scan(tmp_path: Path, query: Query) -> None:
    s = _written(tmp_path, _auth_mixed(600), step=40, replay=(50, 250))
    everything = s.search(Query(newest_first=query.newest_first))

    def keep(e: Event) -> bool:
        return (
            e.auth in query.auth
            and (query.user is None or e.user == query.user)
            and (query.since is None or e.timestamp >= query.since)
        )

    want = [e for e in everything if keep(e)][: query.limit]
    assert want
    assert s.search(query) == want
    ranking = s.aggregate(Aggregation(replace(query, limit=None, newest_first=False), ("user", "client_ip")))
    oracle: dict[tuple, int] = {}
    for e in everything:
        if keep(e):
            oracle[(e.user, e.client_ip)] = oracle.get((e.user, e.client_ip), 0) + e.repeat
    assert {(g["user"], g["client_ip"]): g["count"] for g in ranking} == oracle
    assert s.count() == 600


def test_auth_side_set_is_written_and_read_only_where_the_manifest_names_it(tmp_path: Path) -> None:
    import json

    s = EmbeddedStore(tmp_path / "db")
    s.write(_auth_mixed(50))
    doc = json.loads((tmp_path / "db" / "manifest.json").read_text())
    assert {f.get("set", "events") for f in doc["files"]} == {"events", "auth", "rollup"}
    assert s._set_for(doc, Query(auth=frozenset({"auth_failure"}))) == "auth"
    assert s._set_for(doc, Query(auth=frozenset({"challenge"}))) == "events"
    assert sum(f["rows"] for f in doc["files"] if f.get("set") == "auth") == sum(
        1 for e in _auth_mixed(50) if e.auth in ("auth_failure", "anonymous_denial")
    )
    # a store made when only the deletes side set existed keeps reading its events
    old = tmp_path / "old"
    o = EmbeddedStore(old)
    o.write(_auth_mixed(50)[:20])
    m = json.loads((old / "manifest.json").read_text())
    m["side"] = {"deletes": m["side"]["deletes"]}
    m["files"] = [f for f in m["files"] if f.get("set") != "auth"]
    (old / "manifest.json").write_text(json.dumps(m))
    o.write(_auth_mixed(50)[20:])
    q = Query(auth=frozenset({"auth_failure"}))
    assert o.search(q) == s.search(q)
    assert not any(f.get("set") == "auth" for f in json.loads((old / "manifest.json").read_text())["files"])


@pytest.mark.parametrize("newest_first", [False, True])
def test_a_search_with_a_small_limit_finds_the_same_rows_in_two_passes(tmp_path: Path, monkeypatch, newest_first: bool) -> None:
    """Searches with a small limit find their rows first and read whole rows after; the
    result (rows, order, ties broken by id) is what one pass gives, and a file retired
    between the passes falls back to one pass."""
    import duckdb

    s = EmbeddedStore(tmp_path / "db", compact_at=3)
    evs = _mixed(500)
    # many equal timestamps, so the order rests on the id
    evs = [replace(e, timestamp=T0 + timedelta(minutes=(i % 40))) for i, e in enumerate(evs)]
    for k in range(0, 500, 60):
        s.write(evs[k : k + 60])
    for q in (Query(newest_first=newest_first), Query(actions=frozenset({"delete"}), newest_first=newest_first),
              Query(repo="team-a/*", since=T0 + timedelta(minutes=5), newest_first=newest_first)):
        whole = s.search(q)
        for limit in (1, 17, 200):
            assert s.search(replace(q, limit=limit)) == whole[:limit]
    q = Query(newest_first=newest_first, limit=25)
    want = s.search(q)

    def gone(hits):  # noqa: ANN001
        raise duckdb.IOException("file retired")

    monkeypatch.setattr(s, "_fetch_rows", gone)
    assert s.search(q) == want


def test_replace_rewrites_only_the_files_of_changed_rows_and_keeps_the_rollup_exact(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "db")
    day0 = [mk(i, day=0, nbytes=10) for i in range(200)]
    day1 = [mk(i, day=1, nbytes=10) for i in range(200)]
    store.write(day0)
    store.write(day1)
    names = lambda: sorted(f["name"] for f in store._load_manifest()["files"])  # noqa: E731
    before = names()
    # unchanged rows: nothing is rewritten
    res = store.replace(day0[:5])
    assert (res.written, res.duplicates) == (0, 5)
    assert names() == before
    # one changed row of day 1: only day 1's files (and a rollup delta) change
    lookup = replace(day1[7], action="delete_lookup", tally="none")
    res = store.replace([lookup])
    assert (res.written, res.duplicates) == (0, 1)
    after = names()
    assert [n for n in before if "day=2026-11-30" in n and n.startswith("events/")] == [
        n for n in after if "day=2026-11-30" in n and n.startswith("events/")
    ]
    assert store.count() == 400
    s = summarize(store, Query())
    assert s["pulls"] == 399
    got = [e for e in store.search(Query()) if e.id == lookup.id]
    assert got == [lookup]
    store.compact()  # the rollup's negative delta merges into the day's counts
    assert summarize(store, Query())["pulls"] == 399
    store.close()
