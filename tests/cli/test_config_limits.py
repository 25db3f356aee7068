"""The [limits] table: production defaults, per-partner limits, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.server.config import ConfigError, GatewayConfig, config_from_mapping, load_config
from gateway.server.limit_settings import (
    DEFAULT_PARTNER_LIMIT,
    DEFAULT_UNKNOWN_LIMIT,
    LimitSettings,
)
from gateway.server.limits import UNKNOWN_CALLER, CallLimit

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "gateway.example.toml"


def test_without_a_limits_table_every_limit_is_on() -> None:
    limits = config_from_mapping({}, base=Path("/")).limits
    assert limits == GatewayConfig().limits
    assert limits.limit_of("police") == DEFAULT_PARTNER_LIMIT
    assert limits.limit_of(UNKNOWN_CALLER) == DEFAULT_UNKNOWN_LIMIT
    # Unknown callers together get less than one partner.
    assert DEFAULT_UNKNOWN_LIMIT.rate_per_s < DEFAULT_PARTNER_LIMIT.rate_per_s
    options = dict(limits.server_options())
    assert options["grpc.max_concurrent_streams"] == 100
    assert options["grpc.max_connection_idle_ms"] == 300_000
    assert options["grpc.max_connection_age_ms"] == 1_800_000
    assert options["grpc.keepalive_time_ms"] == 60_000
    assert limits.max_concurrent_rpcs == 1000


def test_a_partner_can_have_its_own_limit() -> None:
    raw = {
        "limits": {
            "rate_per_s": 20,
            "burst": 40,
            "unknown_rate_per_s": 1.5,
            "max_concurrent_rpcs": 64,
            "request_timeout_s": 2,
            "partners": {"police": {"rate_per_s": 200.0}, "ggz": {"max_concurrent": 2}},
        }
    }
    limits = config_from_mapping(raw, base=Path("/")).limits
    assert limits.limit_of("police") == CallLimit(200.0, 40, DEFAULT_PARTNER_LIMIT.max_concurrent)
    assert limits.limit_of("ggz") == CallLimit(20.0, 40, 2)
    assert limits.limit_of("om") == CallLimit(20.0, 40, DEFAULT_PARTNER_LIMIT.max_concurrent)
    assert limits.limit_of(UNKNOWN_CALLER).rate_per_s == 1.5
    assert limits.max_concurrent_rpcs == 64
    assert limits.request_timeout_s == 2.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"limits": 5}, "[limits] must be a table"),
        ({"limits": {"rate": 5}}, "unknown key(s) in [limits]: rate"),
        ({"limits": {"rate_per_s": 0}}, "rate_per_s in [limits] must be a number above 0"),
        ({"limits": {"rate_per_s": float("inf")}}, "must be a number above 0"),
        ({"limits": {"burst": 0}}, "burst in [limits] must be a whole number from 1 to 2147483647"),
        # grpc takes these as C ints; a value that does not fit is refused here, not at start.
        ({"limits": {"max_streams_per_connection": 2**40}}, "max_streams_per_connection in"),
        ({"limits": {"keepalive_time_s": 1e12}}, "keepalive_time_s in [limits] must be"),
        ({"limits": {"keepalive_time_s": 10**400}}, "keepalive_time_s in [limits] must be"),
        ({"limits": {"rate_per_s": 10**400}}, "rate_per_s in [limits] must be a number above 0"),
        ({"limits": {"max_pings_without_data": 2**40}}, "max_pings_without_data must be"),
        ({"limits": {"unknown_max_concurrent": 1.5}}, "unknown_max_concurrent in [limits]"),
        ({"limits": {"max_concurrent_rpcs": True}}, "max_concurrent_rpcs in [limits]"),
        ({"limits": {"request_timeout_s": 0}}, "request_timeout_s in [limits] must be"),
        ({"limits": {"max_connection_age_s": float("nan")}}, "max_connection_age_s"),
        ({"limits": {"max_pings_without_data": -1}}, "max_pings_without_data must be"),
        ({"limits": {"partners": {"police": {"burst": -2}}}}, "[limits.partners.police]"),
        ({"limits": {"partners": {"police": {"rate": 1}}}},
         "unknown key(s) in [limits.partners.police]: rate"),
    ],
)
def test_a_bad_limit_is_refused_with_its_name(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        config_from_mapping(raw, base=Path("/"))
    assert message in str(refused.value)


def test_the_example_configuration_states_the_defaults() -> None:
    # Every value the example shows is the default: it documents what a gateway does.
    assert load_config(EXAMPLE).limits == LimitSettings()
