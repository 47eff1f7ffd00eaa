"""Helpers of tests/alerts: finding promtool and amtool (missing, a test FAILS under CI=true
and is skipped otherwise), and the metric names a PromQL expression selects."""

from __future__ import annotations

import os
import re
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_tool(name: str, package: str) -> str:
    """The path of ``name``; fails the test under CI=true when it is missing, else skips."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} not found on PATH: apt-get install {package} (scripts/install-sysdeps.sh)"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return path


PROMQL_WORDS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
    ]
)


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (strings, label matchers, ranges and
    grouping clauses removed; what is left that is not a function or keyword)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", e):
        word, call = m.group(1), m.group(2)
        if call or word in PROMQL_WORDS or re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names
