"""Golden tests: the real registry/skopeo samples must give the counts their scenario performed.

The *.expected.json files are derived from the operations the sample script ran (see
sample_logs/distribution/NOTES.md §7), not from regwatch's output.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import regwatch_testlib as lib
from regwatch.audit import deletes
from regwatch.stores.base import Query

COUNTS_IN_EXPECTED = lib.ISSUE_COUNT_KEYS


@pytest.mark.parametrize("name", lib.REGISTRY_LOGS)
def test_summary_matches_expected(golden, name: str) -> None:
    stats, store = golden[name]
    exp = lib.expected(name)
    got = lib.summary_of(store)
    # every top-level key of the expected file, exactly
    for k, v in exp.items():
        if k == "repositories":
            continue
        assert got[k] == v, f"{name}: {k}: expected {v}, got {got[k]}"
    # the scenario never fails a manifest push
    assert got["pushes_failed"] == 0
    # per repository, every key
    for repo, counts in exp["repositories"].items():
        assert repo in got["repositories"], f"{name}: repository {repo} missing from the summary"
        for k, v in counts.items():
            assert got["repositories"][repo][k] == v, f"{name}: {repo}.{k}: expected {v}, got {got['repositories'][repo][k]}"
    for repo, counts in got["repositories"].items():
        if repo not in exp["repositories"]:
            assert all(v == 0 for v in counts.values()), f"{name}: unexpected repository {repo}: {counts}"


@pytest.mark.parametrize("name", lib.REGISTRY_LOGS)
def test_top_level_is_repos_plus_repoless(golden, name: str) -> None:
    """NOTES §7: challenges and the /v2/ login failure belong to no repository; everything
    else at top level is the sum over repositories."""
    _, store = golden[name]
    got = lib.summary_of(store)
    for k in COUNTS_IN_EXPECTED:
        per_repo = sum(c[k] for c in got["repositories"].values())
        if k in ("challenges", "auth_failures"):
            assert per_repo <= got[k]
        else:
            assert per_repo == got[k], k


@pytest.mark.parametrize("name", lib.REGISTRY_LOGS)
def test_sample_ingest_drops_nothing_unintentionally(golden, name: str) -> None:
    stats, _ = golden[name]
    assert stats["dropped"] == {}, stats
    assert stats["duplicates"] == 0
    assert lib.accounting_gap(stats) == 0, stats


def test_text_and_json_forms_agree(golden) -> None:
    """The same scenario under the text and JSON formatters gives identical summaries."""
    assert lib.summary_of(golden["registry-text"][1]) == lib.summary_of(golden["registry-json"][1])


def test_tty_request_times_come_from_the_log_not_the_file_mtime(tmp_path: Path) -> None:
    """The TTY form has no absolute time; the only absolute times are the access lines'.
    The file's mtime (here set far in the future) must not become a request's time when
    the request's own access line carries the real one."""
    p = tmp_path / "tty.log"
    shutil.copy(lib.SAMPLES / "registry-tty.log", p)
    import os

    os.utime(p, (1_900_000_000, 1_900_000_000))  # 2030-03-17
    _, store = lib.ingest_files([p], tmp_path / "db")
    from datetime import datetime, timedelta

    times = [
        datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S %z")
        for m in re.finditer(r"\[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]", p.read_text(encoding="utf-8"))
    ]
    lo, hi = min(times), max(times) + timedelta(seconds=1)
    evs = [e for e in store.search(Query()) if e.method is not None]
    assert len(evs) == 24  # one per request in the file (24 access lines)
    assert len(times) == 24
    bad = [(e.timestamp, e.method, e.path) for e in evs if not (lo <= e.timestamp <= hi)]
    assert not bad, f"request times outside the log's {lo}..{hi}: {bad}"
    assert all(e.timestamp.utcoffset() == timedelta(0) for e in evs)


# -- garbage collection -----------------------------------------------------------------
_GC_SUMMARY = re.compile(r"^(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion")


@pytest.mark.parametrize("name", ["gc", "gc-json"])
def test_gc_summary_and_deleted_blobs(golden, name: str) -> None:
    stats, store = golden[name]
    exp = lib.expected(name)
    evs = store.search(Query())
    summaries = [e for e in evs if e.action == "gc_summary"]
    assert len(summaries) == 1
    m = _GC_SUMMARY.match(summaries[0].message or "")
    assert m is not None, summaries[0]
    assert int(m.group(1)) == exp["blobs_marked"]
    assert int(m.group(2)) == exp["blobs_eligible"]
    assert int(m.group(3)) == exp["manifests_eligible"]
    assert summaries[0].component == "gc"

    deleted = [e for e in evs if e.action == "gc_delete_blob"]
    assert len(deleted) == exp["blobs_deleted"]
    assert sorted(e.digest for e in deleted) == sorted(exp["eligible_digests"])
    for e in deleted:
        # the digest comes from the storage path .../blobs/sha256/<2 hex>/<hex>
        algo, hexd = e.digest.split(":")
        assert f"/blobs/{algo}/{hexd[:2]}/{hexd}" in (e.message or "")
        assert e.outcome == "success"
    # marking and "eligible" lines are understood (not events, not failures)
    assert not [e for e in evs if e.action in ("pull", "push", "delete")]
    assert stats["events"] == len(evs) == exp["blobs_deleted"] + 1


@pytest.mark.parametrize("name", ["gc", "gc-json"])
def test_gc_output_has_no_unparsable_lines(golden, name: str) -> None:
    stats, _ = golden[name]
    assert stats["dropped"] == {}, stats


# -- audit deletes ------------------------------------------------------------------------
def _expected_deletes(ops: Path) -> list[dict]:
    """DELETE requests the scenario sent, from *.ops.txt (derived by hand from NOTES §2):
    a successful `skopeo delete` sends one DELETE by digest → 202; a failed one (missing
    tag) sends none; `raw DELETE <path> user=U -> NNN` sends exactly that request."""
    out = []
    for line in ops.read_text().splitlines():
        m = re.match(r"^skopeo delete .* docker://[^/]+/(?P<repo>[^:@ ]+)[:@]\S+ -> (?P<res>\w+)$", line)
        if m:
            if m.group("res") == "ok":
                out.append({"repository": m.group("repo"), "status": 202, "outcome": "success"})
            continue
        m = re.match(r"^raw DELETE /v2/(?P<repo>.+)/manifests/(?P<ref>\S+) user=(?P<user>\S+) -> (?P<st>\d+)$", line)
        if m:
            st = int(m.group("st"))
            out.append(
                {
                    "repository": m.group("repo"),
                    "status": st,
                    "outcome": "success" if st < 400 else "failure",
                    "reference": m.group("ref"),
                    "user": m.group("user"),
                }
            )
    return out


def test_audit_deletes_lists_exactly_the_delete_requests(golden) -> None:
    _, store = golden["registry-text"]
    exp = _expected_deletes(lib.SAMPLES / "registry-text.ops.txt")
    assert [e["status"] for e in exp] == [202, 404, 400, 202]  # the parse of ops.txt itself
    rows = deletes(store, Query())
    assert len(rows) == len(exp)
    for row, e in zip(rows, exp):
        for k, v in e.items():
            assert row[k] == v, (k, row, e)
        assert row["client_ip"] == "127.0.0.1"
        assert row["request_id"]
        assert row["source"] == "distribution"
    # successful deletes are by digest (the tag was resolved by the lookup GET first)
    assert all(r["reference"].startswith("sha256:") for r in rows if r["status"] == 202)
    # the failed ones carry the registry's error code
    assert {r["status"]: r["error_code"] for r in rows if r["status"] >= 400} == {
        404: "manifest unknown",
        400: "digest invalid",
    }
    # rows are oldest first
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)


def test_audit_deletes_json_log_matches_text_log(golden) -> None:
    a = deletes(golden["registry-text"][1], Query())
    b = deletes(golden["registry-json"][1], Query())
    keys = ("repository", "reference", "status", "outcome", "user", "error_code")
    # the digests of the text and json runs differ only for the second 202 (other image),
    # so compare everything but the reference of successful deletes
    assert [tuple(r[k] for k in keys if not (k == "reference" and r["status"] == 202)) for r in a] == [
        tuple(r[k] for k in keys if not (k == "reference" and r["status"] == 202)) for r in b
    ]
