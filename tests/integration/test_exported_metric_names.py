"""Every metric the shipped alerts and Grafana dashboard read is one a running gateway
exports (names taken from a started gateway's registry, so metrics other modules register
on it count too)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from gateway.core import CompiledPolicy
from tests.deploy.promql_names import (
    SCRAPE_SERIES,
    dashboard_expressions,
    exported_names,
    metric_names,
)
from tests.integration.harness import Harness, running_harness

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

# Named in CONTRACT.md §7 and registered by the source breakers (ketenpoort_source_*) and the
# health probes (ketenpoort_ready), which land on their own; once they do, the started
# gateway exports them and this allowance changes nothing.
CONTRACT_METRICS = {
    "ketenpoort_source_circuit_state",
    "ketenpoort_source_timeouts_total",
    "ketenpoort_ready",
}


@pytest.fixture
async def started(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[Harness]:
    async with running_harness(
        f"sqlite:///{tmp_path / 'names.db'}", dev_keys, shipped_policy
    ) as harness:
        yield harness


def _alert_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "ketenpoort-alerts.yml").read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "ketenpoort.json").read_text())
    return list(dashboard_expressions(dashboard))


async def test_alerts_and_dashboard_read_only_exported_metrics(started: Harness) -> None:
    exported = exported_names(started.gateway.metrics.registry) | SCRAPE_SERIES
    known = exported | CONTRACT_METRICS
    assert "process_resident_memory_bytes" in exported
    alerts, panels = _alert_expressions(), _dashboard_expressions()
    assert len(alerts) >= 20 and len(panels) >= 30
    for alert, expr in alerts:
        names = metric_names(expr)
        assert names, alert
        assert names <= known, (alert, names - known)
    for expr in panels:
        names = metric_names(expr)
        assert names, expr
        assert names <= known, (expr, names - known)


def test_the_name_reader_finds_names_not_labels_or_functions() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, method) (rate(ketenpoort_request_seconds_bucket'
        '{job="ketenpoort", instance=~"$instance", method!~"Watch|up"}[$__rate_interval])))'
        " > 2 and on (job) ketenpoort_up offset 5m == 1 or absent(up{job=\"x\"})"
    )
    assert metric_names(expr) == {"ketenpoort_request_seconds_bucket", "ketenpoort_up", "up"}
    assert metric_names("time() - process_start_time_seconds") == {"process_start_time_seconds"}
    assert metric_names("ketenpoort_made_up_total") == {"ketenpoort_made_up_total"}
