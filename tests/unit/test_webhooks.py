"""Webhooks: parsing real Distribution envelopes and documented Harbor payloads, the
receiver over real HTTP on loopback, and attribution of log events to users.

The Distribution envelopes are the registry's own (sample_logs/distribution/
notifications*.jsonl, captured next to registry-text.log and registry-json.log, whose
request ids they share); the Harbor payloads and where they come from are in
sample_logs/webhooks/SOURCES.md.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import regwatch_testlib as lib

from regwatch.audit import delete_row, deletes
from regwatch.clock import FixedClock
from regwatch.events import Event
from regwatch.sources.webhooks import (
    DISTRIBUTION_MEDIA_TYPE,
    OUTCOMES,
    WebhookError,
    WebhookReceiver,
    attribute,
    attribute_rows,
    attributed_deletes,
    parse_distribution,
    parse_harbor,
    webhook_query,
)
from regwatch.stores.base import Query

NOTIFICATIONS = {
    "text": lib.SAMPLES / "notifications.jsonl",
    "json": lib.SAMPLES / "notifications-json.jsonl",
}
LOGS = {"text": lib.SAMPLES / "registry-text.log", "json": lib.SAMPLES / "registry-json.log"}
HARBOR = lib.ROOT / "sample_logs" / "webhooks" / "harbor"
SECRET = "Bearer s3cret-for-tests"

DIGEST_ALPINE = "sha256:fac26ae949e3136866fa4adc0cdd69e8368d84a7de1595f788517ca453e61858"
DIGEST_API_1 = "sha256:96673af003245007a2dbcdb2fc467c4ae35eff39f5422dd95d546f3ece89ac27"
DIGEST_API_2 = "sha256:79f4399a2641ad08bb0e07ff55bcdc08f1681da732834a71c20f96c3c9757227"


def _envelopes(run: str) -> list[bytes]:
    return [line for line in NOTIFICATIONS[run].read_bytes().splitlines() if line.strip()]


def _events(run: str) -> list[Event]:
    return [
        e for body in _envelopes(run) for e in parse_distribution(body, DISTRIBUTION_MEDIA_TYPE)
    ]


# --------------------------------------------------------------------------- Distribution


@pytest.mark.parametrize("run", ["text", "json"])
def test_distribution_envelopes_give_one_event_each_with_actor_repo_and_digest(run: str) -> None:
    evs = _events(run)
    assert len(evs) == 45 == len({e.id for e in evs})
    assert Counter((e.action, e.user) for e in evs) == {
        ("blob_upload", "ci-bot"): 8,  # completed blob PUTs
        ("push", "ci-bot"): 5,  # manifest PUTs
        ("blob_mount", "ci-bot"): 2,
        ("blob_head", "ci-bot"): 4,  # the reuse checks of a push, notified as pulls
        ("blob_pull", "ci-bot"): 5,
        ("blob_pull", "alice"): 8,
        ("pull", "alice"): 5,
        ("pull", "ci-bot"): 4,  # incl. the GETs of the two `skopeo delete`s
        ("delete", "ci-bot"): 4,  # two per DELETE: the digest and the tag
    }
    for e in evs:
        assert e.source == "distribution-webhook"
        assert (e.tally, e.auth, e.outcome) == ("none", "none", "success")
        assert e.client_ip == "127.0.0.1" and e.user_agent == "skopeo/1.9.3"
        assert e.request_id and e.repository in {"library/alpine", "team-a/app", "team-b/api"}
        assert e.timestamp.tzinfo is not None and e.timestamp.year == 2026
        assert "Authorization" not in e.raw
    push = next(e for e in evs if e.action == "push" and e.repository == "library/alpine")
    assert (push.reference, push.digest, push.method, push.bytes) == (
        "3.19",
        DIGEST_ALPINE,
        "PUT",
        419,
    )
    assert push.path == f"/v2/library/alpine/manifests/{DIGEST_ALPINE}"
    upload = next(e for e in evs if e.action == "blob_upload")
    assert upload.bytes == 3185 and upload.path is not None and "/blobs/" in upload.path
    dels = [e for e in evs if e.action == "delete"]
    assert {(e.repository, e.reference) for e in dels} == {
        ("team-b/api", DIGEST_API_1),
        ("team-b/api", "1.0"),
        ("team-b/api", DIGEST_API_2),
        ("team-b/api", "2.0"),
    }
    # the digest and the tag notification of one DELETE share its request id
    assert len({e.request_id for e in dels}) == 2


def test_distribution_ids_are_stable_and_follow_the_notification_id() -> None:
    body = _envelopes("text")[0]
    a, b = parse_distribution(body), parse_distribution(body)
    assert [e.id for e in a] == [e.id for e in b]
    assert (
        a[0].id == "33eb71ec6d8dc63609cb4017a7"
    )  # a change of the id scheme re-stores every event
    assert len(a[0].id) == 26 and int(a[0].id, 16) >= 0
    doc = json.loads(body)
    doc["events"][0]["id"] = "another-notification"
    assert parse_distribution(json.dumps(doc).encode())[0].id != a[0].id
    # the text and json runs are different notifications of the same operations
    assert not {e.id for e in _events("text")} & {e.id for e in _events("json")}


def test_distribution_request_ids_are_the_logs_request_ids() -> None:
    log = LOGS["text"].read_text()
    for e in _events("text"):
        assert f"http.request.id={e.request_id} " in log


def test_distribution_envelope_with_several_events_and_ipv6_address() -> None:
    events = [json.loads(b)["events"][0] for b in _envelopes("text")[:3]]
    events[0]["request"]["addr"] = "[::1]:41510"
    evs = parse_distribution(
        json.dumps({"events": events}).encode(), "application/json; charset=utf-8"
    )
    assert len(evs) == 3 and evs[0].client_ip == "::1"


@pytest.mark.parametrize(
    "body, content_type, reason",
    [
        (b"", DISTRIBUTION_MEDIA_TYPE, "empty body"),
        (b"{not json", DISTRIBUTION_MEDIA_TYPE, "not JSON"),
        (b"\xff\xfe", DISTRIBUTION_MEDIA_TYPE, "not UTF-8"),
        (b"[1, 2]", DISTRIBUTION_MEDIA_TYPE, "not a Distribution envelope"),
        (b'{"events": {}}', DISTRIBUTION_MEDIA_TYPE, "not a Distribution envelope"),
        (b'{"events": [1]}', DISTRIBUTION_MEDIA_TYPE, "events[0] is not an object"),
        (
            b'{"events": [{"action": "push", "timestamp": "2026-11-30T01:40:37Z"}]}',
            None,
            "has no id",
        ),
        (
            b'{"events": [{"id": "x", "action": "push", "timestamp": "yesterday"}]}',
            None,
            "no valid timestamp",
        ),
        (b'{"events": []}', "text/plain", "content type 'text/plain'"),
    ],
)
def test_distribution_malformed_bodies_raise_with_a_reason(
    body: bytes, content_type: str | None, reason: str
) -> None:
    with pytest.raises(WebhookError) as err:
        parse_distribution(body, content_type)
    assert reason in err.value.reason


def test_distribution_empty_envelope_is_no_events() -> None:
    assert parse_distribution(b'{"events": []}') == []


# --------------------------------------------------------------------------- Harbor


def _harbor(name: str) -> list[Event]:
    return parse_harbor((HARBOR / f"notifications-{name}.json").read_bytes())


def test_harbor_artifact_events() -> None:
    digest = "sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8"
    for name, action, user, when in [
        ("push-artifact", "push", "admin", 1586922308),
        ("pull-artifact", "pull", "alice", 1586922415),
        ("delete-artifact", "delete", "bob", 1586922532),
    ]:
        (ev,) = _harbor(name)
        assert (ev.source, ev.component, ev.action, ev.outcome) == (
            "harbor-webhook",
            "core",
            action,
            "success",
        )
        assert (ev.tally, ev.auth) == ("none", "none")
        assert (ev.user, ev.repository, ev.reference, ev.digest) == (
            user,
            "test-webhook/debian",
            "latest",
            digest,
        )
        assert ev.timestamp == datetime.fromtimestamp(when, tz=UTC)
        assert ev.path == "hub.harbor.com/test-webhook/debian:latest"
    (untagged,) = _harbor("push-artifact-untagged")
    assert untagged.repository == "aaa/cnab_copy"
    assert untagged.reference == untagged.digest  # Harbor's "tag" was the digest: no tag


def test_harbor_scan_quota_and_replication_are_audit_records() -> None:
    (done,) = _harbor("scanning-completed")
    assert (done.action, done.outcome, done.user) == ("audit", "success", "auto")
    assert done.repository == "ci-bitbucket-control-k8s/bitbucket-slash-branch/node"
    assert done.message == "SCANNING_COMPLETED scan_status=Success severity=High total=4"
    (failed,) = _harbor("scanning-failed")
    assert (failed.action, failed.outcome) == ("audit", "failure")
    (exceed,) = _harbor("quota-exceed")
    assert (exceed.outcome, exceed.error_code, exceed.repository, exceed.reference) == (
        "failure",
        "quota_exceed",
        "team-b/api",
        "2.0",
    )
    assert exceed.message is not None and exceed.message.startswith("QUOTA_EXCEED: adding 1.0 MiB")
    (warn,) = _harbor("quota-warning")
    assert (warn.outcome, warn.error_code) == ("unknown", "quota_warning")
    (rep,) = _harbor("replication")
    assert (rep.action, rep.outcome, rep.repository) == ("audit", "success", "test/test10g")
    assert rep.user == "admin"  # the policy creator; the payload's operator is the trigger
    assert "MANUAL" in (rep.message or "")
    (cloud,) = _harbor("cloudevents-scan-completed")
    assert (cloud.action, cloud.user, cloud.repository, cloud.request_id) == (
        "audit",
        "harbor-jobservice",
        "library/****",
        "*****",
    )
    assert cloud.timestamp == datetime(2025, 7, 29, 3, 0, 23, tzinfo=UTC)
    for ev in (done, failed, exceed, warn, rep, cloud):
        assert (ev.tally, ev.auth) == ("none", "none")


def test_harbor_ids_are_stable_per_payload_and_per_resource() -> None:
    paths = sorted(HARBOR.glob("notifications-*.json"))
    assert len(paths) == 10
    ids = [e.id for p in paths for e in parse_harbor(p.read_bytes())]
    assert len(ids) == len(set(ids))
    assert ids == [e.id for p in paths for e in parse_harbor(p.read_bytes())]
    doc = json.loads((HARBOR / "notifications-push-artifact.json").read_text())
    doc["event_data"]["resources"].append(dict(doc["event_data"]["resources"][0], tag="stable"))
    evs = parse_harbor(json.dumps(doc).encode())
    assert [e.reference for e in evs] == ["latest", "stable"] and evs[0].id != evs[1].id
    # a CloudEvents payload is identified by its id, not its bytes
    cloud = json.loads((HARBOR / "notifications-cloudevents-scan-completed.json").read_text())
    again = dict(cloud, time="2025-07-29T03:00:24Z")
    assert (
        parse_harbor(json.dumps(cloud).encode())[0].id
        == parse_harbor(json.dumps(again).encode())[0].id
    )


def test_harbor_cloudevents_artifact_push() -> None:
    body = {
        "specversion": "1.0",
        "id": "0d6d5f5c-1",
        "type": "harbor.artifact.pushed",
        "time": "2025-01-02T03:04:05Z",
        "operator": "ci-bot",
        "requestid": "req-1",
        "data": {
            "resources": [{"digest": "sha256:aa", "tag": "v1", "resource_url": "h/p/app:v1"}],
            "repository": {"name": "app", "namespace": "p", "repo_full_name": "p/app"},
        },
    }
    (ev,) = parse_harbor(json.dumps(body).encode())
    assert (ev.action, ev.user, ev.repository, ev.reference, ev.request_id) == (
        "push",
        "ci-bot",
        "p/app",
        "v1",
        "req-1",
    )


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"", "empty body"),
        (b"<xml/>", "not JSON"),
        (b'{"occur_at": 1}', 'expected an object with a "type"'),
        (b'{"type": "PUSH_ARTIFACT"}', "no valid occur_at"),
        (b'{"type": "PUSH_ARTIFACT", "occur_at": 1, "event_data": []}', "not an object"),
    ],
)
def test_harbor_malformed_bodies_raise(body: bytes, reason: str) -> None:
    with pytest.raises(WebhookError) as err:
        parse_harbor(body)
    assert reason in err.value.reason


def test_harbor_unknown_type_is_kept_as_an_audit_record() -> None:
    (ev,) = parse_harbor(
        b'{"type": "TAG_RETENTION", "occur_at": 1700000000, "operator": "x", "event_data": {}}'
    )
    assert (ev.action, ev.message, ev.user) == ("audit", "TAG_RETENTION", "x")


# --------------------------------------------------------------------------- receiver


class Sink:
    def __init__(self) -> None:
        self.calls: list[list[Event]] = []
        self.refuse = False

    def __call__(self, events: list[Event]) -> None:
        if self.refuse:
            raise queue.Full
        self.calls.append(events)

    @property
    def events(self) -> list[Event]:
        return [e for c in self.calls for e in c]


@pytest.fixture
def rx() -> Any:
    sink = Sink()
    receiver = WebhookReceiver(
        "127.0.0.1:0",
        sink,
        secret=SECRET,
        max_body=64 * 1024,
        clock=FixedClock(datetime(2026, 12, 1, tzinfo=UTC)),
    )
    receiver.start()
    receiver.test_sink = sink  # type: ignore[attr-defined]
    try:
        yield receiver
    finally:
        receiver.stop()


def _post(
    rx: WebhookReceiver,
    body: bytes,
    *,
    path: str = "/distribution",
    auth: str | None = SECRET,
    content_type: str = DISTRIBUTION_MEDIA_TYPE,
    method: str = "POST",
) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"{rx.url}{path}", data=body if method != "GET" else None, method=method
    )
    req.add_header("Content-Type", content_type)
    if auth is not None:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        data = err.read()
        return err.code, json.loads(data) if data else {}


def test_receiver_accepts_then_dedupes_redelivery(rx: WebhookReceiver) -> None:
    sink: Sink = rx.test_sink  # type: ignore[attr-defined]
    body = _envelopes("text")[0]
    assert _post(rx, body) == (200, {"outcome": "accepted"})
    assert _post(rx, body) == (200, {"outcome": "duplicate"})
    assert len(sink.calls) == 1 and sink.events[0].user == "ci-bot"
    # an envelope with one seen and one new event hands on the new one only
    both = json.dumps(
        {"events": [json.loads(body)["events"][0], json.loads(_envelopes("text")[1])["events"][0]]}
    )
    assert _post(rx, both.encode())[0] == 200
    assert [len(c) for c in sink.calls] == [1, 1]
    assert rx.metrics["accepted"] == 2 and rx.metrics["duplicate"] == 1
    assert dict(rx.event_metrics) == {"accepted": 2, "duplicate": 2}
    assert rx.last_event_at == datetime(2026, 12, 1, tzinfo=UTC)


def test_receiver_rejects_wrong_or_missing_secret(
    rx: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="regwatch.webhooks")
    sink: Sink = rx.test_sink  # type: ignore[attr-defined]
    body = _envelopes("text")[0]
    assert _post(rx, body, auth="Bearer wrong")[0] == 401
    assert _post(rx, body, auth=None)[0] == 401
    assert _post(rx, body, auth=SECRET + " ")[0] == 401
    assert sink.calls == [] and rx.metrics["unauthorized"] == 3
    assert "s3cret" not in caplog.text and "wrong" not in caplog.text
    # the right secret still gets the same event through: a 401 remembers nothing
    assert _post(rx, body)[0] == 200 and len(sink.events) == 1
    assert all("s3cret" not in e.raw for e in sink.events)


def test_receiver_malformed_body_is_400_with_the_reason(rx: WebhookReceiver) -> None:
    status, doc = _post(rx, b'{"events": [{"id": "x"}]}')
    assert status == 400 and doc["outcome"] == "bad_request" and "has no action" in doc["reason"]
    status, doc = _post(rx, b"{}", content_type="text/html")
    assert status == 400 and "content type" in doc["reason"]
    status, doc = _post(rx, b"not json", path="/harbor", content_type="application/json")
    assert status == 400 and "not JSON" in doc["reason"]
    assert rx.metrics["bad_request"] == 3 and rx.test_sink.calls == []  # type: ignore[attr-defined]


def test_receiver_oversized_body_is_413(rx: WebhookReceiver) -> None:
    big = b'{"events": [' + b" " * (rx.max_body + 1) + b"]}"
    status, doc = _post(rx, big)
    assert status == 413 and doc["outcome"] == "too_large"
    assert rx.metrics["too_large"] == 1 and rx.test_sink.calls == []  # type: ignore[attr-defined]
    # the receiver is still serving
    assert _post(rx, _envelopes("text")[2])[0] == 200


def test_receiver_get_is_405_and_unknown_path_404(rx: WebhookReceiver) -> None:
    status, doc = _post(rx, b"", method="GET")
    assert status == 405 and doc["outcome"] == "method_not_allowed"
    assert _post(rx, _envelopes("text")[0], path="/nope")[0] == 404
    assert rx.metrics["method_not_allowed"] == 1 and rx.metrics["not_found"] == 1
    assert set(rx.metrics) == set(OUTCOMES)  # bounded labels, all present from the start


def test_receiver_harbor_route(rx: WebhookReceiver) -> None:
    body = (HARBOR / "notifications-delete-artifact.json").read_bytes()
    assert _post(rx, body, path="/harbor", content_type="application/json") == (
        200,
        {"outcome": "accepted"},
    )
    assert _post(rx, body, path="/harbor", content_type="application/json") == (
        200,
        {"outcome": "duplicate"},
    )
    (ev,) = rx.test_sink.events  # type: ignore[attr-defined]
    assert (ev.source, ev.action, ev.user) == ("harbor-webhook", "delete", "bob")


def test_receiver_refusing_sink_is_503_and_the_retry_is_taken(rx: WebhookReceiver) -> None:
    sink: Sink = rx.test_sink  # type: ignore[attr-defined]
    body = _envelopes("text")[3]
    sink.refuse = True
    assert _post(rx, body)[0] == 503
    sink.refuse = False
    assert _post(rx, body) == (200, {"outcome": "accepted"})
    assert rx.metrics["unavailable"] == 1 and len(sink.events) == 1


def test_receiver_bounded_queue_sink_and_concurrent_redeliveries() -> None:
    q: queue.Queue[list[Event]] = queue.Queue(maxsize=100)
    with WebhookReceiver("127.0.0.1:0", q.put_nowait, secret=None) as rx:
        assert rx.port > 0
        body = _envelopes("json")[0]
        threads = [
            threading.Thread(target=_post, args=(rx, body), kwargs={"auth": None}) for _ in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert q.qsize() == 1
        assert rx.metrics["accepted"] == 1 and rx.metrics["duplicate"] == 7


def test_receiver_dedupe_is_bounded() -> None:
    sink = Sink()
    with WebhookReceiver("127.0.0.1:0", sink, dedupe_size=2) as rx:
        bodies = _envelopes("text")[:3]
        for b in bodies:
            assert _post(rx, b, auth=None)[1]["outcome"] == "accepted"
        # the oldest id was forgotten: a late redelivery of it is handed on again (the
        # store's write is idempotent on the id, so it is still stored once)
        assert _post(rx, bodies[0], auth=None)[1]["outcome"] == "accepted"
        assert _post(rx, bodies[2], auth=None)[1]["outcome"] == "duplicate"


def test_receiver_answers_within_milliseconds(rx: WebhookReceiver) -> None:
    bodies = _envelopes("text")[4:24]
    _post(rx, bodies[0])  # warm up the first connection
    times = []
    for b in bodies[1:]:
        t0 = time.perf_counter()
        assert _post(rx, b)[0] == 200
        times.append(time.perf_counter() - t0)
    times.sort()
    # not a benchmark; the median on a loopback connection is ~1 ms
    assert times[len(times) // 2] < 0.05 and times[-1] < 0.2, times


def test_receiver_listen_is_validated() -> None:
    with pytest.raises(ValueError, match="host:port"):
        WebhookReceiver("localhost", Sink())
    with pytest.raises(ValueError, match="sink"):
        WebhookReceiver("127.0.0.1:0", None)


# --------------------------------------------------------------------------- attribution


@pytest.fixture(scope="module")
def text_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """registry-text.log ingested, plus the webhook events its run sent."""
    _, store = lib.ingest_files([LOGS["text"]], tmp_path_factory.mktemp("wh") / "db")
    return store


def test_log_deletes_lack_the_user_that_the_webhooks_carry(text_store: Any) -> None:
    rows = deletes(text_store)
    ok = [r for r in rows if r["outcome"] == "success"]
    assert len(ok) == 2 and all(r["user"] is None for r in ok)
    hooks = _events("text")
    out = attribute_rows(rows, hooks, annotate=True)
    assert [
        (r["reference"], r["user"], r["user_from"]) for r in out if r["outcome"] == "success"
    ] == [
        (DIGEST_API_1, "ci-bot", "webhook:request_id"),
        (DIGEST_API_2, "ci-bot", "webhook:request_id"),
    ]
    # failed deletes carry their user in the log already; rows are copies
    assert all(r["user_from"] == "log" for r in out if r["outcome"] == "failure")
    assert all(r["user"] is None for r in ok)


def test_attribute_events_by_request_id_keeps_ids(text_store: Any) -> None:
    logs = text_store.search(Query(actions=frozenset({"pull", "push", "delete", "blob_pull"})))
    out = attribute(logs, _events("text"))
    assert [e.id for e in out] == [e.id for e in logs]
    filled = {
        (e.action, o.user) for e, o in zip(logs, out) if e.user is None and o.user is not None
    }
    assert filled >= {
        ("push", "ci-bot"),
        ("pull", "alice"),
        ("delete", "ci-bot"),
        ("blob_pull", "alice"),
    }
    successful = [
        o for o in out if o.outcome == "success" and o.action in ("pull", "push", "delete")
    ]
    assert successful and all(o.user for o in successful)


def test_attribute_falls_back_to_repository_and_digest_within_the_window() -> None:
    t = datetime(2026, 11, 30, 1, 40, 38, tzinfo=UTC)
    log = Event(
        id="a" * 26,
        timestamp=t,
        source="harbor",
        component="proxy",
        action="delete",
        repository="team-b/api",
        reference=DIGEST_API_1,
        request_id=None,
    )
    hook = Event(
        id="b" * 26,
        timestamp=t + timedelta(seconds=2),
        source="harbor-webhook",
        component="core",
        action="delete",
        repository="team-b/api",
        digest=DIGEST_API_1,
        reference="1.0",
        user="bob",
    )
    far = hook.with_(id="c" * 26, timestamp=t + timedelta(seconds=30), user="eve")
    other_action = hook.with_(id="d" * 26, action="push", user="mallory")
    (got,) = attribute([log], [far, other_action, hook])
    assert got.user == "bob" and got.id == log.id
    (none,) = attribute([log], [far, other_action])
    assert none.user is None
    row = delete_row(log)
    assert attribute_rows([row], [hook])[0]["user"] == "bob"
    assert attribute_rows([row], [hook], window=timedelta(seconds=1))[0]["user"] is None


def test_attributed_deletes_over_a_store_with_both_sources(tmp_path: Path) -> None:
    _, store = lib.ingest_files([LOGS["json"]], tmp_path / "db")
    hooks = _events("json")
    res = store.write(hooks)
    assert res.written == len(hooks)
    assert store.write(hooks).duplicates == len(hooks)  # a redelivery is stored once
    rows = attributed_deletes(store, annotate=True)
    # the log's 4 deletes (2 successful, 2 failed), not the 4 delete notifications as well
    assert len(rows) == 4 and all(r["source"] == "distribution" for r in rows)
    assert all(r["user"] == "ci-bot" for r in rows)
    assert [r["user_from"] for r in rows if r["outcome"] == "success"] == ["webhook:request_id"] * 2
    # --user applies after attribution
    assert len(attributed_deletes(store, Query(user="ci-bot"))) == 4
    assert attributed_deletes(store, Query(user="alice")) == []
    # the summary did not move: webhook events count nothing
    assert lib.summary_of(store)["deletes"] == lib.expected("registry-json")["deletes"]
    assert lib.summary_of(store)["pulls"] == lib.expected("registry-json")["pulls"]


def test_attributed_deletes_lists_webhook_only_deletes_once_per_request(tmp_path: Path) -> None:
    store = lib.new_store(tmp_path / "db")
    store.write(_events("text"))
    rows = attributed_deletes(store)
    assert [(r["reference"], r["user"], r["source"]) for r in rows] == [
        (DIGEST_API_1, "ci-bot", "distribution-webhook"),
        (DIGEST_API_2, "ci-bot", "distribution-webhook"),
    ]


def test_webhook_query_widens_the_time_range() -> None:
    t = datetime(2026, 11, 30, tzinfo=UTC)
    q = webhook_query(Query(since=t, until=t + timedelta(hours=1), repo="team-*", user="x"))
    assert q.since == t - timedelta(seconds=5) and q.until == t + timedelta(hours=1, seconds=5)
    assert q.repo == "team-*" and q.user is None
    assert q.sources == frozenset({"distribution-webhook", "harbor-webhook"})


def test_a_sender_that_resets_its_connection_leaves_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    """A registry restarting with a keep-alive connection open resets it mid-request:
    routine, so no socketserver traceback on stderr, and the receiver keeps serving."""
    import socket
    import struct
    import urllib.request

    from regwatch.sources.webhooks import WebhookReceiver

    rx = WebhookReceiver("127.0.0.1:0", lambda events: None).start()
    try:
        s = socket.create_connection((rx.host, rx.port))
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")  # half a request, then a reset
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        time.sleep(0.3)
        req = urllib.request.Request(rx.url, data=b"{}", method="POST", headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=5)
        except urllib.error.HTTPError as exc:  # answered: the server is alive
            assert exc.code in (400, 404, 415)
    finally:
        rx.stop()
    assert "Traceback" not in capfd.readouterr().err
