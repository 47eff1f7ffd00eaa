"""Secrets never reach stored events (Event.raw) or the quarantine; ordinary lines are untouched."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

import regwatch_testlib as lib
from regwatch.events import Event, RawLine
from regwatch.parsing.distribution import DistributionParser
from regwatch.pipeline import ingest
from regwatch.quarantine import Quarantine
from regwatch.redact import redact

JWT = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImFjY2VzcyI6W119.c2lnbmF0dXJlLXZhbHVlLWhlcmU"
T = datetime(2026, 11, 30, 1, 40, 37, tzinfo=timezone.utc)

SECRET_CASES = [
    # (text, the secret that must vanish, what must stay)
    ("Authorization: Basic YWxpY2U6aHVudGVyMg==", "YWxpY2U6aHVudGVyMg==", "Authorization: Basic "),
    ("authorization: bearer s3cr3t-T0ken", "s3cr3t-T0ken", "authorization: bearer "),
    ("headers=map[Authorization:[Basic YWxpY2U6aHVudGVyMg==] User-Agent:[docker/24]]", "YWxpY2U6aHVudGVyMg==", "User-Agent:[docker/24]"),
    ('{"Authorization":"Bearer s3cr3t-T0ken","ua":"x"}', "s3cr3t-T0ken", '"ua":"x"'),
    ('http.request.header.authorization="Basic YWxpY2U6aHVudGVyMg=="', "YWxpY2U6aHVudGVyMg==", "http.request.header.authorization="),
    ("GET /service/token?account=alice&password=hunter2&scope=repository HTTP/1.1", "hunter2", "scope=repository"),
    ("GET /v2/x?token=t0ps3cr3t&n=1 HTTP/1.1", "t0ps3cr3t", "&n=1"),
    ("GET /cb?access_token=t0ps3cr3t HTTP/1.1", "t0ps3cr3t", "GET /cb?access_token="),
    ('{"username":"alice","password":"hunter2"}', "hunter2", '"username":"alice"'),
    ('{"user": "alice", "secret": "s3cr3t"}', "s3cr3t", '"user": "alice"'),
    ("pushing to https://bob:hunter2@registry.example.com/v2/", "hunter2", "https://bob:"),
    (f"token issued {JWT} for alice", JWT, "for alice"),
    (f'err.detail="invalid token {JWT}"', JWT, "err.detail="),
    # quoted credentials and values with spaces
    ('authorization="Basic YWxpY2U6aHVudGVyMg==" user=alice', "YWxpY2U6aHVudGVyMg==", "user=alice"),
    ('Authorization: Basic "YWxpY2U6aHVudGVyMg=="', "YWxpY2U6aHVudGVyMg==", "Authorization: Basic "),
    ("password='correct horse battery' user=alice", "horse", "user=alice"),
    ('msg="login password=\\"correct horse\\" failed" level=warn', "horse", "level=warn"),
    ('password="correct horse battery', "horse", 'password="'),
    # X-Registry-Auth: base64 JSON with the user's password (header dump, Go map, JSON, logfmt)
    ("X-Registry-Auth: eyJ1c2VybmFtZSI6ImFsaWNlIiwicGFzc3dvcmQiOiJodW50ZXIyIn0=", "eyJ1c2VybmFtZSI6", "X-Registry-Auth: "),
    ("headers=map[X-Registry-Auth:[eyJ1c2VybmFtZSI6ImFsaWNlIn0=] User-Agent:[docker/24]]", "eyJ1c2VybmFtZSI6", "User-Agent:[docker/24]"),
    ('{"X-Registry-Auth":["eyJ1c2VybmFtZSI6ImFsaWNlIn0="],"ua":"x"}', "eyJ1c2VybmFtZSI6", '"ua":"x"'),
    ('http.request.header.x-registry-auth="eyJ1c2VybmFtZSI6ImFsaWNlIn0=" a=b', "eyJ1c2VybmFtZSI6", " a=b"),
    # pass= and passwd= keys
    ("login pass=hunter2 user=bob", "hunter2", "user=bob"),
    ("GET /x?user=a&pass=hunter2&n=1 HTTP/1.1", "hunter2", "&n=1"),
    ("db_pass=hunter2 ok", "hunter2", " ok"),
    ("passwd=hunter2 x=1", "hunter2", "x=1"),
    ('{"passwd":"hunter 2","user":"bob"}', "hunter", '"user":"bob"'),
]


@pytest.mark.parametrize(("text", "secret", "kept"), SECRET_CASES)
def test_redact_masks_secrets(text: str, secret: str, kept: str) -> None:
    out = redact(text)
    assert secret not in out
    assert "[REDACTED]" in out
    assert kept in out


@pytest.mark.parametrize(
    "text",
    ["bypass=true compass=north", '{"bypass":"yes","passenger":"bob"}', "GET /v2/passport/manifests/1 HTTP/1.1"],
)
def test_words_that_merely_contain_pass_are_untouched(text: str) -> None:
    assert redact(text) == text


def test_json_password_with_spaces_is_fully_masked() -> None:
    out = redact('{"username":"alice","password": "correct horse battery staple"}')
    assert "horse" not in out and "staple" not in out


@pytest.mark.parametrize("name", ["registry-text", "registry-json", "registry-tty", "gc", "gc-json"])
def test_ordinary_sample_lines_are_untouched(name: str) -> None:
    for line in (lib.SAMPLES / f"{name}.log").read_text(encoding="utf-8").splitlines():
        assert redact(line) == line


def test_ordinary_event_raw_is_the_line() -> None:
    line = next(l for l in (lib.SAMPLES / "registry-text.log").read_text().splitlines() if l.startswith("127.0.0.1"))
    e = DistributionParser().parse(RawLine("s", "p", line, "fp", 0, 0))
    assert isinstance(e, Event) and e.raw == line


def _parse(text: str) -> Event:
    e = DistributionParser(T).parse(RawLine("s", "p", text, "fp", 0, 0))
    assert isinstance(e, Event), e
    return e


def test_event_raw_is_redacted_access_line() -> None:
    line = lib.access_line("10.0.0.1", T, "GET", "/v2/team/x/manifests/1?password=hunter2&token=" + JWT, 200, 10, "curl/8")
    e = _parse(line)
    assert "hunter2" not in e.raw and JWT not in e.raw
    assert e.path == "/v2/team/x/manifests/1"  # the fields are still read from the real line
    assert e.tally == "pull"


def test_event_raw_is_redacted_app_line() -> None:
    f = lib.request_fields(
        "r1", "GET", "https://alice:hunter2@reg.example/v2/team/x/manifests/1",
        **{"http.response.status": 200, "http.request.header.authorization": "Bearer " + JWT},
    )
    e = _parse(lib.logrus_line(T, "info", "response completed", f))
    assert "hunter2" not in e.raw and JWT not in e.raw
    e = _parse(lib.json_line(T, "info", "response completed", f))
    assert "hunter2" not in e.raw and JWT not in e.raw


def test_stored_events_and_quarantine_are_redacted(tmp_path: Path) -> None:
    secret_access = lib.access_line("10.0.0.1", T, "GET", "/v2/team/x/manifests/1?password=hunter2", 200, 10, "curl/8")
    junk = [
        "Authorization: Bearer " + JWT,
        '{"password":"hunter2","note":"not a log line"}',
        "curl https://bob:hunter2@reg.example/v2/",
        "garbage password=hunter2 \xff",
    ]
    p = tmp_path / "s.log"
    p.write_text("\n".join([secret_access, *junk]) + "\n", encoding="utf-8")
    store = lib.new_store(tmp_path / "db")
    q = Quarantine(tmp_path / "q")
    stats = ingest([str(p)], store, quarantine=q).to_dict()
    assert stats["events"] == 1
    assert sum(stats["dropped"].values()) == len(junk)
    from regwatch.stores.base import Query

    (ev,) = store.search(Query())
    assert "hunter2" not in ev.raw
    text = q.file.read_text(encoding="utf-8")
    assert "hunter2" not in text and JWT not in text
    rows = [json.loads(l) for l in text.splitlines()]
    assert len(rows) == len(junk)
    assert all("[REDACTED]" in r["text"] for r in rows)


def test_quoted_logfmt_password_with_spaces_is_fully_masked() -> None:
    out = redact('level=info msg="login" password="correct horse battery" user=alice')
    assert "horse" not in out and "battery" not in out
    assert "user=alice" in out


def test_quoted_basic_credential_is_masked() -> None:
    out = redact("Authorization: Basic 'YWxpY2U6aHVudGVyMg=='")
    assert "YWxpY2U6aHVudGVyMg==" not in out
