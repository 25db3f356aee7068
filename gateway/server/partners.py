"""The partner registry at run time: the partners the policy names, joined with their
registry entries (certificates, token keys, sealing keys).

A partner the policy names without a registry entry cannot call; an entry for a partner the
policy does not name is ignored. Where the policy pins a partner's keys (``keys:`` in
partners.yaml), registered keys of that kind with another pin are not accepted: a key the
covenant did not approve is treated as no key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gateway.broker.context import SealingKey
from gateway.core import CompiledPolicy, PartnerSpec
from gateway.crypto.keyids import key_pin
from gateway.registry.entries import KeyStatus, RegistryEntry
from gateway.registry.files import read_registry
from gateway.server.auth import RegisteredPartner

log = logging.getLogger("ketenpoort.partners")


@dataclass(frozen=True)
class PartnerRegistry:
    partners: Mapping[str, RegisteredPartner]
    sealing_keys: Mapping[str, SealingKey]
    missing_keys: tuple[str, ...]  # partner ids with no registry entry: they cannot call
    # Partner ids with registered keys that differ from the policy's pins.
    pin_mismatches: tuple[str, ...] = ()
    # Certificate thumbprint (x5t#S256) -> the partner id it is registered to.
    by_certificate: Mapping[str, str] = field(default_factory=dict)


def load_registry(policy: CompiledPolicy, registry_dir: Path) -> PartnerRegistry:
    """Read the registry directory and join it with ``policy``; RegistryError if a file is
    broken (the caller keeps the registry it has)."""
    return join_registry(policy, read_registry(registry_dir))


def join_registry(policy: CompiledPolicy, entries: Mapping[str, RegistryEntry]) -> PartnerRegistry:
    partners: dict[str, RegisteredPartner] = {}
    sealing: dict[str, SealingKey] = {}
    by_certificate: dict[str, str] = {}
    missing: list[str] = []
    mismatched: list[str] = []
    for spec in policy.partners.values():
        entry = entries.get(spec.id)
        if entry is None:
            missing.append(spec.id)
            continue
        registered, unpinned = _registered(spec, entry)
        if unpinned:
            log.error("partner %s: %s in the registry do(es) not match the pin in the policy "
                      "and is not accepted", spec.id, " and ".join(unpinned))
            mismatched.append(spec.id)
        if not _usable(spec, registered, entry):
            # Nothing the covenant approved is left of a pinned kind: the partner cannot call
            # rather than call on a key nobody approved.
            continue
        partners[spec.id] = registered
        for thumbprint in registered.certificates:
            by_certificate[thumbprint] = spec.id
        current = entry.current_sealing_key()
        if current is not None and (
            spec.keys.sealing is None or key_pin(current.key) == spec.keys.sealing
        ):
            sealing[spec.id] = SealingKey(current.key, current.kid)
    for partner_id in sorted(set(entries) - set(policy.partners)):
        log.warning("registry entry %s names no partner of the policy; it is ignored", partner_id)
    if missing:
        log.warning("partners without a registry entry (they cannot call): %s", ", ".join(missing))
    return PartnerRegistry(partners, sealing, tuple(missing), tuple(mismatched), by_certificate)


def _usable(spec: PartnerSpec, registered: RegisteredPartner, entry: RegistryEntry) -> bool:
    pins = spec.keys
    current = entry.current_sealing_key()
    return (
        (pins.token is None or bool(registered.token_keys))
        and (pins.tls is None or bool(registered.certificates))
        and (pins.sealing is None or (current is not None and key_pin(current.key) == pins.sealing))
    )


def _registered(spec: PartnerSpec, entry: RegistryEntry) -> tuple[RegisteredPartner, list[str]]:
    pins = spec.keys
    unpinned: list[str] = []
    token_keys = {}
    revoked_keys = set()
    for key in entry.token_keys:
        if key.status is KeyStatus.REVOKED:
            revoked_keys.add(key.kid)
        elif pins.token is not None and key_pin(key.key) != pins.token:
            unpinned.append(f"token key {key.kid}")
        else:
            token_keys[key.kid] = (key.algorithm, key.key)
    certificates = set()
    revoked_certificates = set()
    for cert in entry.certificates:
        if cert.status is KeyStatus.REVOKED:
            revoked_certificates.add(cert.thumbprint)
        elif pins.tls is not None and cert.spki_pin != pins.tls:
            unpinned.append(f"certificate {cert.thumbprint}")
        else:
            certificates.add(cert.thumbprint)
    current = entry.current_sealing_key()
    if pins.sealing is not None and current is not None and key_pin(current.key) != pins.sealing:
        unpinned.append(f"sealing key {current.kid}")
    registered = RegisteredPartner(
        partner_id=spec.id,
        partner_type=spec.type,
        roles=frozenset(spec.roles),
        token_keys=token_keys,
        algorithms=frozenset(entry.algorithms),
        revoked_keys=frozenset(revoked_keys),
        certificates=frozenset(certificates),
        revoked_certificates=frozenset(revoked_certificates),
        active=entry.active,
    )
    return registered, unpinned
