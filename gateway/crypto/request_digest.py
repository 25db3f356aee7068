"""Keyed digests of a request's content: a resent request is recognised as the same one
without the gateway keeping its content.

A registration holds a BSN, and there are only about 10^8 of those: a plain hash of the
content could be reversed by trying them all. The digest is HMAC-SHA256 under a key derived
from the pseudonym key with HKDF-SHA256 and its own label, so without the gateway's key
nothing can be tried, and a digest is never a pseudonym nor derivable from one. The pseudonym
key is never rotated (pseudonyms under another key would not find a subject's cases), so
digests made before a restart still compare equal after it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.crypto._encoding import length_prefixed

__all__ = [
    "REQUEST_DIGEST_BYTES",
    "request_digest",
    "request_digest_key",
    "same_digest",
]

REQUEST_DIGEST_BYTES = 32
_KEY_INFO = b"ketenpoort/v1 request-digest key"
_DIGEST_LABEL = b"ketenpoort/v1 request-digest"
_MIN_SECRET_BYTES = 32


def request_digest_key(pseudonym_key: bytes) -> bytes:
    """The digest key: HKDF-SHA256 over the pseudonym key, info ``ketenpoort/v1 request-digest
    key``, no salt (the input is already a uniformly random key)."""
    if len(pseudonym_key) < _MIN_SECRET_BYTES:
        raise ValueError(f"the pseudonym key must be at least {_MIN_SECRET_BYTES} bytes")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_INFO)
    return hkdf.derive(pseudonym_key)


def request_digest(key: bytes, operation: str, fields: Sequence[str]) -> bytes:
    """HMAC-SHA256 over the label, the operation, the number of fields and each field,
    length-prefixed (so no two different contents encode alike)."""
    message = length_prefixed(_DIGEST_LABEL, operation, str(len(fields)), *fields)
    return hmac.new(key, message, hashlib.sha256).digest()


def same_digest(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two digests."""
    return hmac.compare_digest(a, b)
