"""The anomaly model on seeded scenarios: two weeks of a registry's normal traffic (the
first is history, the second is scored), with and without planted anomalies."""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from regwatch.anomaly import DEFAULT_THRESHOLD, Anomaly, WorkHours, find, rank
from regwatch.errors import ConfigError
from regwatch.events import Action, AuthClass, Event, Outcome, Tally

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
SCORED = START + timedelta(days=7)
END = START + timedelta(days=14)
REPOS = [f"team{t}/app{i}" for t in range(12) for i in range(10)]
SEEDS = (1, 2, 3, 4, 5)


@dataclass
class _Gen:
    rng: random.Random
    out: list[Event]

    def ev(self, t: datetime, user: str | None, ip: str, repo: str | None, action: Action, *,
           tally: Tally = Tally.NONE, auth: AuthClass = AuthClass.NONE, status: int = 200) -> None:
        self.out.append(Event(
            id=f"e{len(self.out):08d}", timestamp=t, source="distribution", component="registry",
            action=action.value, outcome=(Outcome.SUCCESS if status < 400 else Outcome.FAILURE).value,
            tally=tally.value, auth=auth.value, repository=repo, status=status, user=user, client_ip=ip,
        ))

    def at(self, hour: datetime) -> datetime:
        return hour + timedelta(seconds=self.rng.randrange(3600))

    def pull(self, hour: datetime, user: str | None, ip: str, repo: str) -> None:
        self.ev(self.at(hour), user, ip, repo, Action.PULL, tally=Tally.PULL,
                auth=AuthClass.AUTH_SUCCESS if user else AuthClass.NONE)

    def login_challenge(self, hour: datetime, ip: str) -> None:
        self.ev(self.at(hour), None, ip, None, Action.BASE, auth=AuthClass.CHALLENGE, status=401)

    def failed_login(self, hour: datetime, user: str, ip: str) -> None:
        self.ev(self.at(hour), user, ip, None, Action.BASE, auth=AuthClass.AUTH_FAILURE, status=401)

    def delete(self, hour: datetime, user: str, ip: str, repo: str) -> None:
        self.ev(self.at(hour), user, ip, repo, Action.DELETE, tally=Tally.DELETE, status=202)


def quiet(seed: int) -> list[Event]:
    return list(_quiet(seed))


@functools.cache
def _quiet(seed: int) -> tuple[Event, ...]:
    """Two weeks of normal traffic: 40 developers on weekdays (a few late evenings, a
    new repository now and then, single failed logins and deletes), 3 CI robots from 3
    runners round the clock, a nightly retention robot that deletes, a deploy service
    account in office hours, and anonymous pulls from changing addresses."""
    rng = random.Random(seed)
    g = _Gen(rng, [])
    devs = {f"dev{i:02d}": (f"10.1.0.{i + 1}", rng.sample(REPOS, rng.randint(3, 6))) for i in range(40)}
    ci_repos = rng.sample(REPOS, 15)
    deploy_repos = rng.sample(REPOS, 8)
    hour = START
    while hour < END:
        workday = hour.weekday() < 5
        for user, (ip, repos) in devs.items():
            if workday and 8 <= hour.hour < 18 and rng.random() < 0.5:
                g.login_challenge(hour, ip)
                if rng.random() < 0.02:
                    g.failed_login(hour, user, ip)
                for _ in range(rng.randint(1, 15)):
                    g.pull(hour, user, ip, rng.choice(repos))
                if rng.random() < 0.02:
                    repos.append(rng.choice(REPOS))
                    g.pull(hour, user, ip, repos[-1])
                if rng.random() < 0.01:
                    g.delete(hour, user, ip, rng.choice(repos))
            elif workday and hour.hour == 20 and rng.random() < 0.02:
                for _ in range(rng.randint(1, 3)):
                    g.pull(hour, user, ip, rng.choice(repos))
        for n in range(3):
            for _ in range(rng.randint(20, 60)):
                g.pull(hour, f"ci-bot-{n}", f"10.2.0.{rng.randint(1, 3)}", rng.choice(ci_repos))
        if hour.hour == 2:
            for _ in range(rng.randint(5, 15)):
                g.delete(hour, "retention", "10.3.0.1", rng.choice(REPOS))
        if workday and 9 <= hour.hour < 17:
            for _ in range(rng.randint(5, 20)):
                g.pull(hour, "svc-deploy", "10.4.0.1", rng.choice(deploy_repos))
        for _ in range(rng.randint(0, 3)):
            ip = f"203.0.113.{rng.randint(1, 254)}"
            for _ in range(rng.randint(1, 4)):
                g.pull(hour, None, ip, "library/alpine")
        hour += timedelta(hours=1)
    return tuple(g.out)


@dataclass(frozen=True)
class Planted:
    kind: str
    actor: str
    hour: datetime
    feature: str


def planted(seed: int) -> tuple[list[Event], list[Planted]]:
    events, plants = _planted(seed)
    return list(events), list(plants)


@functools.cache
def _planted(seed: int) -> tuple[tuple[Event, ...], tuple[Planted, ...]]:
    """The quiet fortnight plus four anomalies in the scored week, on days the seed picks."""
    events = quiet(seed)
    rng = random.Random(1000 + seed)
    g = _Gen(rng, events)
    day = lambda: SCORED + timedelta(days=rng.randrange(5))
    out = []
    # a developer deletes 40 manifests at 03:00
    h = day().replace(hour=3)
    for _ in range(40):
        g.delete(h, "dev07", "10.1.0.8", rng.choice(REPOS))
    out.append(Planted("user", "dev07", h, "deletes"))
    # one address tries 200 passwords for admin within an hour of the afternoon
    h = day().replace(hour=14)
    for _ in range(200):
        g.failed_login(h, "admin", "198.51.100.23")
    out.append(Planted("client_ip", "198.51.100.23", h, "failed_logins"))
    # a developer touches 30 repositories new to them in one morning hour
    h = day().replace(hour=11)
    for repo in rng.sample([r for r in REPOS if r.startswith(("team11/", "team10/"))], 20) + \
            rng.sample([r for r in REPOS if r.startswith("team9/")], 10):
        g.pull(h, "dev21", "10.1.0.22", repo)
    out.append(Planted("user", "dev21", h, "new_repositories"))
    # the office-hours deploy account is active at night for the first time
    h = day().replace(hour=1)
    for _ in range(40):
        g.pull(h, "svc-deploy", "10.4.0.1", rng.choice(REPOS[:8]))
    out.append(Planted("user", "svc-deploy", h, "off_hours"))
    events.sort(key=lambda e: e.timestamp)
    return tuple(events), tuple(out)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_quiet_week_flags_nothing(seed: int) -> None:
    ranked = rank(quiet(seed), since=SCORED)
    assert len(ranked) > 1000  # every (actor, hour) of the week was scored
    assert find(quiet(seed), since=SCORED) == []
    assert not [a for a in ranked if a.flagged and a.score > DEFAULT_THRESHOLD]


@pytest.mark.parametrize("seed", SEEDS)
def test_planted_anomalies_rank_in_the_top_5(seed: int) -> None:
    events, plants = planted(seed)
    ranked = rank(events, since=SCORED)
    top = ranked[:5]
    for p in plants:
        hit = [a for a in top if _is(a, p)]
        assert hit, f"{p} not in the top 5: {[(a.kind, a.actor, a.hour, a.score, a.reasons) for a in top]}"
        assert hit[0].flagged and hit[0].score > DEFAULT_THRESHOLD
        assert hit[0].reasons[0].startswith(p.feature + "=") or any(
            r.startswith(p.feature + "=") for r in hit[0].reasons), hit[0].reasons
    flagged = find(events, since=SCORED)
    assert all(any(_is(a, p) for a in flagged) for p in plants)


def _is(a: Anomaly, p: Planted) -> bool:
    """``a`` is the planted row, or the row it was folded into (its only user's, naming it)."""
    return a.hour == p.hour and ((a.kind, a.actor) == (p.kind, p.actor) or p.actor in a.related)


def test_the_user_row_names_the_ip_and_its_lone_ip_row_is_folded() -> None:
    events, plants = planted(1)
    ranked = rank(events, since=SCORED)
    dev07 = next(a for a in ranked if (a.actor, a.hour) == ("dev07", plants[0].hour))
    assert dev07.related == ("10.1.0.8",)
    assert not [a for a in ranked if (a.actor, a.hour) == ("10.1.0.8", plants[0].hour)]
    # the address tried one user only: its row is folded into admin's, which names it
    brute = next(a for a in ranked if a.actor == "admin" and a.hour == plants[1].hour)
    assert brute.features["failed_logins"] == 200 and brute.related == ("198.51.100.23",)
    assert not [a for a in ranked if a.actor == "198.51.100.23"]


def test_challenges_and_anonymous_denials_are_no_failed_logins() -> None:
    events, _ = planted(2)
    g = _Gen(random.Random(0), events)
    h = SCORED + timedelta(days=2, hours=15)
    for _ in range(300):
        g.ev(g.at(h), None, "192.0.2.50", None, Action.BASE, auth=AuthClass.CHALLENGE, status=401)
        g.ev(g.at(h), None, "192.0.2.51", "team1/app1", Action.PULL, tally=Tally.PULL_FAILED,
             auth=AuthClass.ANONYMOUS_DENIAL, status=401)
    ranked = rank(events, since=SCORED)
    for ip in ("192.0.2.50", "192.0.2.51"):
        row = next(a for a in ranked if a.actor == ip)
        assert row.features["failed_logins"] == 0 and not row.flagged


def test_failed_deletes_count_and_repeat_weighs() -> None:
    events, _ = planted(3)
    h = SCORED + timedelta(days=1, hours=10)
    for i in range(10):
        events.append(Event(id=f"fd{i}", timestamp=h + timedelta(minutes=i), source="harbor", component="core",
                            action=Action.DELETE.value, outcome=Outcome.FAILURE.value,
                            tally=Tally.DELETE_FAILED.value, repository="team2/app2", status=403,
                            user="dev30", client_ip="10.1.0.31", repeat=5))
    row = next(a for a in rank(events, since=SCORED) if (a.kind, a.actor, a.hour) == ("user", "dev30", h))
    assert row.features["deletes"] == 50 and row.flagged


def test_a_robot_that_deletes_every_night_is_its_own_normal() -> None:
    events, _ = planted(4)
    rows = [a for a in rank(events, since=SCORED) if a.actor == "retention"]
    assert rows and all(a.features["deletes"] >= 5 for a in rows)
    assert not [a for a in rows if a.flagged]


def test_working_hours_and_timezone_decide_off_hours() -> None:
    events, plants = planted(5)
    deploy = plants[3]
    # in UTC-10 the 01:00 UTC hour is 15:00 local the day before: working time, no off-hours flag
    hawaii = WorkHours(start=7, end=20, tz="Pacific/Honolulu")
    row = next(a for a in rank(events, since=SCORED, work_hours=hawaii)
               if (a.kind, a.actor, a.hour) == ("user", "svc-deploy", deploy.hour))
    assert row.features["off_hours"] == 0
    assert WorkHours.parse("08-18", "Europe/Berlin").off(datetime(2026, 3, 3, 17, tzinfo=UTC))  # 18:00 there
    assert not WorkHours.parse("08-18", "Europe/Berlin").off(datetime(2026, 3, 3, 16, tzinfo=UTC))


def test_same_seed_same_ranking_and_bad_parameters_name_the_fix() -> None:
    events, _ = planted(1)
    a = [(x.actor, x.hour, x.score) for x in rank(events, since=SCORED)[:20]]
    b = [(x.actor, x.hour, x.score) for x in rank(list(reversed(events)), since=SCORED)[:20]]
    assert a == b
    with pytest.raises(ConfigError, match="07-20"):
        WorkHours.parse("7am")
    with pytest.raises(ConfigError, match="Europe/Berlin"):
        WorkHours(tz="Mars/Olympus")
    with pytest.raises(ConfigError, match="07-20"):
        WorkHours(start=20, end=7)


def test_too_little_to_compare_flags_nothing() -> None:
    assert rank([]) == []
    events, _ = planted(1)
    assert rank(events[:3]) == []


def test_the_scale_floor_leaves_the_row_itself_out() -> None:
    import numpy as np

    from regwatch.anomaly import _median_without

    nz = np.array([1.0, 1.0, 2.0, 40.0])
    # without the 40 the others' median is 1; without a 1 it is 2; a lone value leaves 1
    assert list(_median_without(nz, np.array([40.0, 1.0, 2.0]))) == [1.0, 2.0, 1.0]
    assert list(_median_without(np.array([40.0]), np.array([40.0]))) == [1.0]


def test_failed_logins_on_any_request_count() -> None:
    # a pull or push with a rejected password is a failed login too, not only GET /v2/
    events, _ = planted(2)
    g = _Gen(random.Random(0), events)
    h = SCORED + timedelta(days=3, hours=10)
    for i in range(60):
        g.ev(g.at(h), "dev11", "10.1.0.12", "team3/app3", Action.PUSH if i % 2 else Action.PULL,
             tally=Tally.PUSH_FAILED if i % 2 else Tally.PULL_FAILED, auth=AuthClass.AUTH_FAILURE, status=401)
    row = next(a for a in rank(events, since=SCORED) if (a.kind, a.actor, a.hour) == ("user", "dev11", h))
    assert row.features["failed_logins"] == 60
    assert row.flagged and row.reasons[0].startswith("failed_logins=")


def test_render_keeps_log_text_inert() -> None:
    from regwatch.anomaly import render

    a = Anomaly("user", "ev\x1b[31mil\x07", SCORED, 0.91, {"deletes": 40.0, "failed_logins": 0.0,
                "new_repositories": 0.0, "off_hours": 0.0}, ("deletes=40 (typical 0, robust z 40.0)",),
                ("10.0.0.1",))
    for fmt in ("table", "json", "csv"):
        out = render([a], fmt)
        assert "\x1b" not in out and "\x07" not in out and "evil" in out and "deletes=40" in out
    with pytest.raises(ConfigError, match="table, json or csv"):
        render([a], "xml")
