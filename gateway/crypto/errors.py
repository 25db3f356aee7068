"""Errors raised by the cryptography edge.

::

    CryptoError
    ├── SealError            sealing an answer to a partner
    │   └── SealOpenError    a sealed box did not open (one message for every cause)
    ├── EnvelopeError        case data at rest: a token or wrapped data key did not open
    ├── KeystoreError        a key file is missing, malformed or too widely readable
    └── DevKeysError         development keys could not be created as asked

Messages name files and key ids, never key material or a field value.
"""

from __future__ import annotations

__all__ = [
    "CryptoError",
    "DevKeysError",
    "EnvelopeError",
    "KeystoreError",
    "SealError",
    "SealOpenError",
]


class CryptoError(Exception):
    """Base of every error raised by ``gateway.crypto``."""


class SealError(CryptoError):
    """Sealing or opening an answer failed."""


class SealOpenError(SealError):
    """A sealed box could not be opened.

    Wrong key, wrong binding, tampering and unknown formats all raise this one error with
    the same message, so a caller probing with crafted boxes learns nothing about which
    check failed.
    """


class EnvelopeError(CryptoError):
    """Encrypted case data or a wrapped data key could not be opened."""


class KeystoreError(CryptoError):
    """A key file could not be used. The message names the file, never its content."""


class DevKeysError(CryptoError):
    """Development keys could not be created without overwriting or mixing key sets."""
