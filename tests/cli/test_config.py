"""The gateway's TOML configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.server.config import (
    ConfigError,
    GatewayConfig,
    TlsMode,
    config_from_mapping,
    load_config,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "gateway.example.toml"


def test_the_example_configuration_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.database_url.startswith("postgresql+psycopg://")
    assert config.tls_mode is TlsMode.MUTUAL
    assert config.policy_dir == (EXAMPLE.parent / "../policies")
    assert [s.partner_id for s in config.sources] == ["police", "ggz"]
    assert config.algorithms == ("EdDSA", "ES256")
    assert config.policy_reload_interval_s == 2.0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"listn": "127.0.0.1:1"}, "unknown configuration keys: listn"),
        ({"algorithms": ["none"]}, "'none' is never allowed"),
        ({"tls_mode": "plain"}, "tls_mode must be one of"),
        ({"sources": [{"partner": "police"}]}, "needs 'partner' and 'address'"),
        ({"policy_reload_interval_s": -1}, "policy_reload_interval_s must be a number of seconds"),
        ({"policy_reload_interval_s": "2s"}, "policy_reload_interval_s must be a number"),
        ({"policy_reload_interval_s": float("nan")}, "policy_reload_interval_s must be a number"),
        ({"policy_reload_interval_s": float("inf")}, "policy_reload_interval_s must be a number"),
        ({"checkpoint_dir": 5}, "checkpoint_dir must be a path, written as a string"),
        ({"keys_dir": ["a"]}, "keys_dir must be a path, written as a string"),
        ({"replica_id": "a/b"}, "replica_id must be 1-64 letters"),
        ({"replica_id": ".hidden"}, "replica_id must be 1-64 letters"),
        ({"replica_id": 7}, "replica_id must be 1-64 letters"),
        ({"request_id_retention_s": 10**400}, "request_id_retention_s must be a number of seconds"),
        ({"declined_retention_days": 1_000_000}, "declined_retention_days must be at most 36500"),
        ({"declined_retention_days": 0}, "declined_retention_days must be a whole number"),
        ({"retention_days_after_closure": 10**9},
         "retention_days_after_closure must be at most 36500"),
    ],
)
def test_bad_configuration_is_refused_with_a_reason(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(raw, base=Path("/"))


def test_an_unreadable_file_names_itself(tmp_path: Path) -> None:
    broken = tmp_path / "gateway.toml"
    broken.write_text("listen = ")
    with pytest.raises(ConfigError, match="gateway.toml"):
        load_config(broken)


def test_policy_reload_interval_defaults_to_two_seconds_and_zero_switches_it_off() -> None:
    assert config_from_mapping({}, base=Path("/")).policy_reload_interval_s == 2.0
    off = config_from_mapping({"policy_reload_interval_s": 0}, base=Path("/"))
    assert off.policy_reload_interval_s == 0.0
    fast = config_from_mapping({"policy_reload_interval_s": 0.25}, base=Path("/"))
    assert fast.policy_reload_interval_s == 0.25


def test_request_nonces_are_optional_unless_required() -> None:
    assert GatewayConfig().require_request_nonce is False
    required = config_from_mapping({"require_request_nonce": True}, base=Path("/"))
    assert required.require_request_nonce is True
    with pytest.raises(ConfigError, match="require_request_nonce must be true or false"):
        config_from_mapping({"require_request_nonce": "yes"}, base=Path("/"))
