"""The Docker host's syslog clock is learned from the logs, never hinted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from regwatch.config import Config
from regwatch.events import Event, RawLine
from regwatch.formats import calibrate_lines, host_calibration, make_parser
from regwatch.parsing.harbor import _host_offset

CORE = (
    "Mar  5 19:00:03 172.18.0.1 core[1187]: 2024-03-05T10:00:03Z [ERROR] "
    "[/server/middleware/security/basic_auth.go:72]: failed to authenticate user:bob, error:x"
)
PROXY = '{mon} {day} {t} 172.18.0.1 proxy[1187]: 10.0.0.1 - "GET /v2/a/manifests/1 HTTP/1.1" 200 9 "-" "skopeo/1" 0.1 0.1 .'


def _proxy(mon: str = "Mar", day: str = " 5", t: str = "19:05:00") -> str:
    return PROXY.format(mon=mon, day=day, t=t)


def _times(path: Path) -> list[datetime]:
    p = make_parser("auto", Config(), calibration=host_calibration(str(path)))
    out = []
    for i, text in enumerate(path.read_text().splitlines()):
        ev = p.parse(RawLine(str(path), str(path), text, "fp", i))
        if isinstance(ev, Event):
            out.append(ev.timestamp)
    return out


def test_offset_is_in_quarter_hours_and_bounded() -> None:
    body = datetime(2024, 3, 5, 10, 0, 3, tzinfo=UTC)
    assert _host_offset((3, 5, 19, 0, 3), body) == timedelta(hours=9)
    assert _host_offset((3, 5, 15, 45, 4), body) == timedelta(hours=5, minutes=45)  # Nepal
    assert _host_offset((3, 4, 22, 0, 2), body) == timedelta(hours=-12)
    assert _host_offset((3, 5, 10, 7, 3), body) is None  # 7 minutes: not a zone
    assert _host_offset((9, 5, 10, 0, 3), body) is None  # months apart
    # across the new year: the prefix says Jan 1, the body Dec 31 UTC
    assert _host_offset((1, 1, 8, 30, 0), datetime(2023, 12, 31, 23, 30, tzinfo=UTC)) == timedelta(hours=9)


def test_a_proxy_file_borrows_the_clock_of_its_siblings(tmp_path: Path) -> None:
    (tmp_path / "core.log").write_text(CORE + "\n")
    (tmp_path / "proxy.log").write_text(_proxy() + "\n")
    cal = host_calibration(str(tmp_path / "proxy.log"))
    assert cal.offset == timedelta(hours=9) and cal.ref is not None and cal.ref.year == 2024
    assert _times(tmp_path / "proxy.log") == [datetime(2024, 3, 5, 10, 5, tzinfo=UTC)]


def test_a_sibling_of_another_host_lends_nothing(tmp_path: Path) -> None:
    (tmp_path / "core.log").write_text(CORE.replace("172.18.0.1", "other-host") + "\n")
    (tmp_path / "proxy.log").write_text(_proxy() + "\n")
    assert host_calibration(str(tmp_path / "proxy.log")).offset is None


def test_lines_before_the_first_body_time_use_the_files_own_head() -> None:
    cal = calibrate_lines([_proxy("Dec", "31", "23:59:59"), _proxy("Jan", " 1", "00:00:01"),
                           CORE.replace("Mar  5 19:00:03", "Jan  1 08:30:00").replace(
                               "2024-03-05T10:00:03Z", "2023-12-31T23:30:00Z")])
    assert cal.offset == timedelta(hours=9) and cal.ref == datetime(2023, 12, 31, 23, 30, tzinfo=UTC)
    p = make_parser("auto", Config(), calibration=cal)
    a = p.parse(RawLine("f", "f", _proxy("Dec", "31", "23:59:59"), "fp", 0))
    b = p.parse(RawLine("f", "f", _proxy("Jan", " 1", "00:00:01"), "fp", 1))
    assert isinstance(a, Event) and isinstance(b, Event)
    assert a.timestamp == datetime(2023, 12, 31, 14, 59, 59, tzinfo=UTC)
    assert b.timestamp == datetime(2023, 12, 31, 15, 0, 1, tzinfo=UTC)
