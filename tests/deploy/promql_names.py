"""The metric names a PromQL expression reads, and the names a registry exports.

Enough of PromQL for the shipped alerts and dashboard: strings, label matchers, ranges,
grouping clauses and function calls are removed; what is left that is not a keyword, number or
Grafana variable is a metric name."""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client import CollectorRegistry

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_OFFSET = re.compile(r"\boffset\s+-?\w+", re.IGNORECASE)
_IDENTIFIER = re.compile(r"(?<![\w$.])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
             "group_right", "offset", "inf", "nan"}

# Series Prometheus itself adds for every scrape target.
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

# Suffixes of the series each metric type exposes (prometheus_client names a counter's family
# without _total and an info's without _info).
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum", ""),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def metric_names(expr: str) -> set[str]:
    text = _STRINGS.sub(" ", expr)
    previous = None
    while previous != text:  # nested braces (Grafana's ${var}) unwind from the inside
        previous, text = text, _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _OFFSET.sub(" ", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def exported_names(registry: CollectorRegistry) -> set[str]:
    """Every series name ``registry`` exports or will export once a labelled child exists."""
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def dashboard_expressions(dashboard: dict[str, object]) -> Iterable[str]:
    """The PromQL of every panel target (nested rows included) and template variable query."""
    def panels(items: object) -> Iterable[dict[str, object]]:
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                yield item
                yield from panels(item.get("panels"))

    for panel in panels(dashboard.get("panels")):
        for target in panel.get("targets") or []:  # type: ignore[attr-defined]
            if isinstance(target, dict) and target.get("expr"):
                yield str(target["expr"])
    templating = dashboard.get("templating")
    variables = templating.get("list", []) if isinstance(templating, dict) else []
    for variable in variables:
        query = variable.get("query") if isinstance(variable, dict) else None
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            # label_values(<series selector>, <label>): the selector is PromQL.
            found = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
            yield found.group(1) if found else query
