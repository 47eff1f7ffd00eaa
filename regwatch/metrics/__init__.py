"""regwatch's metrics: the catalog (the only place a metric is declared) and its objects.

``catalog.yaml`` declares every metric; :func:`load_catalog` validates it into frozen
models, :func:`build_metrics` creates the prometheus_client objects in an injected
registry, and :func:`render_markdown` gives the catalog section of docs/metrics.md
(``python -m regwatch.metrics --write docs/metrics.md`` refreshes it).
"""

from regwatch.metrics.catalog import (
    Catalog,
    CatalogError,
    LabelSpec,
    MetricSpec,
    MetricType,
    default_catalog,
    load_catalog,
    parse_catalog,
)
from regwatch.metrics.docs import render_markdown, update_document
from regwatch.metrics.labels import RepositoryLabels, request_reason
from regwatch.metrics.live import LIVE_GRACE, is_live
from regwatch.metrics.registry import Metrics, build_metrics

__all__ = [
    "LIVE_GRACE",
    "Catalog",
    "CatalogError",
    "LabelSpec",
    "MetricSpec",
    "MetricType",
    "Metrics",
    "RepositoryLabels",
    "build_metrics",
    "default_catalog",
    "is_live",
    "load_catalog",
    "parse_catalog",
    "render_markdown",
    "request_reason",
    "update_document",
]
