"""--since/--until values: ISO-8601 or an age relative to the (injected) clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from regwatch.errors import BadTime, ConfigError
from regwatch.timeargs import parse_time

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("0d", timedelta(0)),
        (" 7d ", timedelta(days=7)),
        ("7 d", timedelta(days=7)),
        ("365d", timedelta(days=365)),
    ],
)
def test_relative(text: str, delta: timedelta) -> None:
    assert parse_time(text, NOW) == NOW - delta


def test_now() -> None:
    assert parse_time("now", NOW) == NOW


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=timezone.utc)),
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
        ("2024-05-01T12:00:00z", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
        ("2024-05-01T12:00:00", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),  # zone-less is UTC
        ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
        ("2024-05-01T07:30:00-04:30", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
        ("2024-05-01T12:00:00.250Z", datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)),
        ("2024-05-01 12:00:00", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
    ],
)
def test_iso(text: str, want: datetime) -> None:
    got = parse_time(text, NOW)
    assert got == want
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["yesterday", "7y", "", "-5d", "2024-13-01", "1.5h", "d7", "2024/05/01"])
def test_bad_values_name_the_value(text: str) -> None:
    with pytest.raises(BadTime) as ei:
        parse_time(text, NOW)
    assert repr(text) in str(ei.value)
    assert "\n" not in str(ei.value)
    assert isinstance(ei.value, ConfigError) and ei.value.exit_code == 2
