"""Stable, short identifiers for public keys."""

from __future__ import annotations

import base64
import hashlib
import ssl

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

__all__ = [
    "KEY_ID_PREFIX",
    "PIN_PREFIX",
    "certificate_thumbprint",
    "key_id",
    "key_pin",
    "pem_certificate_thumbprint",
]

KEY_ID_PREFIX = "k_"
PIN_PREFIX = "sha256:"
_KEY_ID_HEX_CHARS = 16


def key_id(public_key: PublicKeyTypes) -> str:
    """``"k_"`` + the first 16 hex characters of SHA-256 over the key's public bytes.

    Ed25519 and X25519 keys are hashed in their raw 32-byte form, which is what other
    implementations (JWK ``x``, HPKE ``pkR``) exchange; any other key is hashed as DER
    SubjectPublicKeyInfo.
    """
    if isinstance(public_key, Ed25519PublicKey | X25519PublicKey):
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raw = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return KEY_ID_PREFIX + hashlib.sha256(raw).hexdigest()[:_KEY_ID_HEX_CHARS]


def key_pin(public_key: PublicKeyTypes) -> str:
    """``"sha256:"`` + the hex SHA-256 over the key's DER SubjectPublicKeyInfo.

    This is the form the policy's partner ``keys`` pins take, the same for every key type, so
    a privacy officer can compute it with ``openssl pkey -pubin -outform DER | sha256sum``.
    """
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return PIN_PREFIX + hashlib.sha256(der).hexdigest()


def certificate_thumbprint(der: bytes) -> str:
    """RFC 8705 ``x5t#S256``: base64url (no padding) of SHA-256 over the DER certificate."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def pem_certificate_thumbprint(pem: bytes) -> str:
    """:func:`certificate_thumbprint` of a PEM certificate (what TLS stacks hand out)."""
    return certificate_thumbprint(ssl.PEM_cert_to_DER_cert(pem.decode("ascii")))
