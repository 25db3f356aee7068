"""The Prometheus endpoint's address (metrics_address, and metrics_port as its deprecated
form), the process metrics on the gateway's own registry, and the series alerts need at 0
from the start."""

from __future__ import annotations

import socket
import sys
import urllib.request
from pathlib import Path

import pytest

from gateway.server.app import start_metrics_endpoint
from gateway.server.config import ConfigError, config_from_mapping
from gateway.server.metrics import Metrics
from gateway.server.metrics_address import MetricsEndpoint


def _endpoint(tmp_path: Path, **raw: object) -> MetricsEndpoint | None:
    return config_from_mapping(raw, base=tmp_path).metrics_endpoint


def test_metrics_address_default_and_forms(tmp_path: Path) -> None:
    assert _endpoint(tmp_path) == MetricsEndpoint("127.0.0.1", 9464)
    assert _endpoint(tmp_path, metrics_address="0.0.0.0:9100") == MetricsEndpoint("0.0.0.0", 9100)
    assert _endpoint(tmp_path, metrics_address="[::]:9100") == MetricsEndpoint("::", 9100)
    assert _endpoint(tmp_path, metrics_address="") is None


def test_metrics_port_is_a_deprecated_alias(tmp_path: Path) -> None:
    assert _endpoint(tmp_path, metrics_port=9651) == MetricsEndpoint("127.0.0.1", 9651)
    assert _endpoint(tmp_path, metrics_port=0) is None
    # The command line's --metrics-port overrides the port of a configured address.
    config = config_from_mapping({"metrics_address": "0.0.0.0:9464"}, base=tmp_path)
    assert config.with_overrides(metrics_port=9700).metrics_endpoint == MetricsEndpoint(
        "0.0.0.0", 9700
    )
    assert config.with_overrides(metrics_port=0).metrics_endpoint is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"metrics_address": "9464"}, "host:port"),
        ({"metrics_address": "localhost:http"}, "host:port"),
        ({"metrics_address": "127.0.0.1:70000"}, "between 1 and 65535"),
        ({"metrics_address": 9464}, "must be a string"),
        ({"metrics_port": "9464"}, "port number"),
        ({"metrics_address": "127.0.0.1:9464", "metrics_port": 9651}, "metrics_address only"),
    ],
)
def test_bad_metrics_settings_are_one_clear_error(
    tmp_path: Path, raw: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(raw, base=tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_endpoint_serves_gateway_and_process_metrics() -> None:
    metrics = Metrics()
    port = _free_port()
    start_metrics_endpoint(metrics, port, "127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    assert "ketenpoort_up " in text
    assert "python_info{" in text
    assert "python_gc_collections_total{" in text
    if sys.platform == "linux":
        for name in ("process_resident_memory_bytes", "process_cpu_seconds_total",
                     "process_open_fds", "process_start_time_seconds"):
            assert f"\n{name} " in text, name


def test_alerted_results_are_exported_at_zero_from_the_start() -> None:
    """A series that first appears at 1 has no earlier sample: increase() over it is 0 and
    an alert on the first failure never fires. These exist at 0 before anything happened."""
    registry = Metrics().registry
    for name, result in [
        ("ketenpoort_retention_runs_total", "failed"),
        ("ketenpoort_policy_reloads_total", "rejected"),
        ("ketenpoort_registry_reloads_total", "rejected"),
        ("ketenpoort_log_verify_runs_total", "ok"),
        ("ketenpoort_log_verify_runs_total", "failed"),
    ]:
        assert registry.get_sample_value(name, {"result": result}) == 0.0, (name, result)
    assert registry.get_sample_value("ketenpoort_retention_last_failure_timestamp_seconds") == 0
    assert registry.get_sample_value("ketenpoort_log_alarm") == 0
    assert registry.get_sample_value("ketenpoort_database_unavailable_total") == 0


def test_a_failed_retention_run_sets_the_time_the_alert_reads() -> None:
    metrics = Metrics()
    metrics.retention_run("ok")
    assert metrics.registry.get_sample_value(
        "ketenpoort_retention_last_failure_timestamp_seconds") == 0
    metrics.retention_run("failed")
    failed_at = metrics.registry.get_sample_value(
        "ketenpoort_retention_last_failure_timestamp_seconds")
    assert failed_at is not None and failed_at > 1.7e9
    assert metrics.registry.get_sample_value(
        "ketenpoort_retention_runs_total", {"result": "failed"}) == 1.0
