"""The shipped alerting rules only name metrics the gateway exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import generate_latest

from gateway.server.metrics import Metrics

RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "ketenpoort-alerts.yml"


def test_every_alert_names_an_exported_metric() -> None:
    metrics = Metrics()
    # Labelled series appear in the exposition once a child exists.
    metrics.log_verify_runs.labels("ok")
    metrics.retention_runs.labels("failed")
    metrics.log_append.observe(0.001)
    exposed = set(re.findall(r"^(ketenpoort_\w+)", generate_latest(metrics.registry).decode(),
                             re.MULTILINE))
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) >= 5
    for alert in alerts:
        names = set(re.findall(r"ketenpoort_\w+", alert["expr"]))
        assert names, alert["alert"]
        assert names <= exposed, (alert["alert"], names - exposed)
