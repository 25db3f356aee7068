"""Key pins in the policy: a partner whose registered key is not the pinned one cannot call."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.core import load_policy
from gateway.crypto.devkeys import init_dev_keys, load_partner_public_keys
from gateway.crypto.keyids import key_pin
from gateway.registry.dev import register_dev_partners
from gateway.server.partners import load_registry
from tests.policy_fixtures import fixture_documents

PINNED = "care-team"


def _with_pins(token: str, sealing: str) -> dict[str, str]:
    documents = fixture_documents("valid")
    text = documents["partners.yaml"]
    start = text.index("    keys:\n", text.index(f"id: {PINNED}"))
    end = text.index("  - id:", start)
    documents["partners.yaml"] = (text[:start] + f"    keys:\n      token: {token}\n"
                                  f"      sealing: {sealing}\n" + text[end:])
    return documents


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pins") / "keys"
    init_dev_keys(directory, ["care-team", "police", "zvh"])
    register_dev_partners(directory, directory.parent / "registry", ["care-team", "police", "zvh"])
    return directory


def test_the_pin_is_the_sha256_of_the_subject_public_key_info(keys: Path) -> None:
    public = load_partner_public_keys(keys, PINNED).token_key
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key_pin(public) == "sha256:" + hashlib.sha256(der).hexdigest()


def test_matching_pins_register_the_partner(keys: Path) -> None:
    disk = load_partner_public_keys(keys, PINNED)
    policy = load_policy(_with_pins(key_pin(disk.token_key), key_pin(disk.hpke_key)))
    registry = load_registry(policy, keys.parent / "registry")
    assert PINNED in registry.partners
    assert registry.pin_mismatches == ()


def test_a_key_that_differs_from_its_pin_keeps_the_partner_out(
        keys: Path, caplog: pytest.LogCaptureFixture) -> None:
    disk = load_partner_public_keys(keys, PINNED)
    other = load_partner_public_keys(keys, "police")
    policy = load_policy(_with_pins(key_pin(disk.token_key), key_pin(other.hpke_key)))
    with caplog.at_level(logging.ERROR, logger="ketenpoort.partners"):
        registry = load_registry(policy, keys.parent / "registry")
    assert PINNED not in registry.partners
    assert PINNED not in registry.sealing_keys
    assert registry.pin_mismatches == (PINNED,)
    assert "police" in registry.partners
    assert "sealing key" in caplog.text and PINNED in caplog.text
    assert key_pin(other.hpke_key) not in caplog.text
