"""prometheus_client metric objects built from the catalog, in an injected registry.

:func:`build_metrics` is the only place a regwatch metric object is created, so nothing
can be emitted that is not declared. The service passes the registry it serves; tests pass
a fresh ``CollectorRegistry``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge

from regwatch.metrics.catalog import BASE_UNITS, Catalog, MetricSpec, MetricType, default_catalog

__all__ = ["PREFILL_MAX", "Metrics", "build_metrics"]

# A metric whose labels are all enumerated gets every combination at zero when there are
# at most this many: rate() and increase() then see the first event (a series born at 1
# hides its first increment), and alerts have a series to compare against.
PREFILL_MAX = 64

Metric = Counter | Gauge


class Metrics(Mapping[str, Metric]):
    """The built metric objects by catalog name (``metrics["regwatch_auth_failures_total"]``)."""

    def __init__(self, catalog: Catalog, objects: dict[str, Metric]) -> None:
        self.catalog = catalog
        self._objects = objects

    def __getitem__(self, name: str) -> Metric:
        try:
            return self._objects[name]
        except KeyError:
            raise KeyError(
                f"no metric {name!r} in the catalog; declare it in regwatch/metrics/catalog.yaml"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._objects)

    def __len__(self) -> int:
        return len(self._objects)

    def counter(self, name: str) -> Counter:
        """The counter declared as ``name``; raises KeyError or TypeError."""
        m = self[name]
        if not isinstance(m, Counter):
            raise TypeError(f"{name!r} is a {self.catalog[name].type.value}, not a counter")
        return m

    def gauge(self, name: str) -> Gauge:
        """The gauge declared as ``name``; raises KeyError or TypeError."""
        m = self[name]
        if not isinstance(m, Gauge):
            raise TypeError(f"{name!r} is a {self.catalog[name].type.value}, not a gauge")
        return m


def _build(spec: MetricSpec, registry: CollectorRegistry) -> Metric:
    # prometheus_client appends the unit when the name lacks it and exposes it in the
    # OpenMetrics format; only base units are units there (a count is unitless).
    unit = spec.unit if spec.unit in BASE_UNITS else ""
    cls = Counter if spec.type is MetricType.COUNTER else Gauge
    metric: Metric = cls(
        spec.name, spec.help, labelnames=spec.label_names, unit=unit, registry=registry
    )
    if (
        spec.labels
        and all(label.enumerated for label in spec.labels)
        and spec.max_series <= PREFILL_MAX
    ):
        for combo in itertools.product(*(label.values for label in spec.labels)):
            metric.labels(*combo)
    return metric


def build_metrics(registry: CollectorRegistry, catalog: Catalog | None = None) -> Metrics:
    """Create every catalog metric in ``registry`` and return them by name.

    ``catalog`` defaults to the shipped one. Metrics whose labels are all enumerated (and
    have at most :data:`PREFILL_MAX` combinations) start with every combination at 0.
    Raises :class:`~regwatch.metrics.catalog.CatalogError` for an invalid shipped catalog,
    and ``ValueError`` (from prometheus_client) when ``registry`` already holds one of
    the names: build once per registry."""
    catalog = catalog if catalog is not None else default_catalog()
    return Metrics(catalog, {spec.name: _build(spec, registry) for spec in catalog})
