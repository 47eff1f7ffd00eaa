"""The catalog section of docs/metrics.md, generated from catalog.yaml.

The section sits between :data:`BEGIN` and :data:`END`; everything else in the document
is written by hand. A test checks that the document's section equals
:func:`render_markdown` of the shipped catalog, so the two never drift.
"""

from __future__ import annotations

from regwatch.metrics.catalog import Catalog, MetricType

__all__ = ["BEGIN", "END", "render_markdown", "update_document"]

BEGIN = "<!-- catalog:begin (generated from regwatch/metrics/catalog.yaml by `python -m regwatch.metrics --write docs/metrics.md`; do not edit) -->"
END = "<!-- catalog:end -->"

_GROUPS = {
    "traffic": "Registry traffic (live events only, see Backfill)",
    "storage": "Storage",
    "collector": "The collector itself",
}


def render_markdown(catalog: Catalog) -> str:
    """The catalog as Markdown: one table per group, then each metric's labels."""
    intro = (
        f"{len(catalog)} metrics. `repository` keeps the top {catalog.repository_top_n} "
        f"repositories by volume and reports the rest as `other`; a `config`-bounded label has "
        f"one value per configured item (at most {catalog.config_max})."
    )
    out: list[str] = [intro, ""]
    groups = list(dict.fromkeys(m.group for m in catalog))
    for group in groups:
        out += [f"### {_GROUPS.get(group, group.capitalize())}", ""]
        out += ["| metric | type | unit | labels | help |", "|---|---|---|---|---|"]
        for m in catalog:
            if m.group != group:
                continue
            labels = ", ".join(f"`{n}`" for n in m.label_names) or "–"
            out.append(f"| `{m.name}` | {m.type.value} | {m.unit} | {labels} | {_cell(m.help)} |")
        out.append("")
    out += ["### Label values", "", "| metric | label | allowed values |", "|---|---|---|"]
    for m in catalog:
        for label in m.labels:
            out.append(f"| `{m.name}` | `{label.name}` | {_cell(label.describe())} |")
    out.append("")
    counters = sum(1 for m in catalog if m.type is MetricType.COUNTER)
    out.append(f"{counters} counters, {len(catalog) - counters} gauges.")
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def update_document(document: str, catalog: Catalog) -> str:
    """``document`` with its generated section replaced by the current catalog.

    Raises ValueError when the markers are missing or out of order."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError("the document lacks the catalog markers (catalog:begin ... catalog:end)")
    return document[: start + len(BEGIN)] + "\n" + render_markdown(catalog) + document[end:]
