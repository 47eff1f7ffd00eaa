"""Capacity actions: fire each configured action once per episode, and record every firing.

An *episode* of a (path, threshold) starts when the forecast first crosses the threshold
within ``capacity.within`` and ends at the first sound forecast that no longer does; a
crossing again within ``capacity.cooldown`` of that end continues the same episode, so a
forecast that hovers around the limit does not fire the actions again and again. A
forecast that is not sound ("unpredictable", "not enough data") neither starts nor ends an
episode.

State lives in the store as records (the Records API of regwatch.stores.base), so it
survives restarts and is shared by every process that reads the store:

* kind ``capacity_episode``, key ``<path>|<threshold>|<time>``: ``{"state": "open" |
  "closed", "episode": id, ...}``; the newest one of a (path, threshold) is its state;
* kind ``capacity_action``, key ``<episode>|<action>|<time>``: one per firing, with the
  :class:`ActionOutcome`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from regwatch.capacity.actions import DRY_RUN, FAILED, OK, Trigger, run_action
from regwatch.capacity.assess import ETA_GUARD, Assessment, alarm_due, assess_store, threshold_label
from regwatch.config import CapacityConfig
from regwatch.events import utc

EPISODE_KIND = "capacity_episode"
ACTION_KIND = "capacity_action"
MAX_ATTEMPTS = 3  # a failing action is tried again at later evaluations, this often per episode


@dataclass(frozen=True)
class ActionOutcome:
    """One firing of one action: what it answered, for which crossing, in which episode."""

    action: str  # the action's name
    kind: str
    path: str
    threshold: float
    episode: str
    outcome: str  # ok, failed, dry_run, skipped
    detail: str
    dry_run: bool
    time: datetime
    bound: str = "lower"
    crossing: datetime | None = None  # the crossing time that triggered
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "kind": self.kind,
            "path": self.path,
            "threshold": self.threshold,
            "episode": self.episode,
            "outcome": self.outcome,
            "detail": self.detail,
            "dry_run": self.dry_run,
            "time": self.time.isoformat(),
            "bound": self.bound,
            "crossing": self.crossing.isoformat() if self.crossing is not None else None,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionOutcome:
        def t(v: Any) -> datetime | None:
            return utc(datetime.fromisoformat(v)) if isinstance(v, str) else None

        return cls(
            action=str(d.get("action")),
            kind=str(d.get("kind")),
            path=str(d.get("path")),
            threshold=float(d.get("threshold") or 0),
            episode=str(d.get("episode")),
            outcome=str(d.get("outcome")),
            detail=str(d.get("detail") or ""),
            dry_run=bool(d.get("dry_run")),
            time=t(d.get("time")) or datetime.min,
            bound=str(d.get("bound") or "lower"),
            crossing=t(d.get("crossing")),
            data=dict(d.get("data") or {}),
        )

    def __str__(self) -> str:
        mode = " (dry run)" if self.dry_run else ""
        return f"{self.action} [{self.kind}] {self.path} {threshold_label(self.threshold)}%: {self.outcome}{mode}: {self.detail}"


def _stamp(t: datetime) -> str:
    return utc(t).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record(kind: str, key: str, when: datetime, data: dict[str, Any]) -> Any:
    from regwatch.stores.base import Record

    return Record(kind, key, when, data)


def _latest(store: Any, kind: str, prefix: str) -> Any | None:
    recs = store.get_records(kind, key_prefix=prefix, limit=1, newest_first=True)
    return recs[0] if recs else None


def _crossing(a: Assessment, cfg: CapacityConfig) -> datetime | None:
    """The crossing time that triggers, or None."""
    if not a.ok:
        return None
    if cfg.bound == "lower":
        # the earliest plausible crossing within the lead, and the expected one within
        # twice the lead (alarm_due); the assessment's horizon is long enough to see it
        return a.lower if alarm_due(a.now, a.lower, a.eta, cfg.within) else None
    t = a.eta
    if t is None or (t - a.now).total_seconds() > cfg.within:
        return None
    return t


def _episode(store: Any, a: Assessment, cfg: CapacityConfig, crossing: datetime | None, now: datetime) -> str | None:
    """Move the (path, threshold) episode state on; the open episode's id, or None."""
    prefix = f"{a.path}|{threshold_label(a.threshold)}|"
    last = _latest(store, EPISODE_KIND, prefix)
    state = dict(last.data) if last is not None else {}
    is_open = state.get("state") == "open"
    if crossing is None:
        if is_open and a.ok:
            store.put_records([_record(EPISODE_KIND, prefix + _stamp(now), now, {
                "state": "closed", "episode": state.get("episode"), "path": a.path, "threshold": a.threshold,
            })])
        return None
    if is_open:
        return str(state["episode"])
    if last is not None and state.get("state") == "closed" and (now - utc(last.timestamp)).total_seconds() <= cfg.cooldown:
        episode = str(state["episode"])  # back within the cooldown: the same episode
    else:
        episode = prefix + _stamp(now)
    store.put_records([_record(EPISODE_KIND, prefix + _stamp(now), now, {
        "state": "open", "episode": episode, "path": a.path, "threshold": a.threshold,
        "crossing": crossing.isoformat(), "bound": cfg.bound,
    })])
    return episode


def _due(store: Any, episode: str, action: str, dry_run: bool) -> bool:
    """Whether ``action`` still has to fire in ``episode``: never after a success (or a
    "skipped": Harbor already collecting), once in dry-run mode, and at most MAX_ATTEMPTS
    failures."""
    prior = [r.data for r in store.get_records(ACTION_KIND, key_prefix=f"{episode}|{action}|", limit=100)]
    if any(p.get("outcome") not in (FAILED, DRY_RUN) for p in prior):
        return False
    if dry_run:
        return not any(p.get("outcome") == DRY_RUN for p in prior)
    return sum(1 for p in prior if p.get("outcome") == FAILED) < MAX_ATTEMPTS


def evaluate_capacity(
    store: Any,
    cfg: CapacityConfig,
    now: datetime,
    *,
    environ: Mapping[str, str] | None = None,
    assessments: list[Assessment] | None = None,
) -> list[ActionOutcome]:
    """Assess every sampled path against ``cfg.thresholds``, and fire the actions of each
    crossing forecast within ``cfg.within`` that has not fired in its episode. Returns the
    firings of this call (each also recorded in the store). Dry-run (the default) records
    what would be done and does nothing. Raises StoreError (reading history or records).

    ``assessments`` skips the forecast (tests and callers that already have one);
    ``environ`` is where secrets are looked up (default: the process environment).
    """
    now = utc(now)
    env = os.environ if environ is None else environ
    if assessments is None:
        assessments = assess_store(store, now, cfg.thresholds, timedelta(seconds=ETA_GUARD * cfg.within), paths=cfg.paths)
    outcomes: list[ActionOutcome] = []
    for a in assessments:
        crossing = _crossing(a, cfg)
        episode = _episode(store, a, cfg, crossing, now)
        if episode is None:
            continue
        trigger = Trigger(a, episode, cfg.bound, store=store, now=now)
        for action in cfg.actions:
            if not _due(store, episode, action.name, cfg.dry_run):
                continue
            outcome, detail, data = run_action(action, trigger, cfg.dry_run, env)
            if action.kind == "retention_report" and outcome == OK and cfg.dry_run:
                detail = "(read-only, runs in dry-run mode too) " + detail
            res = ActionOutcome(
                action=action.name, kind=action.kind, path=a.path, threshold=a.threshold, episode=episode,
                outcome=outcome, detail=detail, dry_run=cfg.dry_run, time=now, bound=cfg.bound,
                crossing=crossing, data=data,
            )
            store.put_records([_record(ACTION_KIND, f"{episode}|{action.name}|{_stamp(now)}", now, res.to_dict())])
            outcomes.append(res)
    return outcomes


def recorded_outcomes(store: Any, since: datetime | None = None, until: datetime | None = None, limit: int = 1000) -> list[ActionOutcome]:
    """The recorded firings between ``since`` and ``until``, oldest first. Raises StoreError."""
    recs = store.get_records(ACTION_KIND, since=since, until=until, limit=limit)
    out = [ActionOutcome.from_dict(r.data) for r in recs]
    out.sort(key=lambda o: o.time)
    return out
