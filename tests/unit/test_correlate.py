"""regwatch.correlate.Correlator: each request counted once; delete lookups are not pulls."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import regwatch_testlib as lib
from regwatch.correlate import Correlator
from regwatch.events import Event, RawLine
from regwatch.parsing.distribution import DistributionParser

BASE = datetime(2026, 11, 30, 1, 40, 37, tzinfo=timezone.utc)
_ids = itertools.count(1)


def at(seconds: float) -> datetime:
    return BASE + timedelta(seconds=seconds)


def correlate(lines: list[str]) -> list[Event]:
    """Parse lines in order (one stream), feed the correlator, flush; the records out."""
    parser = DistributionParser(BASE)
    corr = Correlator()
    out: list[Event] = []
    off = 0
    for text in lines:
        parsed = parser.parse(RawLine("t", "t.log", text, "fp-corr", off, off + len(text) + 1))
        off += len(text) + 1
        if isinstance(parsed, Event):
            out.extend(corr.feed(parsed))
    out.extend(corr.flush())
    return out


def request(
    t: float,
    method: str,
    uri: str,
    status: int,
    *,
    ip: str = "10.0.0.1",
    ua: str = "skopeo/1.9.3",
    user: str | None = "ci-bot",
    written: int = 0,
    access_bytes: int | None = None,
    err: str | None = None,
    access: bool = True,
    app: bool = True,
) -> list[str]:
    """The lines the registry writes for one authenticated request (NOTES §1)."""
    rid = f"00000000-0000-4000-8000-{next(_ids):012d}"
    f = lib.request_fields(rid, method, uri, ip=ip, ua=ua)
    name = uri.split("/v2/", 1)[1].split("/manifests/")[0].split("/blobs/")[0] if "/manifests/" in uri or "/blobs/" in uri else None
    vars_ = {"vars.name": name} if name else {}
    lines: list[str] = []
    if app:
        lines.append(lib.logrus_line(at(t), "info", "authorized request", {**f, **vars_}))
        done = {**f, "http.response.status": status, "http.response.written": written, "http.response.duration": "1.2ms"}
        if status >= 400:
            done.update(vars_)
            if user:
                done["auth.user.name"] = user
            done["err.code"] = err or "manifest unknown"
            lines.append(lib.logrus_line(at(t + 0.001), "error", "response completed with error", done))
        else:
            lines.append(lib.logrus_line(at(t + 0.001), "info", "response completed", done))
    if access:
        lines.append(lib.access_line(ip, at(t), method, uri, status, written if access_bytes is None else access_bytes, ua))
    return lines


def challenge(t: float, uri: str = "/v2/", *, ip: str = "10.0.0.1", ua: str = "skopeo/1.9.3", access: bool = True, app: bool = True) -> list[str]:
    rid = f"00000000-0000-4000-8000-{next(_ids):012d}"
    msg = 'error authorizing context: basic authentication challenge for realm "regwatch-realm": invalid authorization credential'
    out = [lib.logrus_line(at(t), "warning", msg, lib.request_fields(rid, "GET", uri, ip=ip, ua=ua))] if app else []
    if access:
        out.append(lib.access_line(ip, at(t), "GET", uri, 401, 87, ua))
    return out


def failed_login(t: float, user: str, uri: str = "/v2/", *, ip: str = "10.0.0.1", ua: str = "skopeo/1.9.3") -> list[str]:
    rid = f"00000000-0000-4000-8000-{next(_ids):012d}"
    f = lib.request_fields(rid, "GET", uri, ip=ip, ua=ua)
    return [
        lib.logrus_line(at(t), "error", f'error authenticating user "{user}": authentication failure', f),
        lib.logrus_line(at(t + 0.0001), "warning", 'error authorizing context: basic authentication challenge for realm "regwatch-realm": authentication failure', f),
        lib.access_line(ip, at(t), "GET", uri, 401, 87, ua),
    ]


DIGEST = "sha256:" + "96" * 32


def requests_only(evs: list[Event]) -> list[Event]:
    return [e for e in evs if e.method is not None]


# -- joining -------------------------------------------------------------------------------------
def test_app_and_access_lines_become_one_record() -> None:
    lines = request(0, "GET", "/v2/team-a/app/manifests/9.9", 404, user="alice", written=93, access_bytes=94, err="manifest unknown")
    assert len(lines) == 3
    (e,) = correlate(lines)
    assert e.request_id and e.request_id.startswith("00000000-")
    assert e.user == "alice"  # only the app line has it
    assert e.error_code == "manifest unknown"  # only the app line has it
    assert e.status == 404
    assert e.bytes == 94  # the access line's count of bytes
    assert e.tally == "pull_failed" and e.repository == "team-a/app"
    assert e.timestamp == at(0.001)  # the app line's sub-second time


def test_concurrent_requests_join_by_request_not_by_position() -> None:
    """authorized A, authorized B, completed B, access B, completed A, access A (NOTES §1)."""
    a = request(0, "GET", "/v2/x/blobs/sha256:" + "a" * 64, 200, written=1111)
    b = request(0, "GET", "/v2/x/blobs/sha256:" + "b" * 64, 200, written=2222)
    lines = [a[0], b[0], b[1], b[2], a[1], a[2]]
    evs = correlate(lines)
    assert len(evs) == 2
    assert sorted(e.bytes for e in evs) == [1111, 2222]
    for e in evs:
        assert e.digest and e.bytes == (1111 if e.digest.endswith("a" * 64) else 2222)


def test_identical_concurrent_requests_each_count_once() -> None:
    a = challenge(0, ip="10.0.0.1")
    b = challenge(0, ip="10.0.0.2")
    evs = correlate([a[0], b[0], a[1], b[1]])
    assert len(evs) == 2 and all(e.auth == "challenge" for e in evs)


def test_app_only_stream_counts_each_request_once() -> None:
    lines = (
        request(0, "GET", "/v2/a/manifests/1", 200, written=500, access=False)
        + request(1, "GET", "/v2/a/blobs/sha256:" + "c" * 64, 200, written=12345, access=False)
        + request(2, "PUT", "/v2/a/manifests/1", 201, access=False)
        + challenge(3, access=False)
        + failed_login(4, "alice")[:2]
        + request(5, "GET", "/v2/a/manifests/2", 404, user="bob", access=False)
    )
    evs = correlate(lines)
    assert len(evs) == 6
    by = {(e.method, e.path): e for e in evs}
    assert by[("GET", "/v2/a/manifests/1")].tally == "pull"
    assert by[("GET", "/v2/a/blobs/sha256:" + "c" * 64)].bytes == 12345
    assert by[("PUT", "/v2/a/manifests/1")].tally == "push"
    assert sorted(e.auth for e in evs if e.path == "/v2/") == ["auth_failure", "challenge"]
    assert by[("GET", "/v2/a/manifests/2")].user == "bob"


def test_access_only_stream_counts_each_request_once() -> None:
    lines = [l for l in request(0, "GET", "/v2/a/manifests/1", 200, written=500) if not l.startswith("time=")]
    lines += [l for l in challenge(1) if not l.startswith("time=")]
    lines += [l for l in request(2, "DELETE", f"/v2/a/manifests/{DIGEST}", 202) if not l.startswith("time=")]
    assert len(lines) == 3
    evs = correlate(lines)
    assert len(evs) == 3
    assert [e.request_id for e in evs] == [None, None, None]


def _strip(kind: str, tmp_path: Path) -> Path:
    src = (lib.SAMPLES / "registry-text.log").read_text().splitlines(keepends=True)
    keep = [l for l in src if (l.startswith("time=") if kind == "app" else not l.startswith("time="))]
    p = tmp_path / f"{kind}-only.log"
    p.write_text("".join(keep))
    return p


def test_sample_without_access_log_gives_the_same_counts(tmp_path: Path) -> None:
    stats, store = lib.ingest_files([_strip("app", tmp_path)], tmp_path / "db")
    got = lib.summary_of(store)
    exp = lib.expected("registry-text")
    for k, v in exp.items():
        if k != "repositories":
            assert got[k] == v, k
    for repo, counts in exp["repositories"].items():
        assert {k: got["repositories"][repo][k] for k in counts} == counts, repo


def test_sample_access_log_alone(tmp_path: Path) -> None:
    """Access lines only: no failed login can be told from a challenge (domain.md §2), but
    every request counts once and everything that is not auth comes out the same."""
    p = _strip("access", tmp_path)
    n_access = sum(1 for l in p.read_text().splitlines() if " - - [" in l)
    assert n_access == 112
    stats, store = lib.ingest_files([p], tmp_path / "db")
    assert stats.events == n_access
    got = lib.summary_of(store)
    exp = lib.expected("registry-text")
    for k in ("pulls", "pulls_failed", "pushes", "deletes", "deletes_failed", "bytes_pulled", "bytes_pushed"):
        assert got[k] == exp[k], k
    assert got["auth_failures"] == 0
    # every 401 is still one (and only one) of the three classes
    assert got["challenges"] + got["anonymous_denials"] == exp["challenges"] + exp["anonymous_denials"] + exp["auth_failures"]
    assert got["challenges"] == exp["challenges"] + 1  # the failed /v2/ login looks like a challenge


# -- auth classes --------------------------------------------------------------------------------
def test_failed_login_is_an_auth_failure_not_a_challenge() -> None:
    lines = failed_login(0, "alice")
    evs = correlate(lines)
    assert len(evs) == 1
    (e,) = evs
    assert e.auth == "auth_failure" and e.user == "alice" and e.status == 401 and e.path == "/v2/"


def test_plain_base_401_is_a_challenge() -> None:
    (e,) = correlate(challenge(0))
    assert e.auth == "challenge" and e.status == 401 and not e.user


def test_failed_login_with_empty_user_is_anonymous() -> None:
    (e,) = correlate(failed_login(0, "", uri="/v2/a/manifests/1"))
    assert e.auth == "anonymous_denial" and e.tally == "pull_failed"


# -- delete lookups ------------------------------------------------------------------------------
def _actions(evs: list[Event]) -> list[tuple[str, str | None]]:
    return [(e.action, e.client_ip) for e in sorted(requests_only(evs), key=lambda e: e.timestamp)]


def test_get_then_same_clients_delete_is_a_lookup() -> None:
    lines = challenge(0) + request(0.2, "GET", "/v2/team-b/api/manifests/1.0", 200, written=500) + request(0.204, "DELETE", f"/v2/team-b/api/manifests/{DIGEST}", 202)
    evs = correlate(lines)
    acts = [e.action for e in sorted(requests_only(evs), key=lambda e: e.timestamp)]
    assert acts == ["base", "delete_lookup", "delete"]
    assert not [e for e in evs if e.tally == "pull"]
    assert [e.tally for e in evs if e.action == "delete"] == ["delete"]


def test_get_by_another_client_before_a_delete_stays_a_pull() -> None:
    lines = request(0.2, "GET", "/v2/team-b/api/manifests/1.0", 200, ip="10.0.0.2") + request(0.204, "DELETE", f"/v2/team-b/api/manifests/{DIGEST}", 202, ip="10.0.0.1")
    evs = correlate(lines)
    assert [e.tally for e in evs if e.action in ("pull", "delete_lookup")] == ["pull"]


def test_get_of_another_repository_before_a_delete_stays_a_pull() -> None:
    lines = request(0.2, "GET", "/v2/team-a/app/manifests/1.0", 200) + request(0.204, "DELETE", f"/v2/team-b/api/manifests/{DIGEST}", 202)
    evs = correlate(lines)
    assert [e.action for e in evs if e.method == "GET"] == ["pull"]


def test_same_ip_other_user_agent_is_another_client() -> None:
    lines = request(0.2, "GET", "/v2/team-b/api/manifests/1.0", 200, ua="containerd/1.7") + request(0.204, "DELETE", f"/v2/team-b/api/manifests/{DIGEST}", 202, ua="skopeo/1.9.3")
    evs = correlate(lines)
    assert [e.action for e in evs if e.method == "GET"] == ["pull"]


def test_lookup_only_when_the_delete_is_the_clients_next_request() -> None:
    """domain.md §2: "a GET 200 whose same client's next request ... is a manifest DELETE"."""
    lines = (
        request(0.2, "GET", "/v2/team-b/api/manifests/1.0", 200)
        + request(0.3, "GET", "/v2/team-b/api/tags/list", 200)
        + request(0.4, "DELETE", f"/v2/team-b/api/manifests/{DIGEST}", 202)
    )
    evs = correlate(lines)
    assert [e.action for e in evs if e.path == "/v2/team-b/api/manifests/1.0"] == ["pull"]


def test_other_clients_requests_in_between_do_not_matter() -> None:
    lines = (
        request(0.2, "GET", "/v2/team-b/api/manifests/1.0", 200, ip="10.0.0.1")
        + request(0.21, "GET", "/v2/team-b/api/manifests/2.0", 200, ip="10.0.0.2")
        + request(0.22, "DELETE", f"/v2/team-b/api/manifests/{DIGEST}", 202, ip="10.0.0.1")
    )
    evs = correlate(lines)
    got = {e.path: e.action for e in evs if e.method == "GET"}
    assert got == {"/v2/team-b/api/manifests/1.0": "delete_lookup", "/v2/team-b/api/manifests/2.0": "pull"}


def test_delete_long_after_the_get_does_not_make_it_a_lookup() -> None:
    lines = request(0, "GET", "/v2/team-b/api/manifests/1.0", 200) + request(60, "DELETE", f"/v2/team-b/api/manifests/{DIGEST}", 202)
    evs = correlate(lines)
    assert [e.action for e in evs if e.method == "GET"] == ["pull"]


def test_failed_get_before_delete_is_a_failed_pull_and_head_never_a_pull() -> None:
    lines = (
        request(0, "HEAD", "/v2/team-b/api/manifests/1.0", 200)
        + request(0.1, "GET", "/v2/team-b/api/manifests/9.9", 404)
        + request(0.2, "DELETE", f"/v2/team-b/api/manifests/{DIGEST}", 202)
    )
    evs = correlate(lines)
    assert sorted(e.tally for e in evs) == ["delete", "none", "pull_failed"]


def test_lookup_rule_in_access_only_stream() -> None:
    lines = [l for l in request(0.2, "GET", "/v2/team-b/api/manifests/1.0", 200) + request(0.204, "DELETE", f"/v2/team-b/api/manifests/{DIGEST}", 202) if not l.startswith("time=")]
    evs = correlate(lines)
    assert sorted(e.action for e in evs) == ["delete", "delete_lookup"]


@pytest.mark.parametrize("n_between", [0, 5])
def test_lookup_rule_with_other_traffic_and_held_pulls(n_between: int) -> None:
    """Pulls held back for the lookup decision are all released by flush, none lost."""
    lines: list[str] = []
    for i in range(n_between):
        lines += request(i * 0.01, "GET", f"/v2/other/manifests/{i}", 200, ip=f"10.1.0.{i + 1}")
    lines += request(1.0, "GET", "/v2/team-b/api/manifests/1.0", 200) + request(1.004, "DELETE", f"/v2/team-b/api/manifests/{DIGEST}", 202)
    evs = correlate(lines)
    assert len(evs) == n_between + 2
    assert sum(e.tally == "pull" for e in evs) == n_between


def test_delete_by_tag_through_harbor_proxy_is_not_a_pull(tmp_path) -> None:
    """Harbor counts requests at its nginx proxy; the lookup GET before a DELETE is not a pull."""
    from regwatch.pipeline import ingest
    from regwatch.stores.embedded import EmbeddedStore
    from regwatch.summary import summarize

    ua = '"skopeo/1.9.3"'
    lines = [
        f'Mar  5 19:03:14 172.18.0.1 proxy[1187]: 10.20.30.41 - "GET /v2/library/nginx/manifests/1.25 HTTP/1.1" 200 1570 "-" {ua} 0.015 0.015 .',
        f'Mar  5 19:03:14 172.18.0.1 proxy[1187]: 10.20.30.41 - "DELETE /v2/library/nginx/manifests/sha256:{"a" * 64} HTTP/1.1" 202 0 "-" {ua} 0.020 0.020 .',
        f'Mar  5 19:04:20 172.18.0.1 proxy[1187]: 10.20.30.99 - "GET /v2/library/nginx/manifests/1.25 HTTP/1.1" 200 1570 "-" {ua} 0.015 0.015 .',
    ]
    p = tmp_path / "proxy.log"
    p.write_text("\n".join(lines) + "\n")
    store = EmbeddedStore(tmp_path / "db")
    ingest([str(p)], store)
    s = summarize(store)
    assert s["deletes"] == 1
    assert s["pulls"] == 1  # only the other client's GET


def test_block_statements_get_more_memory_instead_of_failing(monkeypatch) -> None:
    """A block that needs more than the stage's memory limit is retried with the limit
    doubled (and the limit is put back after), so an odd block never fails the ingest."""
    import duckdb

    from regwatch import duck as correlate

    monkeypatch.setattr(correlate, "BLOCK_MEMORY_MB", 1)
    con = duckdb.connect()
    con.execute("SET threads=1")
    con.execute("SET temp_directory=''")  # no spilling: only more memory helps
    con.execute("SET memory_limit='1MB'")
    sql = "SELECT i, repeat('x', 200) || i AS s FROM range(300000) t(i) ORDER BY s DESC"
    with pytest.raises(duckdb.OutOfMemoryException):
        con.execute(sql).fetchall()
    t = correlate.run_sql(con, sql)
    assert t.num_rows == 300000
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] in ("976.5 KiB", "1.0 MiB", "1MB")
