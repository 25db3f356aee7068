"""The partner registry: who may call, with which certificates and keys.

One file per partner beside the policies (``REGISTRY/<partner_id>.yaml``): the fingerprints
of the partner's client certificates (RFC 8705 ``x5t#S256``), its token-signing keys as a
JWK set with the algorithms it may use, and its HPKE public keys answers are sealed to. The
policy says which roles a partner has; the registry says how its systems prove who they
are. ``ketenpoort partner add|rotate|revoke`` edits the files; the gateway reloads them.
"""

from gateway.registry.entries import (
    CertificateEntry,
    KeyStatus,
    RegistryEntry,
    RegistryError,
    SealingKeyEntry,
    TokenKeyEntry,
    certificate_thumbprint,
)

__all__ = [
    "CertificateEntry",
    "KeyStatus",
    "RegistryEntry",
    "RegistryError",
    "SealingKeyEntry",
    "TokenKeyEntry",
    "certificate_thumbprint",
]
