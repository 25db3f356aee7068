"""Errors raised by the cryptography edge.

::

    CryptoError
    ├── SealError            sealing an answer to a partner, or a submission to the gateway
    │   ├── SealOpenError    a sealed box did not open (one message for every cause)
    │   ├── UnknownGatewayKey  a sealed submission names a gateway key not (or no longer) in use
    │   └── UnknownRecipientKey  a sealed source request names a key the source does not hold
    ├── EnvelopeError        case data at rest: a token or wrapped data key did not open
    ├── KeystoreError        a key file is missing, malformed or too widely readable
    │   └── NoKeyError       a key ring has no key yet (create one with `keys rotate`)
    └── DevKeysError         development keys could not be created as asked

Messages name files and key ids, never key material or a field value.
"""

from __future__ import annotations

__all__ = [
    "CryptoError",
    "DevKeysError",
    "EnvelopeError",
    "KeystoreError",
    "NoKeyError",
    "SealError",
    "SealOpenError",
    "UnknownGatewayKey",
    "UnknownRecipientKey",
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


class UnknownGatewayKey(SealError):
    """A sealed submission names a gateway key id that is not among the usable keys.

    Unlike :class:`SealOpenError` this is told apart on purpose: key ids are public (the
    gateway advertises them), and the sender's remedy is to fetch the gateway's keys again.
    """


class UnknownRecipientKey(SealError):
    """A sealed source request names a partner key id the source does not hold (not yet
    given the key a rotation made current, or already rid of the old one).

    Told apart from :class:`SealOpenError` for the same reason as :class:`UnknownGatewayKey`:
    key ids are public (the partner registry lists them), and the remedy is a key, not a probe.
    """


class EnvelopeError(CryptoError):
    """Encrypted case data or a wrapped data key could not be opened."""


class KeystoreError(CryptoError):
    """A key file could not be used. The message names the file, never its content."""


class NoKeyError(KeystoreError):
    """A provider holds no key of the kind asked for (nothing was created yet)."""


class DevKeysError(CryptoError):
    """Development keys could not be created without overwriting or mixing key sets."""
