"""python -m regwatch.metrics [--write FILE | --check FILE]: the catalog as Markdown."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from regwatch.metrics.catalog import default_catalog
from regwatch.metrics.docs import render_markdown, update_document


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m regwatch.metrics", description=__doc__)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--write", metavar="FILE", help="refresh the generated section of FILE")
    g.add_argument("--check", metavar="FILE", help="exit 1 when FILE's section is stale")
    args = ap.parse_args(argv)
    catalog = default_catalog()
    if not (args.write or args.check):
        sys.stdout.write(render_markdown(catalog))
        return 0
    path = Path(args.write or args.check)
    text = path.read_text(encoding="utf-8")
    new = update_document(text, catalog)
    if args.check:
        if new != text:
            print(
                f"{path}: the catalog section is stale; run python -m regwatch.metrics --write {path}"
            )
            return 1
        return 0
    path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
