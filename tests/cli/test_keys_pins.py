"""`ketenpoort keys pins`: pins that openssl agrees with and that the registry accepts."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.cli.keys_pins import partner_pins
from gateway.core import load_policy
from gateway.crypto.devkeys import init_dev_keys
from gateway.crypto.layout import PartnerKeyPaths
from gateway.registry.dev import register_dev_partners
from gateway.server.partners import load_registry
from tests.policy_fixtures import fixture_documents

PARTNERS = ["care-team", "police", "zvh"]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pins") / "keys"
    init_dev_keys(directory, PARTNERS)
    return directory


def _pins_command(keys: Path, *partners: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli.main", "keys", "pins", str(keys), *partners],
        capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_printed_pin_is_what_openssl_computes(keys: Path) -> None:
    token_pub = PartnerKeyPaths.under(keys, "police").token_pub
    der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(token_pub), "-outform", "DER"],
                         capture_output=True, check=True, timeout=30).stdout
    result = _pins_command(keys, "police")
    assert result.returncode == 0, result.stderr
    assert f"token: sha256:{hashlib.sha256(der).hexdigest()}" in result.stdout


def test_printed_pins_pasted_into_the_policy_register_the_partner(keys: Path) -> None:
    result = _pins_command(keys, "police")
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)[0]
    assert printed["id"] == "police"
    assert set(printed["keys"]) == {"token", "sealing", "tls"}
    documents = fixture_documents("valid")
    partners = yaml.safe_load(documents["partners.yaml"])
    for partner in partners["partners"]:
        partner.pop("keys", None)
        if partner["id"] == "police":
            partner["keys"] = printed["keys"]
    documents["partners.yaml"] = yaml.safe_dump(partners, sort_keys=False)
    registry_dir = keys.parent / "registry"
    register_dev_partners(keys, registry_dir, PARTNERS)
    registry = load_registry(load_policy(documents), registry_dir)
    assert "police" in registry.partners
    assert registry.pin_mismatches == ()


def test_a_partner_without_keys_is_named_and_fails(keys: Path) -> None:
    result = _pins_command(keys, "police", "unknown-partner")
    assert result.returncode == 1
    assert "unknown-partner" in result.stderr
    assert "id: police" in result.stdout
    assert partner_pins(keys, "zvh")["token"].startswith("sha256:")
