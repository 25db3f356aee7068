"""The [key_provider] table of the gateway configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.crypto.provider import KeyKind
from gateway.crypto.provider_settings import (
    DEFAULT_PIN_ENV,
    KeyProviderSettings,
    ProviderType,
    settings_from_mapping,
)
from gateway.server.config import ConfigError, load_config

BASE = Path("/etc/ketenpoort")


def test_files_are_the_default() -> None:
    assert settings_from_mapping({}, BASE) == KeyProviderSettings()
    assert all(KeyProviderSettings().holds(k) is ProviderType.FILE for k in KeyKind)


def test_a_token_for_some_kinds() -> None:
    settings = settings_from_mapping(
        {
            "type": "pkcs11",
            "module": "/usr/lib/softhsm/libsofthsm2.so",
            "token_label": "zvh",
            "pin_file": "secrets/pin",
            "kinds": ["signing", "kek"],
        },
        BASE,
    )
    assert settings.pkcs11 is not None
    assert settings.pkcs11.pin_file == BASE / "secrets" / "pin"
    assert settings.pkcs11.pin_env is None
    assert settings.holds(KeyKind.SIGNING) is ProviderType.PKCS11
    assert settings.holds(KeyKind.HPKE) is ProviderType.FILE
    assert settings.holds(KeyKind.KEK) is ProviderType.PKCS11


def test_the_pin_comes_from_the_environment_by_default() -> None:
    settings = settings_from_mapping(
        {"type": "pkcs11", "module": "/m.so", "token_label": "t"}, BASE
    )
    assert settings.pkcs11 is not None
    assert settings.pkcs11.pin_env == DEFAULT_PIN_ENV
    assert settings.token_kinds == frozenset(KeyKind)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"type": "pkcs11", "module": "/m.so", "token_label": "t", "pin": "1234"}, "never"),
        ({"type": "file", "user_pin": "1234"}, "never"),
        ({"type": "hsm"}, "type must be one of"),
        ({"type": "pkcs11", "token_label": "t"}, "module"),
        ({"type": "pkcs11", "module": "/m.so"}, "token_label"),
        ({"type": "pkcs11", "module": "/m.so", "token_label": "t", "pin_env": "A",
          "pin_file": "p"}, "not both"),
        ({"type": "pkcs11", "module": "/m.so", "token_label": "t", "kinds": ["pseudonym"]},
         "kinds"),
        ({"type": "pkcs11", "module": "/m.so", "token_label": "t", "kinds": []}, "empty"),
        ({"type": "pkcs11", "module": "/m.so", "token_label": "t", "namespace": "a/b"},
         "namespace"),
        ({"type": "file", "module": "/m.so"}, "only for type"),
        ({"slot": 0}, "unknown"),
    ],
)
def test_bad_tables_are_refused(table: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings_from_mapping(table, BASE)


def test_the_configuration_file_carries_the_table(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[key_provider]\ntype = "pkcs11"\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\n'
        'token_label = "zvh"\npin_env = "HSM_PIN"\n',
        encoding="utf-8",
    )
    loaded = load_config(config)
    assert loaded.key_provider.type is ProviderType.PKCS11
    assert loaded.key_provider.pkcs11 is not None
    assert loaded.key_provider.pkcs11.pin_env == "HSM_PIN"
    config.write_text('[key_provider]\ntype = "pkcs11"\npin = "1234"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="never goes in the configuration") as caught:
        load_config(config)
    assert "1234" not in str(caught.value)


def test_the_example_configuration_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "gateway.example.toml"
    assert load_config(example).key_provider.type is ProviderType.FILE
