"""Retention recommendation: what nobody pulls any more, and roughly how many bytes it holds.

Computed from the events in the store, never from the registry's storage: pushes name the
tags, completed blob uploads carry their sizes, pulls say what is still used. How the
bytes are estimated is in docs/forecast.md ("Retention recommendation").
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from regwatch.events import Action, Outcome
from regwatch.stores.base import Aggregation, Query, Store

#: a blob upload belongs to the next manifest push of the same repository within this span
UPLOAD_TO_PUSH = timedelta(hours=1)


def _is_digest(ref: str | None) -> bool:
    return bool(ref) and ":" in str(ref) and len(str(ref)) > 40


@dataclass(frozen=True)
class StaleTag:
    repository: str
    tag: str
    last_push: datetime
    digest: str | None
    bytes: int  # estimated, see module docstring


@dataclass(frozen=True)
class StaleRepository:
    repository: str
    tags: int
    last_push: datetime | None
    bytes: int


@dataclass(frozen=True)
class Retention:
    """Repositories and tags not pulled for ``unused_days`` days before ``now``."""

    now: datetime
    unused_days: int
    repositories: tuple[StaleRepository, ...] = ()  # no pull at all since the cutoff
    tags: tuple[StaleTag, ...] = ()  # every stale tag, those of stale repositories included
    total_bytes: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def cutoff(self) -> datetime:
        return self.now - timedelta(days=self.unused_days)

    def to_dict(self, limit: int | None = 50) -> dict[str, Any]:
        """JSON-ready; the biggest ``limit`` repositories and tags (``None``: all)."""

        def rows(items: tuple[Any, ...]) -> list[dict[str, Any]]:
            out = []
            for it in items[:limit] if limit is not None else items:
                d = asdict(it)
                for k, v in d.items():
                    if isinstance(v, datetime):
                        d[k] = v.isoformat()
                out.append(d)
            return out

        return {
            "now": self.now.isoformat(),
            "unused_days": self.unused_days,
            "cutoff": self.cutoff.isoformat(),
            "total_bytes": self.total_bytes,
            "repositories": rows(self.repositories),
            "repository_count": len(self.repositories),
            "tags": rows(self.tags),
            "tag_count": len(self.tags),
            "notes": list(self.notes),
        }


def retention_recommendation(store: Store, now: datetime, unused_days: int = 90) -> Retention:
    """Tags pushed before the cutoff (``now - unused_days``) and not pulled since, and the
    repositories with no pull at all since then, biggest first. Raises StoreError.

    A tag counts as pulled when a successful manifest GET named the tag, or the digest its
    last push stored. Deleted tags (a successful manifest DELETE of the digest of the
    tag's last push) are left out.
    """
    cutoff = now - timedelta(days=unused_days)
    ok = Outcome.SUCCESS.value
    pushes = store.search(Query(until=now, actions=frozenset({Action.PUSH.value}), outcome=ok))
    uploads = store.search(Query(until=now, actions=frozenset({Action.BLOB_UPLOAD.value}), outcome=ok))
    deleted = {
        (e.repository, e.digest or e.reference)
        for e in store.search(Query(until=now, actions=frozenset({Action.DELETE.value}), outcome=ok))
    }
    pulled: set[tuple[str | None, str | None]] = set()
    pulled_repos: set[str | None] = set()
    # the pulls since the cutoff are the bulk of a busy store: grouped in the store, not
    # read as events (bench_dashboard --calls at 1M events: 0.59 s and 389 MB peak RSS,
    # was 3.21 s and 1046 MB)
    for r in store.aggregate(
        Aggregation(Query(since=cutoff, until=now, actions=frozenset({Action.PULL.value}), outcome=ok), ("repository", "reference", "digest"))
    ):
        pulled_repos.add(r["repository"])
        pulled.add((r["repository"], r["reference"]))
        if r["digest"]:
            pulled.add((r["repository"], r["digest"]))

    # pushes per repository, in time order, to attribute uploads to the next push
    by_repo: dict[str, list[Any]] = {}
    for p in pushes:
        if p.repository:
            by_repo.setdefault(p.repository, []).append(p)
    for lst in by_repo.values():
        lst.sort(key=lambda e: e.timestamp)
    times = {r: [p.timestamp for p in lst] for r, lst in by_repo.items()}
    tag_bytes: dict[tuple[str, str], int] = {}
    repo_bytes: dict[str, int] = {}
    seen_blobs: set[tuple[str, str]] = set()
    unattributed = 0
    for u in sorted(uploads, key=lambda e: e.timestamp):
        if not u.repository or not u.bytes:
            continue
        blob = (u.repository, u.digest or u.reference or u.id)
        if blob in seen_blobs:  # the same layer pushed again occupies no new bytes
            continue
        seen_blobs.add(blob)
        repo_bytes[u.repository] = repo_bytes.get(u.repository, 0) + int(u.bytes)
        lst = by_repo.get(u.repository, [])
        i = bisect_left(times.get(u.repository, []), u.timestamp)
        while i < len(lst) and lst[i].timestamp - u.timestamp <= UPLOAD_TO_PUSH:
            p = lst[i]
            same_client = not u.client_ip or not p.client_ip or p.client_ip == u.client_ip
            if same_client and p.reference and not _is_digest(p.reference):
                key = (u.repository, str(p.reference))
                tag_bytes[key] = tag_bytes.get(key, 0) + int(u.bytes)
                break
            i += 1
        else:
            unattributed += int(u.bytes)

    last_push: dict[tuple[str, str], Any] = {}
    for repo, lst in by_repo.items():
        for p in lst:
            if p.reference and not _is_digest(p.reference):
                last_push[(repo, str(p.reference))] = p
    tags: list[StaleTag] = []
    tags_per_repo: dict[str, int] = {}
    for (repo, tag), p in last_push.items():
        if (repo, p.digest) in deleted or (repo, tag) in deleted:
            continue
        tags_per_repo[repo] = tags_per_repo.get(repo, 0) + 1
        if p.timestamp >= cutoff or (repo, tag) in pulled or (p.digest and (repo, p.digest) in pulled):
            continue
        tags.append(StaleTag(repo, tag, p.timestamp, p.digest, tag_bytes.get((repo, tag), 0)))
    repos: list[StaleRepository] = []
    for repo in sorted(set(by_repo) | set(repo_bytes)):
        if repo in pulled_repos:
            continue
        lp = by_repo[repo][-1].timestamp if repo in by_repo else None
        if lp is not None and lp >= cutoff:
            continue
        repos.append(StaleRepository(repo, tags_per_repo.get(repo, 0), lp, repo_bytes.get(repo, 0)))
    repos.sort(key=lambda r: (-r.bytes, r.repository))
    tags.sort(key=lambda t: (-t.bytes, t.repository, t.tag))
    stale_repo_names = {r.repository for r in repos}
    total = sum(r.bytes for r in repos) + sum(t.bytes for t in tags if t.repository not in stale_repo_names)
    notes = [
        (
            "bytes are those of the blob uploads seen in the logs (each layer once per repository), "
            "not a scan of the storage: layers shared with other tags or repositories are counted "
            "where they were first uploaded, and blobs uploaded before the logs begin are missing"
        )
    ]
    if unattributed:
        notes.append(f"{unattributed:,} uploaded bytes could not be tied to a tag (no push followed within 1 h)")
    return Retention(now, unused_days, tuple(repos), tuple(tags), total, tuple(notes))
