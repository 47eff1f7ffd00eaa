"""The metric catalog: ``catalog.yaml`` loaded into frozen, validated models.

``catalog.yaml`` (shipped next to this module) is the only place a regwatch metric is
declared. :func:`load_catalog` reads it and checks every rule at once:

- names are ``regwatch_<noun>_<unit>``, plus ``_total`` for a counter (and only then);
- the unit is a base unit (seconds, bytes, ratio) or a counted thing (requests, lines...);
- every label is bounded: listed values, a bounded enum of :mod:`regwatch.events`, one
  value per configured item (``bound: config``) or the top N plus ``"other"``
  (``bound: top_n``, required for ``repository``); names that identify a person, a client
  or an object (user, IP, digest, tag, request id...) are refused;
- no metric can have more than :data:`MAX_SERIES` label combinations.

A bad catalog raises :class:`CatalogError` naming every problem.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from regwatch.errors import ConfigError
from regwatch.events import DropReason, NoiseKind

__all__ = [
    "BASE_UNITS",
    "COUNT_UNITS",
    "OTHER",
    "Catalog",
    "CatalogError",
    "LabelSpec",
    "MetricSpec",
    "MetricType",
    "default_catalog",
    "load_catalog",
    "parse_catalog",
]

BASE_UNITS = frozenset({"seconds", "bytes", "ratio"})
COUNT_UNITS = frozenset(
    {"requests", "pulls", "pushes", "deletes", "failures", "denials", "errors", "lines", "events"}
)
# the enums a label may take its values from: each is bounded by construction
ENUMS: Mapping[str, type[Enum]] = {"DropReason": DropReason, "NoiseKind": NoiseKind}
# label names that would carry unbounded, personal or client-chosen values
FORBIDDEN_LABELS = frozenset(
    {
        "user",
        "user_name",
        "username",
        "ip",
        "client_ip",
        "source_ip",
        "remote_addr",
        "address",
        "host",
        "user_agent",
        "request_id",
        "digest",
        "reference",
        "tag",
        "url",
        "uri",
        "path_info",
        "le",
        "quantile",
    }
)
MAX_SERIES = 2000  # label combinations one metric may have, at its bounds
MAX_BOUND = 500  # the largest `max` or top N a label may declare
OTHER = "other"  # the value a top-N label gives everything outside the top N

_NAME = re.compile(r"regwatch_[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_LABEL = re.compile(r"[a-z][a-z0-9_]*")
_METRIC_KEYS = frozenset({"name", "type", "unit", "help", "labels", "group"})
_LABEL_KEYS = frozenset({"name", "values", "enum", "bound", "max"})


class CatalogError(ConfigError):
    """The metric catalog is invalid (a packaging or development error, never user input)."""


class MetricType(str, Enum):
    COUNTER = "counter"
    GAUGE = "gauge"


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """One label of a metric and what bounds its values.

    ``kind`` is ``values`` (``values`` lists them), ``enum`` (``values`` are the enum's,
    ``enum`` names it), ``config`` (one per configured item, at most ``max_values``) or
    ``top_n`` (the ``max_values - 1`` biggest by volume, plus ``"other"``).
    """

    name: str
    kind: str
    values: tuple[str, ...]
    max_values: int
    enum: str | None = None

    @property
    def enumerated(self) -> bool:
        """True when every allowed value is known from the catalog alone."""
        return self.kind in ("values", "enum")

    def describe(self) -> str:
        """The bound in words, for the docs."""
        if self.kind == "values":
            return ", ".join(f"`{v}`" for v in self.values)
        if self.kind == "enum":
            return f"`regwatch.events.{self.enum}`: " + ", ".join(f"`{v}`" for v in self.values)
        if self.kind == "config":
            return f"one per configured item (at most {self.max_values})"
        return f'top {self.max_values - 1} by volume, the rest `"{OTHER}"`'


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One declared metric."""

    name: str
    type: MetricType
    unit: str
    help: str
    labels: tuple[LabelSpec, ...]
    group: str

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    @property
    def family(self) -> str:
        """The metric family name in the exposition (a counter's name without ``_total``)."""
        return self.name[: -len("_total")] if self.type is MetricType.COUNTER else self.name

    @property
    def max_series(self) -> int:
        """Label combinations at the bounds (1 for a metric without labels)."""
        return math.prod(label.max_values for label in self.labels)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every regwatch metric, in declaration order; look one up by name with ``[]``."""

    version: int
    repository_top_n: int
    config_max: int
    metrics: tuple[MetricSpec, ...]

    def __iter__(self) -> Iterator[MetricSpec]:
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)

    def __contains__(self, name: object) -> bool:
        return any(m.name == name for m in self.metrics)

    def __getitem__(self, name: str) -> MetricSpec:
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"no metric {name!r} in the catalog; declared: {', '.join(self.names)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    def series_names(self) -> frozenset[str]:
        """Every series name a scrape can show (what PromQL may select)."""
        out: set[str] = set()
        for m in self.metrics:
            out.add(m.name)
            if m.type is MetricType.COUNTER:
                out.add(m.family + "_created")
        return frozenset(out)


def _catalog_file() -> Any:
    return resources.files("regwatch.metrics").joinpath("catalog.yaml")


@functools.lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The catalog shipped with regwatch (``regwatch/metrics/catalog.yaml``), loaded once.

    Raises :class:`CatalogError` when it is invalid."""
    return parse_catalog(
        _catalog_file().read_text(encoding="utf-8"), "regwatch/metrics/catalog.yaml"
    )


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate a catalog file (the shipped one when ``path`` is None).

    Raises :class:`CatalogError` listing every problem, or when the file cannot be read."""
    if path is None:
        return default_catalog()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogError(f"cannot read the metric catalog {str(p)!r}: {e.strerror}") from e
    return parse_catalog(text, str(p))


def parse_catalog(text: str, where: str = "<catalog>") -> Catalog:
    """Validate catalog YAML text into a :class:`Catalog`.

    Raises :class:`CatalogError` naming every problem found, not just the first."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CatalogError(f"{where}: not valid YAML: {e}") from e
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise CatalogError(f"{where}: the catalog must be a mapping with 'version' and 'metrics'")
    unknown = set(doc) - {"version", "bounds", "metrics"}
    if unknown:
        problems.append(
            f"unknown top-level key(s) {sorted(unknown)!r}; allowed: version, bounds, metrics"
        )
    version = doc.get("version")
    if version != 1:
        problems.append(f"version is {version!r}; this regwatch reads version 1")
    bounds = doc.get("bounds") or {}
    top_n = _positive_int(bounds.get("repository_top_n", 50), "bounds.repository_top_n", problems)
    config_max = _positive_int(bounds.get("config_max", 32), "bounds.config_max", problems)
    raw_metrics = doc.get("metrics")
    if not isinstance(raw_metrics, list) or not raw_metrics:
        problems.append("'metrics' must be a non-empty list")
        raw_metrics = []
    metrics: list[MetricSpec] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_metrics):
        spec = _metric(raw, i, top_n, config_max, problems)
        if spec is None:
            continue
        if spec.family in seen:
            problems.append(f"{spec.name!r} is declared more than once")
        seen.add(spec.family)
        metrics.append(spec)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise CatalogError(
            f"{where}: invalid metric catalog ({len(problems)} problem(s)):\n{lines}"
        )
    assert isinstance(version, int)
    return Catalog(version, top_n, config_max, tuple(metrics))


def _positive_int(value: Any, what: str, problems: list[str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_BOUND:
        problems.append(f"{what} is {value!r}; expected an integer from 1 to {MAX_BOUND}")
        return 1
    return value


def _metric(
    raw: Any, i: int, top_n: int, config_max: int, problems: list[str]
) -> MetricSpec | None:
    if not isinstance(raw, dict):
        problems.append(f"metrics[{i}] is {raw!r}; expected a mapping")
        return None
    name = raw.get("name")
    where = f"metric {name!r}" if isinstance(name, str) else f"metrics[{i}]"
    n_before = len(problems)
    unknown = set(raw) - _METRIC_KEYS
    if unknown:
        problems.append(
            f"{where}: unknown key(s) {sorted(unknown)!r}; allowed: {', '.join(sorted(_METRIC_KEYS))}"
        )
    try:
        mtype = MetricType(raw.get("type"))
    except ValueError:
        problems.append(
            f"{where}: type {raw.get('type')!r}; expected one of {[t.value for t in MetricType]}"
        )
        mtype = MetricType.GAUGE
    unit = raw.get("unit")
    if unit not in BASE_UNITS | COUNT_UNITS:
        problems.append(
            f"{where}: unit {unit!r}; expected a base unit ({', '.join(sorted(BASE_UNITS))}) "
            f"or a counted thing ({', '.join(sorted(COUNT_UNITS))})"
        )
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(f"{where}: the name must be snake case regwatch_<noun>_<unit>[_total]")
    elif isinstance(unit, str):
        suffix = f"_{unit}_total" if mtype is MetricType.COUNTER else f"_{unit}"
        if mtype is MetricType.GAUGE and name.endswith("_total"):
            problems.append(f"{where}: only a counter may end in _total (this is a gauge)")
        elif not name.endswith(suffix):
            problems.append(f"{where}: a {mtype.value} in {unit} must end in {suffix!r}")
        elif len(name) - len(suffix) <= len("regwatch"):
            problems.append(f"{where}: no noun between 'regwatch_' and {suffix!r}")
    help_ = raw.get("help")
    if not isinstance(help_, str) or not help_.strip():
        problems.append(f"{where}: 'help' must be a non-empty string")
        help_ = ""
    group = raw.get("group", "other")
    if not isinstance(group, str):
        problems.append(f"{where}: 'group' must be a string")
        group = "other"
    raw_labels = raw.get("labels", [])
    if not isinstance(raw_labels, list):
        problems.append(f"{where}: 'labels' must be a list (use [] for none)")
        raw_labels = []
    labels: list[LabelSpec] = []
    for j, rl in enumerate(raw_labels):
        label = _label(rl, f"{where} label {j}", top_n, config_max, problems)
        if label is not None:
            if label.name in {x.name for x in labels}:
                problems.append(f"{where}: label {label.name!r} appears twice")
            labels.append(label)
    series = math.prod(label.max_values for label in labels)
    if series > MAX_SERIES:
        problems.append(
            f"{where}: up to {series} series at the label bounds; at most {MAX_SERIES} allowed"
        )
    if len(problems) > n_before:
        return None
    assert isinstance(name, str) and isinstance(unit, str)
    return MetricSpec(name, mtype, unit, " ".join(help_.split()), tuple(labels), group)


def _label(
    raw: Any, where: str, top_n: int, config_max: int, problems: list[str]
) -> LabelSpec | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: {raw!r}; expected a mapping with 'name' and a bound")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not _LABEL.fullmatch(name):
        problems.append(f"{where}: label name {name!r} must be snake case")
        return None
    where = f"{where} ({name!r})"
    unknown = set(raw) - _LABEL_KEYS
    if unknown:
        problems.append(
            f"{where}: unknown key(s) {sorted(unknown)!r}; allowed: {', '.join(sorted(_LABEL_KEYS))}"
        )
    if name in FORBIDDEN_LABELS:
        problems.append(
            f"{where}: {name!r} is not allowed as a label (unbounded or identifies a person or client)"
        )
        return None
    given = [k for k in ("values", "enum", "bound") if k in raw]
    if len(given) != 1:
        problems.append(
            f"{where}: give exactly one of 'values', 'enum' or 'bound' (got {given or 'none'})"
        )
        return None
    if "values" in raw:
        values = raw["values"]
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and v for v in values)
            or len(set(values)) != len(values)
        ):
            problems.append(f"{where}: 'values' must be a non-empty list of distinct strings")
            return None
        if len(values) > MAX_BOUND:
            problems.append(f"{where}: {len(values)} values; at most {MAX_BOUND}")
            return None
        label = LabelSpec(name, "values", tuple(values), len(values))
    elif "enum" in raw:
        enum = ENUMS.get(raw["enum"])
        if enum is None:
            problems.append(f"{where}: enum {raw['enum']!r}; expected one of {sorted(ENUMS)}")
            return None
        values = [str(e.value) for e in enum]
        label = LabelSpec(name, "enum", tuple(values), len(values), enum=raw["enum"])
    else:
        bound = raw["bound"]
        if bound == "config":
            cap = _positive_int(raw.get("max", config_max), f"{where}: max", problems)
            label = LabelSpec(name, "config", (), cap)
        elif bound == "top_n":
            cap = _positive_int(raw.get("max", top_n), f"{where}: max", problems)
            label = LabelSpec(name, "top_n", (), cap + 1)  # + "other"
        else:
            problems.append(f"{where}: bound {bound!r}; expected 'config' or 'top_n'")
            return None
    if name == "repository" and label.kind != "top_n":
        problems.append(
            f"{where}: a repository label must be 'bound: top_n' (top N plus {OTHER!r})"
        )
        return None
    return label
