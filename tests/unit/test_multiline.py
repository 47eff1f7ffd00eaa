"""A Go stack trace printed after a Harbor logger record stays one record with it."""

from __future__ import annotations

from pathlib import Path

from regwatch.pipeline import ingest
from regwatch.stores.embedded import EmbeddedStore

JOB_LOG = """2024-03-05T11:00:08Z [INFO] [/jobservice/worker/cworker/c_worker.go:76]: Job incoming: {"name":"REPLICATION","id":"abc"}
2024-03-05T11:00:09Z [ERROR] [/jobservice/runner/redis.go:123]: Job 'REPLICATION:abc' exit with error: runtime error: invalid memory address or nil pointer dereference
goroutine 1234 [running]:
runtime/debug.Stack()
\t/usr/local/go/src/runtime/debug/stack.go:24 +0x65
github.com/goharbor/harbor/src/jobservice/runner.(*RedisJob).Run.func2()
\t/harbor/src/jobservice/runner/redis.go:112 +0x85
panic({0x1f0e2a0, 0x3c35f10})
\t/usr/local/go/src/runtime/panic.go:884 +0x212
created by github.com/goharbor/harbor/src/jobservice/worker/cworker.(*basicWorker).Start
\t/harbor/src/jobservice/worker/cworker/c_worker.go:160 +0x2b2
2024-03-05T11:00:10Z [INFO] [/jobservice/runner/redis.go:197]: |*_*| Job 'REPLICATION:abc' exit with error
"""


def test_stack_trace_is_part_of_the_record_before_it(tmp_path: Path) -> None:
    log = tmp_path / "job_abc.log"
    log.write_text(JOB_LOG)
    stats = ingest([str(log)], EmbeddedStore(str(tmp_path / "db")))
    # three records: the two INFO lines and the ERROR line with its 9-line stack trace
    assert stats.lines == 3
    assert stats.dropped == {}
    assert "stack_trace" not in stats.noise and "continuation" not in stats.noise
    assert sum(stats.noise.values()) == 3


def test_a_logrus_record_with_a_raw_newline_still_joins(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_text(
        'time="2024-03-05T11:00:08Z" level=info msg="line one\n'
        'line two" go.version=go1.20\n'
        'time="2024-03-05T11:00:09Z" level=info msg="next"\n'
    )
    stats = ingest([str(log)], EmbeddedStore(str(tmp_path / "db")))
    assert stats.lines == 2 and stats.dropped == {}


# the continuation rule: a physical line with no record head of its own (no time, level,
# JSON or logrus start, client address, request) that follows a record which may go on
# over several lines is that record's continuation, not an unparsable line
NGINX_DEBUG = """2015/11/09 03:49:54 [debug] 7#7: *1 http proxy header done
Server: nginx/1.7.12
Date: Mon, 09 Nov 2015 03:49:54 GMT
Content-Type: application/json; charset=utf-8
2015/11/09 03:49:54 [debug] 7#7: *1 finalize http upstream request: 401
"""


def test_a_header_block_after_a_free_text_record_continues_it(tmp_path: Path) -> None:
    log = tmp_path / "nginx-error.log"
    log.write_text(NGINX_DEBUG)
    stats = ingest([str(log)], EmbeddedStore(str(tmp_path / "db")))
    assert stats.dropped.get("unparsable", 0) == 0, stats.dropped
    assert stats.noise.get("continuation") == 3 and stats.noise.get("nginx_error") == 2


def test_a_registry_record_is_complete_on_its_line(tmp_path: Path) -> None:
    # a logrus line with its quotes closed, a JSON record and an access line end on their
    # own line: a stray line after them stays unparsable (and is kept for inspection)
    text = (
        'time="2024-03-05T11:00:08Z" level=info msg="next" go.version=go1.20\n'
        "this is not a registry line\n"
        '{"level":"info","msg":"next","time":"2024-03-05T11:00:09Z"}\n'
        "neither is this one\n"
        '10.0.0.1 - - [05/Mar/2024:11:00:10 +0000] "GET /v2/ HTTP/1.1" 401 87 "" "docker/24.0"\n'
        "nor this one\n"
    )
    for name, body in (("plain.log", text), ("big.log", text * 400)):
        log = tmp_path / name
        log.write_text(body)
        stats = ingest([str(log)], EmbeddedStore(str(tmp_path / f"db-{name}")))
        assert stats.dropped.get("unparsable") == body.count("\n") // 2, (name, stats.dropped)
        assert "continuation" not in stats.noise


def test_an_open_logrus_value_under_docker_timestamps_continues(tmp_path: Path) -> None:
    # err.detail held a raw newline: docker gave the rest its own timestamped line
    log = tmp_path / "registry-docker-ts.log"
    log.write_text(
        '2019-04-05T07:40:32.353662000Z time="2019-04-05T07:40:32.350330434Z" level=error '
        'msg="response completed with error" err.code=unknown err.detail="s3aws: RequestError: send request failed\n'
        '2019-04-05T07:40:32.354030000Z caused by: Put https://s3.example/_uploads/aac3f57e: dial tcp: i/o timeout" '
        'err.message="unknown error" go.version=go1.11.2\n'
    )
    stats = ingest([str(log)], EmbeddedStore(str(tmp_path / "db")))
    assert stats.dropped.get("unparsable", 0) == 0, stats.dropped
    assert stats.noise.get("continuation") == 1


def test_headless_lines_and_lookalikes() -> None:
    from regwatch.formats import headless

    for text in ("Server: nginx/1.7.12", "If you want to run multiple instances of rsyslog, you need to specify",
                 "caused by: Put https://x/y: dial tcp: i/o timeout\"", " /harbor_cust_cert/ca.crt Appended ..."):
        assert headless(text), text
    for text in ("2024-03-05T11:00:08Z [INFO] msg", "Mar  5 11:00:08 host core[1]: x", 'time="2024"', "{}",
                 "10.0.0.1 - - [05/Mar/2024:11:00:10 +0000] x", "INFO[0023] started", "[2018/10/31 19:24:43] x",
                 'xxx.xx.xx.xx- "GET /v2/ HTTP/1.1" 401 87', "", "   ", "E0821 07:24:33.260123 1 x.go:1] y",
                 "1:M 01 May 2024 10:11:12.123 * Ready"):
        assert not headless(text), text


def test_a_request_line_after_bare_logger_lines_is_not_a_continuation() -> None:
    from regwatch.config import Config
    from regwatch.events import Dropped, DropReason, RawLine
    from regwatch.formats import make_parser

    p = make_parser(None, Config())
    p.parse(RawLine("t", "t", "2024-03-05T11:00:08Z [INFO] [/core/main.go:1]: started", "fp", 0))
    tail = p.parse(RawLine("t", "t", "the second line of that message", "fp", 60))
    assert isinstance(tail, Dropped) and tail.kind == "continuation", tail
    masked = p.parse(RawLine("t", "t", 'xxx.xx.xx.xx- "GET /v2/ HTTP/1.1" 401 87 "-" "docker/18.09.7"', "fp", 100))
    assert isinstance(masked, Dropped) and masked.reason is DropReason.UNPARSABLE, masked
