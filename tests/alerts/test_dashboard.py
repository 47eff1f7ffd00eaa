"""dashboards/grafana/regwatch.json: a valid dashboard model whose queries name only
catalog metrics (their PromQL checked by the real promtool)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from alert_tools import metric_names

from regwatch.metrics import default_catalog

pytestmark = pytest.mark.alerts

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboards" / "grafana" / "regwatch.json"
CATALOG = default_catalog()
BUILTIN_VARS = {"__rate_interval", "__interval", "__range", "__range_s"}


def model() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in model()["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # a collapsed row holds its panels
    return [p for p in out if p["type"] != "row"]


def queries() -> list[tuple[str, str]]:
    """(panel title, expr) of every target, and of the query variables."""
    out = [(p["title"], t["expr"]) for p in panels() for t in p["targets"]]
    for v in model()["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            inner = re.fullmatch(r"label_values\((.+),\s*\w+\)", q)
            assert inner, q
            out.append((f"${v['name']}", inner.group(1)))
    return out


def test_dashboard_model() -> None:
    d = model()
    assert d["title"] and d["uid"] == "regwatch"
    assert isinstance(d["schemaVersion"], int) and d["schemaVersion"] >= 36
    variables = {v["name"]: v for v in d["templating"]["list"]}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    assert len(panels()) >= 12
    for p in panels():
        assert p["title"] and p["type"] in {"timeseries", "stat", "gauge", "bargauge", "table"}
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        g = p["gridPos"]
        assert set(g) == {"h", "w", "x", "y"} and 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["expr"].strip() and t["datasource"] == p["datasource"]


def test_panels_do_not_overlap() -> None:
    boxes = [(p["title"], p["gridPos"]) for p in model()["panels"]]
    for i, (a, g) in enumerate(boxes):
        for b, h in boxes[i + 1 :]:
            apart = (
                g["x"] + g["w"] <= h["x"]
                or h["x"] + h["w"] <= g["x"]
                or g["y"] + g["h"] <= h["y"]
                or h["y"] + h["h"] <= g["y"]
            )
            assert apart, (a, b)


def test_queries_name_only_catalog_metrics() -> None:
    declared = CATALOG.series_names()
    for title, expr in queries():
        names = metric_names(expr)
        assert names, (title, expr)
        assert names <= declared, f"{title}: {sorted(names - declared)} not in the catalog"


def test_queries_use_only_defined_variables() -> None:
    defined = {v["name"] for v in model()["templating"]["list"]} | BUILTIN_VARS
    for title, expr in queries():
        for var in re.findall(r"\$\{?(\w+)", expr):
            assert var in defined, (title, var)


def test_dashboard_shows_what_the_issue_asks() -> None:
    used = set().union(*(metric_names(e) for _, e in queries()))
    for name in (
        "regwatch_registry_requests_total",
        "regwatch_auth_failures_total",
        "regwatch_pulled_bytes_total",
        "regwatch_pushed_bytes_total",
        "regwatch_storage_used_bytes",
        "regwatch_storage_capacity_bytes",
        "regwatch_storage_time_to_threshold_seconds",
        "regwatch_collector_lag_seconds",
        "regwatch_collector_last_event_age_seconds",
        "regwatch_collector_dropped_lines_total",
    ):
        assert name in used, name
    exprs = " ".join(e for _, e in queries())
    assert "0.85 * regwatch_storage_capacity_bytes" in exprs
    assert 'threshold="100", bound="eta"} / 86400' in exprs


def test_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    # each query as a recording rule: promtool check rules parses its PromQL
    subst = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}
    rules = []
    for i, (_, expr) in enumerate(queries()):
        for k, v in subst.items():
            expr = expr.replace(k, v)
        expr = re.sub(r"\$\w+", ".*", expr)
        rules.append({"record": f"dashboard:query{i}", "expr": expr})
    f = tmp_path / "dashboard.rules.yml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    r = subprocess.run(
        [promtool, "check", "rules", str(f)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
