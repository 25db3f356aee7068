"""The partner registry at run time: who the policy names as partners, with the public keys
their systems registered (token-signing keys and HPKE sealing keys)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.broker.context import SealingKey
from gateway.core import CompiledPolicy
from gateway.crypto.devkeys import load_partner_public_keys
from gateway.crypto.errors import CryptoError
from gateway.server.auth import RegisteredPartner

log = logging.getLogger("ketenpoort.partners")


@dataclass(frozen=True)
class PartnerRegistry:
    partners: Mapping[str, RegisteredPartner]
    sealing_keys: Mapping[str, SealingKey]
    missing_keys: tuple[str, ...]  # partner ids with no usable keys: they cannot call


def load_registry(policy: CompiledPolicy, keys_dir: Path) -> PartnerRegistry:
    partners: dict[str, RegisteredPartner] = {}
    sealing: dict[str, SealingKey] = {}
    missing: list[str] = []
    for spec in policy.partners.values():
        try:
            keys = load_partner_public_keys(keys_dir, spec.id)
        except (CryptoError, OSError, ValueError):
            missing.append(spec.id)
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
    return PartnerRegistry(partners, sealing, tuple(missing))
