"""The metric catalog: loading and validation, emitted equals declared, the generated docs."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC
from fnmatch import fnmatch
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from regwatch.errors import ConfigError, RegwatchError
from regwatch.events import DropReason, NoiseKind
from regwatch.metrics import (
    CatalogError,
    MetricType,
    RepositoryLabels,
    build_metrics,
    default_catalog,
    load_catalog,
    parse_catalog,
    render_markdown,
    request_reason,
    update_document,
)
from regwatch.metrics.catalog import BASE_UNITS, COUNT_UNITS, FORBIDDEN_LABELS, MAX_SERIES, OTHER

ROOT = Path(__file__).resolve().parents[2]
CATALOG = default_catalog()


def sample_value(label_kind: str, values: tuple[str, ...], name: str) -> str:
    if values:
        return values[0]
    return (
        "/var/lib/registry"
        if name == "path"
        else ("library/alpine" if name == "repository" else "registry")
    )


def filled_registry() -> CollectorRegistry:
    """A fresh registry with every catalog metric built and one sample set on each."""
    registry = CollectorRegistry()
    metrics = build_metrics(registry)
    for spec in CATALOG:
        m = metrics[spec.name]
        child = (
            m.labels(*(sample_value(lb.kind, lb.values, lb.name) for lb in spec.labels))
            if spec.labels
            else m
        )
        if spec.type is MetricType.COUNTER:
            child.inc(3)  # type: ignore[union-attr]
        else:
            child.set(42)  # type: ignore[union-attr]
    return registry


# ------------------------------------------------------------------ the shipped catalog


def test_shipped_catalog_loads_and_is_cached() -> None:
    assert len(CATALOG) >= 20
    assert default_catalog() is CATALOG
    assert load_catalog(ROOT / "regwatch" / "metrics" / "catalog.yaml") == CATALOG


def test_names_follow_the_house_rule() -> None:
    for m in CATALOG:
        assert re.fullmatch(r"regwatch_[a-z0-9_]+", m.name)
        if m.type is MetricType.COUNTER:
            assert m.name.endswith(f"_{m.unit}_total"), m.name
        else:
            assert m.name.endswith(f"_{m.unit}") and not m.name.endswith("_total"), m.name
        assert m.unit in BASE_UNITS | COUNT_UNITS
    assert len(set(CATALOG.names)) == len(CATALOG)


def test_every_label_is_bounded_and_never_personal() -> None:
    for m in CATALOG:
        assert m.max_series <= MAX_SERIES
        for label in m.labels:
            assert label.name not in FORBIDDEN_LABELS
            assert label.kind in ("values", "enum", "config", "top_n")
            if label.name == "repository":
                assert label.kind == "top_n"
                assert label.max_values == CATALOG.repository_top_n + 1


def test_drop_and_noise_labels_are_the_events_enums() -> None:
    (reason,) = CATALOG["regwatch_collector_dropped_lines_total"].labels
    assert reason.values == tuple(r.value for r in DropReason)
    (kind,) = CATALOG["regwatch_collector_noise_lines_total"].labels
    assert kind.values == tuple(k.value for k in NoiseKind)


def test_webhook_outcomes_are_the_receivers() -> None:
    from regwatch.sources.webhooks import OUTCOMES

    (outcome,) = CATALOG["regwatch_webhook_requests_total"].labels
    assert outcome.values == tuple(OUTCOMES)


def test_the_issue_metrics_are_declared() -> None:
    for name in (
        "regwatch_registry_requests_total",
        "regwatch_image_pull_failures_total",
        "regwatch_auth_failures_total",
        "regwatch_anonymous_denials_total",
        "regwatch_image_deletes_total",
        "regwatch_tls_handshake_errors_total",
        "regwatch_pulled_bytes_total",
        "regwatch_pushed_bytes_total",
        "regwatch_storage_used_bytes",
        "regwatch_storage_capacity_bytes",
        "regwatch_storage_time_to_threshold_seconds",
        "regwatch_collector_read_lines_total",
        "regwatch_collector_dropped_lines_total",
        "regwatch_collector_noise_lines_total",
        "regwatch_collector_lag_bytes",
        "regwatch_collector_lag_seconds",
        "regwatch_collector_last_event_age_seconds",
        "regwatch_store_errors_total",
        "regwatch_webhook_requests_total",
    ):
        assert name in CATALOG, name
    assert CATALOG["regwatch_registry_requests_total"].label_names == (
        "action",
        "outcome",
        "reason",
    )
    assert "challenge" in CATALOG["regwatch_registry_requests_total"].labels[2].values
    assert CATALOG["regwatch_auth_failures_total"].labels == ()
    forecast = CATALOG["regwatch_storage_time_to_threshold_seconds"]
    assert {lb.name: lb.values for lb in forecast.labels if lb.kind == "values"} == {
        "threshold": ("85", "100"),
        "bound": ("eta", "lower", "upper"),
    }


# ------------------------------------------------------------------ emitted == declared


def test_emitted_equals_declared() -> None:
    text = generate_latest(filled_registry()).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    declared = {m.family: m for m in CATALOG}
    created = {m.family + "_created" for m in CATALOG if m.type is MetricType.COUNTER}
    assert set(families) - created == set(declared)
    for family, spec in declared.items():
        f = families[family]
        assert f.type == spec.type.value, spec.name
        assert f.documentation == spec.help, spec.name
        samples = [s for s in f.samples if not s.name.endswith("_created")]
        assert samples, spec.name
        for s in samples:
            assert s.name == spec.name
            assert tuple(sorted(s.labels)) == tuple(sorted(spec.label_names)), spec.name


def test_openmetrics_units_are_the_declared_base_units() -> None:
    from prometheus_client.openmetrics.exposition import generate_latest as generate_om
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

    families = {f.name: f for f in parse_om(generate_om(filled_registry()).decode())}
    for spec in CATALOG:
        unit = spec.unit if spec.unit in BASE_UNITS else ""
        assert families[spec.family].unit == unit, spec.name
        assert families[spec.family].type == spec.type.value, spec.name


def test_enumerated_metrics_start_at_zero_for_every_value() -> None:
    registry = CollectorRegistry()
    build_metrics(registry)
    for reason in DropReason:
        assert (
            registry.get_sample_value(
                "regwatch_collector_dropped_lines_total", {"reason": reason.value}
            )
            == 0
        )
    assert registry.get_sample_value("regwatch_auth_failures_total") == 0
    assert registry.get_sample_value("regwatch_store_errors_total", {"stage": "write"}) == 0
    # too many combinations (or config-bound labels): no series until the first event
    assert (
        registry.get_sample_value(
            "regwatch_registry_requests_total",
            {"action": "pull", "outcome": "success", "reason": "ok"},
        )
        is None
    )


def test_registry_is_injected_and_built_once() -> None:
    a, b = CollectorRegistry(), CollectorRegistry()
    ma, mb = build_metrics(a), build_metrics(b)
    ma.counter("regwatch_auth_failures_total").inc()
    assert a.get_sample_value("regwatch_auth_failures_total") == 1
    assert b.get_sample_value("regwatch_auth_failures_total") == 0
    with pytest.raises(ValueError):
        build_metrics(a)
    with pytest.raises(TypeError, match="gauge, not a counter"):
        mb.counter("regwatch_storage_used_bytes")
    with pytest.raises(KeyError, match="declare it in regwatch/metrics/catalog.yaml"):
        mb["regwatch_nope_total"]


# ------------------------------------------------------------------ a bad catalog

GOOD = """
version: 1
metrics:
  - name: regwatch_things_requests_total
    type: counter
    unit: requests
    help: things
    labels: [{name: outcome, values: [a, b]}]
"""


def bad(metric: str) -> str:
    return "version: 1\nmetrics:\n" + metric


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            bad("  - {name: regwatch_things_requests, type: counter, unit: requests, help: h}\n"),
            "must end in '_requests_total'",
        ),
        (
            bad("  - {name: regwatch_things_bytes_total, type: gauge, unit: bytes, help: h}\n"),
            "only a counter may end in _total",
        ),
        (
            bad("  - {name: regwatch_things_bytes, type: gauge, unit: seconds, help: h}\n"),
            "must end in '_seconds'",
        ),
        (bad("  - {name: regwatch_bytes, type: gauge, unit: bytes, help: h}\n"), "no noun"),
        (
            bad("  - {name: regwatch_things_furlongs, type: gauge, unit: furlongs, help: h}\n"),
            "unit 'furlongs'",
        ),
        (
            bad("  - {name: RegwatchThings_bytes, type: gauge, unit: bytes, help: h}\n"),
            "snake case",
        ),
        (
            bad("  - {name: regwatch_things_bytes, type: summary, unit: bytes, help: h}\n"),
            "type 'summary'",
        ),
        (
            bad("  - {name: regwatch_things_bytes, type: gauge, unit: bytes, help: ''}\n"),
            "'help' must be",
        ),
        (
            bad(
                "  - {name: regwatch_things_bytes, type: gauge, unit: bytes, help: h, labels: [{name: user, bound: config}]}\n"
            ),
            "'user' is not allowed",
        ),
        (
            bad(
                "  - {name: regwatch_things_bytes, type: gauge, unit: bytes, help: h, labels: [{name: client_ip, values: [a]}]}\n"
            ),
            "'client_ip' is not allowed",
        ),
        (
            bad(
                "  - {name: regwatch_things_bytes, type: gauge, unit: bytes, help: h, labels: [{name: kind}]}\n"
            ),
            "exactly one of",
        ),
        (
            bad(
                "  - {name: regwatch_things_bytes, type: gauge, unit: bytes, help: h, labels: [{name: repository, bound: config}]}\n"
            ),
            "repository label must be 'bound: top_n'",
        ),
        (
            bad(
                "  - {name: regwatch_things_bytes, type: gauge, unit: bytes, help: h, labels: [{name: kind, enum: Action}]}\n"
            ),
            "enum 'Action'",
        ),
        (
            bad(
                "  - {name: regwatch_things_bytes, type: gauge, unit: bytes, help: h, labels: [{name: kind, bound: any}]}\n"
            ),
            "bound 'any'",
        ),
        (
            bad(
                "  - {name: regwatch_things_bytes, type: gauge, unit: bytes, help: h, labels: [{name: kind, values: [a, a]}]}\n"
            ),
            "distinct strings",
        ),
        (
            bad(
                "  - {name: regwatch_things_bytes, type: gauge, unit: bytes, help: h, labels: [{name: a, bound: config, max: 100}, {name: b, bound: config, max: 100}]}\n"
            ),
            "at most 2000 allowed",
        ),
        (
            bad(
                "  - {name: regwatch_things_bytes, type: gauge, unit: bytes, help: h, colour: red}\n"
            ),
            "unknown key(s) ['colour']",
        ),
        (
            bad(
                "  - {name: regwatch_things_bytes, type: gauge, unit: bytes, help: h}\n  - {name: regwatch_things_bytes, type: gauge, unit: bytes, help: h}\n"
            ),
            "declared more than once",
        ),
        ("version: 2\nmetrics: []\n", "this regwatch reads version 1"),
        ("metrics: [\n", "not valid YAML"),
        ("- a\n", "must be a mapping"),
    ],
)
def test_bad_catalog_is_a_clear_regwatch_error(text: str, message: str) -> None:
    with pytest.raises(CatalogError) as info:
        parse_catalog(text, "test.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("test.yaml")
    assert isinstance(info.value, ConfigError) and isinstance(info.value, RegwatchError)


def test_every_problem_is_reported_at_once() -> None:
    text = bad(
        "  - {name: regwatch_a_requests, type: counter, unit: requests, help: h}\n"
        "  - {name: regwatch_b_bytes, type: gauge, unit: bytes, help: h, labels: [{name: user, bound: config}]}\n"
    )
    with pytest.raises(CatalogError, match=r"2 problem\(s\)") as info:
        parse_catalog(text)
    assert "regwatch_a_requests" in str(info.value) and "'user'" in str(info.value)


def test_good_minimal_catalog_and_unreadable_file(tmp_path: Path) -> None:
    c = parse_catalog(GOOD)
    assert c.names == ("regwatch_things_requests_total",)
    assert c["regwatch_things_requests_total"].family == "regwatch_things_requests"
    with pytest.raises(CatalogError, match="cannot read the metric catalog"):
        load_catalog(tmp_path / "missing.yaml")


# ------------------------------------------------------------------ label helpers


def test_repository_label_is_capped() -> None:
    labels = RepositoryLabels(2, seed=["big/one"])
    assert labels("big/one") == "big/one"
    assert labels("new/two") == "new/two"
    assert labels("new/three") == OTHER
    assert labels(None) == OTHER and labels("") == OTHER
    assert labels("new/two") == "new/two"  # a name keeps its slot
    assert labels.names == {"big/one", "new/two"}


@pytest.mark.parametrize(
    ("status", "auth", "reason"),
    [
        (200, "none", "ok"),
        (307, "none", "redirect"),
        (401, "challenge", "challenge"),
        (401, "auth_failure", "auth_failure"),
        (401, "anonymous_denial", "anonymous_denial"),
        (401, "none", "anonymous_denial"),
        (403, "none", "forbidden"),
        (404, "none", "not_found"),
        (429, "none", "rate_limited"),
        (400, "none", "client_error"),
        (503, "none", "server_error"),
        (None, "none", "unknown"),
    ],
)
def test_request_reason(status: int | None, auth: str, reason: str) -> None:
    assert request_reason(status, auth) == reason
    assert reason in CATALOG["regwatch_registry_requests_total"].labels[2].values


# ------------------------------------------------------------------ docs and packaging


def test_docs_metrics_md_is_generated_from_the_catalog() -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert update_document(doc, CATALOG) == doc, (
        "docs/metrics.md is stale: run python -m regwatch.metrics --write docs/metrics.md"
    )
    for m in CATALOG:
        assert f"`{m.name}`" in render_markdown(CATALOG)


def test_catalog_yaml_is_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    globs = pyproject["tool"]["setuptools"]["package-data"]["regwatch"]
    assert any(fnmatch("metrics/catalog.yaml", g) for g in globs), globs


def test_live_events_and_backfill() -> None:
    from datetime import datetime, timedelta

    from regwatch.metrics import LIVE_GRACE, is_live

    start = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert is_live(start, start) and is_live(start + timedelta(hours=1), start)
    assert is_live(start - LIVE_GRACE, start)
    assert not is_live(start - LIVE_GRACE - timedelta(seconds=1), start)
    assert not is_live(start - timedelta(days=90), start)
