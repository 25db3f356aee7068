"""Configuration of the circuit breakers in front of the sources: a default for all, a
source's own in its [[sources]] entry, and one clear error for a bad value."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from adapters.circuit_breaker import BreakerSettings
from gateway.server.config import ConfigError, GatewayConfig, config_from_mapping

TOML = """
[source_breaker]
failure_threshold = 4
open_for_s = 20

[[sources]]
partner = "police"
address = "bron.politie.example:443"
breaker = { open_for_s = 60.0 }

[[sources]]
partner = "ggz"
address = "bron.ggz.example:443"
"""


def test_each_source_takes_its_own_settings_or_the_default() -> None:
    assert GatewayConfig().breaker_for("police") == BreakerSettings(5, 10.0)
    config = config_from_mapping(tomllib.loads(TOML), base=Path("/"))
    assert config.source_breaker == BreakerSettings(4, 20.0)
    # A key the source's own table leaves out comes from [source_breaker].
    assert config.breaker_for("police") == BreakerSettings(4, 60.0)
    assert config.breaker_for("ggz") == BreakerSettings(4, 20.0)
    assert config.breaker_for("not-configured") == BreakerSettings(4, 20.0)


POLICE: dict[str, object] = {"partner": "police", "address": "bron.politie.example:443"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"source_breaker": {"failure_threshold": 0}}, "failure_threshold must be a whole"),
        ({"source_breaker": {"failure_threshold": 2.5}}, "failure_threshold must be a whole"),
        ({"source_breaker": {"open_for_s": 0}}, "open_for_s must be a number of seconds"),
        ({"source_breaker": {"open_for_s": float("inf")}}, "open_for_s must be a number"),
        ({"source_breaker": {"open_for_s": "10s"}}, "open_for_s must be a number"),
        ({"source_breaker": {"open_for": 10}}, "unknown key(s) in [source_breaker]: open_for"),
        ({"source_breaker": 5}, "[source_breaker] must be a table"),
        (
            {"sources": [{**POLICE, "breaker": {"failure_threshold": -1}}]},
            "the breaker of source 'police' failure_threshold must be",
        ),
        (
            {"sources": [{**POLICE, "breaker": {"threshold": 3}}]},
            "unknown key(s) in the breaker of source 'police': threshold",
        ),
    ],
)
def test_a_bad_setting_is_one_clear_error(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping(raw, base=Path("/"))
    assert message in str(err.value)
