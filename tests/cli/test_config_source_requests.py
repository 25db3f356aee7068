"""Configuration of sealed source requests: sealed by default, clear only where allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.server.config import ConfigError, GatewayConfig, config_from_mapping

POLICE: dict[str, object] = {"partner": "police", "address": "bron.politie.example:443"}
SOURCES = [
    POLICE,
    {"partner": "housing", "address": "bron.woning.example:443", "allow_clear_requests": True},
]


def test_requests_are_sealed_unless_the_operator_says_otherwise() -> None:
    assert GatewayConfig().seal_source_requests is True
    config = config_from_mapping({"sources": SOURCES}, base=Path("/"))
    assert config.seal_source_requests is True
    assert {s.partner_id: s.allow_clear_requests for s in config.sources} == {
        "police": False,
        "housing": True,
    }
    off = config_from_mapping({"seal_source_requests": False}, base=Path("/"))
    assert off.seal_source_requests is False


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"seal_source_requests": "yes"}, "seal_source_requests must be true or false"),
        (
            {"sources": [{**POLICE, "allow_clear_requests": 1}]},
            "allow_clear_requests must be true or false",
        ),
        # A misspelt allowance would otherwise leave the partner silently denied.
        (
            {"sources": [{**POLICE, "allow_clear_request": True}]},
            "unknown key.*allow_clear_request",
        ),
    ],
)
def test_bad_settings_are_refused_with_a_reason(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(raw, base=Path("/"))


def test_source_answers_must_be_signed_unless_the_operator_allows_unsigned_ones() -> None:
    config = config_from_mapping(
        {"sources": [POLICE, {**SOURCES[1], "allow_unsigned_answers": True}]}, base=Path("/")
    )
    assert {s.partner_id: s.allow_unsigned_answers for s in config.sources} == {
        "police": False,
        "housing": True,
    }
    with pytest.raises(ConfigError, match="allow_unsigned_answers must be true or false"):
        config_from_mapping(
            {"sources": [{**POLICE, "allow_unsigned_answers": "yes"}]}, base=Path("/")
        )
