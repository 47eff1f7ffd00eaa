"""A small, hand-checked day of registry events for the report tests (and the browser test)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from regwatch.events import Action, AuthClass, Event, Outcome, Tally
from regwatch.sources.webhooks import DISTRIBUTION_SOURCE

DAY_START = datetime(2026, 3, 10, 0, 0, tzinfo=timezone.utc)  # 2026-03-10 in UTC
HOSTILE_REPO = 'evil/<script>alert("x")</script>'


def day_events() -> list[Event]:
    t = DAY_START + timedelta(hours=9)
    evs: list[Event] = []

    def add(action: str, tally: str = Tally.NONE.value, auth: str = AuthClass.NONE.value, **kw: object) -> None:
        i = len(evs)
        evs.append(Event(id=f"r{i:05d}", timestamp=t + timedelta(minutes=i), source=str(kw.pop("source", "distribution")),
                         component="registry", action=action, tally=tally, auth=auth, **kw))  # type: ignore[arg-type]

    for _ in range(6):
        add(Action.PULL.value, Tally.PULL.value, repository="team/app", reference="v1", outcome=Outcome.SUCCESS.value, status=200)
    for _ in range(3):
        add(Action.PULL.value, Tally.PULL_FAILED.value, repository="team/app", reference="nope", outcome=Outcome.FAILURE.value,
            status=404, error_code="manifest unknown")
    for _ in range(2):
        add(Action.AUTH.value, auth=AuthClass.AUTH_FAILURE.value, user="mallory", client_ip="10.9.9.9", outcome=Outcome.FAILURE.value)
    add(Action.BLOB_UPLOAD.value, Tally.BLOB_UPLOAD.value, repository="team/app", bytes=300_000_000, outcome=Outcome.SUCCESS.value)
    add(Action.BLOB_UPLOAD.value, Tally.BLOB_UPLOAD.value, repository=HOSTILE_REPO, bytes=1_000_000, outcome=Outcome.SUCCESS.value)
    add(Action.PUSH.value, Tally.PUSH.value, repository="team/app", reference="v2", outcome=Outcome.SUCCESS.value, status=201)
    # a delete whose log line names no user; the registry's notification does
    digest = "sha256:" + "cd" * 32
    add(Action.DELETE.value, Tally.DELETE.value, repository="team/app", reference=digest, digest=digest, request_id="req-42",
        outcome=Outcome.SUCCESS.value, status=202, client_ip="10.1.2.3")
    add(Action.DELETE.value, source=DISTRIBUTION_SOURCE, repository="team/app", digest=digest, request_id="req-42",
        user="carol", outcome=Outcome.SUCCESS.value)
    return evs


def storage_records(path: str = "/var/lib/registry", days: int = 30, end: datetime | None = None,
                    start_bytes: float = 2.6e12, per_day: float = 40e9, capacity: int = 4_000_000_000_000) -> list[object]:
    """Hourly statvfs samples of a disk growing ``per_day`` with a small daily cycle,
    through ``end`` (default: the end of the report day), as the sampler writes them."""
    import math

    from regwatch.storage import StorageSample

    end = end or DAY_START + timedelta(days=1)
    out: list[object] = []
    n = days * 24
    for i in range(n + 1):
        t = end - timedelta(hours=n - i)
        used = start_bytes + per_day * i / 24 + 3e9 * math.sin(2 * math.pi * t.hour / 24)
        out.append(StorageSample(t, path, int(used), capacity, "statvfs").to_record())
    return out
