"""The health settings (top-level keys): probe port off unless configured, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.server.config import ConfigError, GatewayConfig, config_from_mapping
from gateway.server.health_settings import HealthSettings


def test_without_health_keys_there_is_no_probe_port_and_no_drain() -> None:
    health = config_from_mapping({}, base=Path("/")).health
    assert health == GatewayConfig().health == HealthSettings()
    assert health.probe_address == ""
    assert health.drain_s == 0


def test_health_keys_are_read() -> None:
    health = config_from_mapping(
        {"probe_address": "0.0.0.0:8081", "readiness_interval_s": 5, "drain_s": 10,
         "min_free_disk_mb": 256},
        base=Path("/"),
    ).health
    assert health == HealthSettings("0.0.0.0:8081", 5.0, 10.0, 256)
    assert health.probe_host_port == ("0.0.0.0", 8081)
    assert HealthSettings("[::1]:8081").probe_host_port == ("::1", 8081)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"probe_address": 8081}, "probe_address must be a string"),
        ({"probe_address": "8081"}, "probe_address must be host:port"),
        ({"probe_address": "localhost:http"}, "probe_address must be host:port"),
        ({"readiness_interval_s": 0}, "readiness_interval_s must be more than 0"),
        ({"readiness_interval_s": "2"}, "readiness_interval_s must be a number"),
        ({"drain_s": -1}, "drain_s must be 0 or more"),
        ({"drain_s": float("nan")}, "drain_s must be a number"),
        ({"min_free_disk_mb": -5}, "min_free_disk_mb must be 0"),
        ({"min_free_disk_mb": 1.5}, "min_free_disk_mb must be a whole number"),
    ],
)
def test_bad_health_settings_are_one_clear_error(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(raw, base=Path("/"))
