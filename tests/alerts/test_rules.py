"""alert_rules/: the rules, their promtool unit tests, the Alertmanager example, and the
exposition of the catalog-built registry, all checked with the real promtool and amtool."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from alert_tools import metric_names, require_tool
from prometheus_client import CollectorRegistry, generate_latest

from regwatch.events import DropReason, NoiseKind
from regwatch.metrics import MetricType, build_metrics, default_catalog

pytestmark = pytest.mark.alerts

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "alert_rules" / "regwatch.rules.yml"
UNIT_TESTS = sorted((ROOT / "alert_rules" / "tests").glob("*.yml"))
AM_EXAMPLE = ROOT / "alert_rules" / "alertmanager.example.yml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
CATALOG = default_catalog()


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        input=stdin.decode() if stdin else None,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


# ------------------------------------------------------------------ promtool


def test_promtool_check_rules(promtool: str) -> None:
    r = run(promtool, "check", "rules", str(RULES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_promtool_unit_tests(promtool: str) -> None:
    assert UNIT_TESTS
    r = run(promtool, "test", "rules", *map(str, UNIT_TESTS))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAILED" not in r.stdout


def test_promtool_check_metrics_on_catalog_exposition(promtool: str) -> None:
    registry = CollectorRegistry()
    m = build_metrics(registry)
    m.counter("regwatch_registry_requests_total").labels("pull", "success", "ok").inc(90)
    m.counter("regwatch_registry_requests_total").labels("pull", "failure", "not_found").inc(4)
    m.counter("regwatch_registry_requests_total").labels("base", "failure", "challenge").inc(27)
    m.counter("regwatch_image_pulls_total").labels("library/alpine").inc(90)
    m.counter("regwatch_image_pull_failures_total").labels("other", "not_found").inc(4)
    m.counter("regwatch_image_pushes_total").labels("team-a/app", "success").inc(2)
    m.counter("regwatch_image_deletes_total").labels("team-a/app", "failure").inc()
    m.counter("regwatch_auth_failures_total").inc(3)
    m.counter("regwatch_anonymous_denials_total").inc(2)
    m.counter("regwatch_tls_handshake_errors_total").inc()
    m.counter("regwatch_pulled_bytes_total").labels("library/alpine").inc(31_457_280)
    m.counter("regwatch_pushed_bytes_total").labels("team-a/app").inc(341_560)
    m.gauge("regwatch_storage_used_bytes").labels("/var/lib/registry").set(8.6e11)
    m.gauge("regwatch_storage_capacity_bytes").labels("/var/lib/registry").set(1e12)
    m.counter("regwatch_storage_sample_errors_total").labels("/srv/gone", "vanished").inc()
    for bound, value in (("eta", 5 * 86400), ("lower", 3 * 86400), ("upper", float("inf"))):
        m.gauge("regwatch_storage_time_to_threshold_seconds").labels(
            "/var/lib/registry", "100", bound
        ).set(value)
    m.gauge("regwatch_collector_start_time_seconds").set(1_796_600_000)
    m.counter("regwatch_collector_read_lines_total").labels("registry").inc(1005)
    m.counter("regwatch_collector_stored_events_total").labels("backfill").inc(353)
    m.counter("regwatch_collector_dropped_lines_total").labels(DropReason.UNPARSABLE.value).inc(42)
    m.counter("regwatch_collector_noise_lines_total").labels(NoiseKind.REGISTRY_APP.value).inc(7)
    m.gauge("regwatch_collector_lag_bytes").labels("registry").set(4096)
    m.gauge("regwatch_collector_lag_seconds").labels("registry").set(1.5)
    m.gauge("regwatch_collector_last_event_age_seconds").labels("registry").set(12)
    m.counter("regwatch_store_errors_total").labels("write").inc()
    m.counter("regwatch_webhook_requests_total").labels("accepted").inc(5)
    m.counter("regwatch_webhook_events_total").labels("duplicate").inc(2)
    text = generate_latest(registry)
    for spec in CATALOG:  # every declared metric has a sample in what promtool reads
        assert f"\n{spec.name}".encode() in b"\n" + text, spec.name
    r = run(promtool, "check", "metrics", stdin=text)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (r.stdout + r.stderr).strip() == ""


# ------------------------------------------------------------------ conventions


def test_every_alert_follows_the_mixin_conventions() -> None:
    rules = alerts()
    assert len(rules) >= 8
    names = [r["alert"] for r in rules]
    assert len(set(names)) == len(names)
    for r in rules:
        name = r["alert"]
        assert re.fullmatch(r"Regwatch(?:[A-Z][a-z0-9]+)+", name), name
        assert r["labels"]["severity"] in ("critical", "warning", "info"), name
        assert set(r["annotations"]) >= {"summary", "description", "runbook_url"}, name
        assert re.fullmatch(r"\d+[mh]", str(r.get("for", ""))), name
        assert r["annotations"]["runbook_url"] == f"docs/runbooks.md#{name.lower()}", name


def test_every_alert_has_a_runbook_section() -> None:
    headings = re.findall(r"^## (.+)$", RUNBOOKS.read_text(encoding="utf-8"), flags=re.MULTILINE)
    anchors = {slug(h) for h in headings}
    for r in alerts():
        anchor = r["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in anchors, f"docs/runbooks.md has no section for {r['alert']}"
    assert {h.strip() for h in headings} == {r["alert"] for r in alerts()}


def test_ratio_alerts_are_guarded_by_a_minimum_volume() -> None:
    for r in alerts():
        expr = r["expr"]
        if re.search(r"\)\s*/\s*\n?\s*sum", expr):
            assert re.search(r"\band\b[\s\S]*increase\([^)]*\)\)\s*>=\s*\d+", expr), r["alert"]


def test_metrics_used_by_rules_are_in_the_catalog() -> None:
    declared = CATALOG.series_names()
    for r in alerts():
        names = metric_names(r["expr"])
        assert names, r["alert"]
        assert names <= declared, f"{r['alert']} uses undeclared {sorted(names - declared)}"
    for r in alerts():  # a counter is only read through rate() or increase()
        for name in metric_names(r["expr"]):
            if CATALOG[name].type is MetricType.COUNTER:
                for m in re.finditer(rf"\b{name}\b", r["expr"]):
                    before = r["expr"][: m.start()].rstrip()
                    assert re.search(r"\b(?:rate|irate|increase)\($", before), (r["alert"], name)


def test_metric_name_extraction() -> None:
    expr = 'sum without (a, b) (rate(regwatch_x_total{a="b c"}[5m])) / on(job) regwatch_y_bytes > 0.5 and absent(up)'
    assert metric_names(expr) == {"regwatch_x_total", "regwatch_y_bytes", "up"}


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in UNIT_TESTS:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {r["alert"] for r in alerts()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested not firing"


def test_27_challenge_401s_do_not_fire_the_auth_alert() -> None:
    doc = yaml.safe_load(
        (ROOT / "alert_rules" / "tests" / "traffic.yml").read_text(encoding="utf-8")
    )
    cases = [
        t
        for t in doc["tests"]
        if any('reason="challenge"' in s["series"] for s in t["input_series"])
        and any(c["alertname"] == "RegwatchAuthFailuresHigh" for c in t["alert_rule_test"])
    ]
    assert cases
    for t in cases:
        values = [s["values"] for s in t["input_series"] if 'reason="challenge"' in s["series"]]
        assert any("27" in v for v in values)
        assert all(not c["exp_alerts"] for c in t["alert_rule_test"])


# ------------------------------------------------------------------ Alertmanager


def test_amtool_check_config(amtool: str) -> None:
    r = run(amtool, "check-config", str(AM_EXAMPLE))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=RegwatchStorageFull"], "regwatch-page"),
        (["severity=warning", "alertname=RegwatchStorageUsageHigh"], "regwatch-ticket"),
        (["severity=info"], "regwatch-null"),
        (["alertname=SomethingElse"], "regwatch-default"),
    ],
)
def test_alertmanager_routes_by_severity(amtool: str, labels: list[str], receiver: str) -> None:
    r = run(amtool, "config", "routes", "test", f"--config.file={AM_EXAMPLE}", *labels)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == receiver


def test_alertmanager_storage_full_inhibits_storage_high() -> None:
    doc = yaml.safe_load(AM_EXAMPLE.read_text(encoding="utf-8"))
    names = {r["alert"] for r in alerts()}
    found = False
    for rule in doc["inhibit_rules"]:
        src = " ".join(rule["source_matchers"])
        dst = " ".join(rule["target_matchers"])
        for word in re.findall(r"Regwatch[A-Za-z]+", src + " " + dst):
            assert word in names, f"the example names an alert that does not exist: {word}"
        if "RegwatchStorageFull" in src and "RegwatchStorageUsageHigh" in dst:
            assert "path" in rule["equal"]
            found = True
    assert found


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_missing_tool_fails_under_ci_and_skips_outside(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no promtool there
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="promtool not found on PATH"):
        require_tool("promtool", "prometheus")
