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
