"""Changes to a registry entry, as pure functions: each returns a new entry.

Rotation adds: a new certificate or token key is accepted next to the old ones until the
old is revoked, so a partner can roll its systems over one by one; a new sealing key
becomes current at once (answers are sealed to it from the next call) while the partner
keeps its old private key to open earlier answers.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

from cryptography import x509

from gateway.crypto._pem import load_certificate, load_ed25519_public_key, load_x25519_public_key
from gateway.crypto.layout import PartnerKeyPaths
from gateway.registry.entries import (
    CertificateEntry,
    KeyStatus,
    RegistryEntry,
    RegistryError,
    SealingKeyEntry,
    TokenKey,
    TokenKeyEntry,
)

__all__ = [
    "add_certificate",
    "add_sealing_key",
    "add_token_key",
    "entry_from_dev_keys",
    "new_entry",
    "revoke_certificate",
    "revoke_key",
    "revoke_partner",
]


def new_entry(
    partner_id: str,
    certificate: x509.Certificate,
    token_key: TokenKey,
    sealing_key: SealingKeyEntry,
) -> RegistryEntry:
    token = TokenKeyEntry.of(token_key)
    return RegistryEntry(
        partner_id=partner_id,
        certificates=(CertificateEntry.of(certificate),),
        algorithms=(token.algorithm,),
        token_keys=(token,),
        sealing_keys=(sealing_key,),
        current_sealing=sealing_key.kid,
    )


def entry_from_dev_keys(keys_dir: Path, partner_id: str) -> RegistryEntry:
    """The entry for a partner whose development keys ``ketenpoort keys init`` made."""
    paths = PartnerKeyPaths.under(keys_dir, partner_id)
    return new_entry(
        partner_id,
        load_certificate(paths.tls_cert),
        load_ed25519_public_key(paths.token_pub),
        SealingKeyEntry.of(load_x25519_public_key(paths.hpke_pub)),
    )


def add_certificate(entry: RegistryEntry, certificate: x509.Certificate) -> RegistryEntry:
    new = CertificateEntry.of(certificate)
    if any(c.thumbprint == new.thumbprint for c in entry.certificates):
        raise RegistryError(f"partner {entry.partner_id} already has that certificate")
    return replace(entry, certificates=(*entry.certificates, new))


def add_token_key(entry: RegistryEntry, key: TokenKey) -> RegistryEntry:
    new = TokenKeyEntry.of(key)
    if any(k.kid == new.kid for k in entry.token_keys):
        raise RegistryError(f"partner {entry.partner_id} already has token key {new.kid}")
    algorithms = entry.algorithms
    if new.algorithm not in algorithms:
        algorithms = (*algorithms, new.algorithm)
    return replace(entry, token_keys=(*entry.token_keys, new), algorithms=algorithms)


def add_sealing_key(entry: RegistryEntry, key: SealingKeyEntry) -> RegistryEntry:
    if any(k.kid == key.kid for k in entry.sealing_keys):
        raise RegistryError(f"partner {entry.partner_id} already has sealing key {key.kid}")
    return replace(entry, sealing_keys=(*entry.sealing_keys, key), current_sealing=key.kid)


def revoke_partner(entry: RegistryEntry, at: datetime) -> RegistryEntry:
    return replace(entry, status=KeyStatus.REVOKED, revoked_at=at)


def revoke_certificate(entry: RegistryEntry, thumbprint: str, at: datetime) -> RegistryEntry:
    if not any(c.thumbprint == thumbprint for c in entry.certificates):
        raise RegistryError(f"partner {entry.partner_id} has no certificate {thumbprint}")
    certificates = tuple(
        replace(c, status=KeyStatus.REVOKED, revoked_at=at) if c.thumbprint == thumbprint else c
        for c in entry.certificates
    )
    return replace(entry, certificates=certificates)


def revoke_key(entry: RegistryEntry, kid: str, at: datetime) -> RegistryEntry:
    """Revoke a token or sealing key by id; revoking the current sealing key is refused
    (rotate first), since answers would have no key to be sealed to."""
    token_hit = any(k.kid == kid for k in entry.token_keys)
    sealing_hit = any(k.kid == kid for k in entry.sealing_keys)
    if not token_hit and not sealing_hit:
        raise RegistryError(f"partner {entry.partner_id} has no key {kid}")
    if sealing_hit and kid == entry.current_sealing:
        raise RegistryError(
            f"{kid} is the current sealing key of {entry.partner_id}; rotate it first"
        )
    return replace(
        entry,
        token_keys=tuple(
            replace(k, status=KeyStatus.REVOKED, revoked_at=at) if k.kid == kid else k
            for k in entry.token_keys
        ),
        sealing_keys=tuple(
            replace(k, status=KeyStatus.REVOKED, revoked_at=at) if k.kid == kid else k
            for k in entry.sealing_keys
        ),
    )
