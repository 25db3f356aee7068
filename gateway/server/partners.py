"""The partner registry at run time: who the policy names as partners, with the public keys
their systems registered (token-signing keys and HPKE sealing keys)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.broker.context import SealingKey
from gateway.core import CompiledPolicy, PartnerSpec
from gateway.crypto._pem import load_certificate
from gateway.crypto.devkeys import PartnerPublicKeys, load_partner_public_keys
from gateway.crypto.errors import CryptoError
from gateway.crypto.keyids import key_pin
from gateway.crypto.layout import PartnerKeyPaths
from gateway.server.auth import RegisteredPartner

log = logging.getLogger("ketenpoort.partners")


@dataclass(frozen=True)
class PartnerRegistry:
    partners: Mapping[str, RegisteredPartner]
    sealing_keys: Mapping[str, SealingKey]
    missing_keys: tuple[str, ...]  # partner ids with no usable keys: they cannot call
    # Partner ids whose keys on disk differ from the policy's pins: they cannot call either.
    pin_mismatches: tuple[str, ...] = ()


def load_registry(policy: CompiledPolicy, keys_dir: Path) -> PartnerRegistry:
    partners: dict[str, RegisteredPartner] = {}
    sealing: dict[str, SealingKey] = {}
    missing: list[str] = []
    mismatched: list[str] = []
    for spec in policy.partners.values():
        try:
            keys = load_partner_public_keys(keys_dir, spec.id)
        except (CryptoError, OSError, ValueError):
            missing.append(spec.id)
            continue
        wrong = _unpinned(spec, keys, keys_dir)
        if wrong:
            # A key that is not the one the covenant registered is treated as no key: the
            # partner is refused rather than trusted on a key nobody approved.
            log.error("partner %s: %s on disk does not match the pin in the policy; the "
                      "partner cannot call until the key or the pin is corrected",
                      spec.id, " and ".join(wrong))
            mismatched.append(spec.id)
            continue
        partners[spec.id] = RegisteredPartner(
            partner_id=spec.id,
            partner_type=spec.type,
            roles=frozenset(spec.roles),
            token_keys={keys.token_key_id: keys.token_key},
        )
        sealing[spec.id] = SealingKey(keys.hpke_key, keys.hpke_key_id)
    if missing:
        log.warning("partners without registered keys (they cannot call): %s", ", ".join(missing))
    return PartnerRegistry(partners, sealing, tuple(missing), tuple(mismatched))


def _unpinned(spec: PartnerSpec, keys: PartnerPublicKeys, keys_dir: Path) -> list[str]:
    """Names of the pinned keys whose key on disk has another pin."""
    pins = spec.keys
    wrong: list[str] = []
    if pins.token is not None and key_pin(keys.token_key) != pins.token:
        wrong.append("token key")
    if pins.sealing is not None and key_pin(keys.hpke_key) != pins.sealing:
        wrong.append("sealing key")
    if pins.tls is not None and _tls_pin(keys_dir, spec.id) != pins.tls:
        wrong.append("TLS certificate key")
    return wrong


def _tls_pin(keys_dir: Path, partner_id: str) -> str | None:
    try:
        cert = load_certificate(PartnerKeyPaths.under(keys_dir, partner_id).tls_cert)
    except (CryptoError, OSError, ValueError):
        return None
    return key_pin(cert.public_key())

