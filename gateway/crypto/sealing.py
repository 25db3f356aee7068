"""Answers sealed to the receiving partner with HPKE (RFC 9180, base mode).

Only the partner holding the private key can open a sealed answer, and only for the
disclosure, recipient and purpose it was sealed for: those travel in HPKE's ``info``,
so a box moved to another disclosure, or replayed under another purpose, does not open.
Triage answers are sealed the same way under their own label, bound to the triage id
instead of a disclosure id, so neither kind of box opens as the other. Other formats on the
same suite (sealed source requests, :mod:`gateway.crypto.source_requests`) use
:func:`seal_with_info` and :func:`open_with_info` with their own label.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from gateway.crypto._encoding import length_prefixed
from gateway.crypto.errors import SealOpenError
from gateway.crypto.keyids import key_id

__all__ = [
    "SEAL_FORMAT_VERSION",
    "SEAL_SUITE_NAME",
    "SealBinding",
    "SealedBox",
    "TriageBinding",
    "open_sealed",
    "open_sealed_triage",
    "open_with_info",
    "seal",
    "seal_info",
    "seal_triage",
    "seal_with_info",
    "triage_seal_info",
]

SEAL_FORMAT_VERSION = 1
SEAL_SUITE_NAME = "DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/ChaCha20Poly1305"

_INFO_LABEL = b"ketenpoort/v1 sealed-record"
_TRIAGE_INFO_LABEL = b"ketenpoort/v1 sealed-triage"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
# enc (32-byte X25519 public key) + Poly1305 tag (16 bytes): nothing shorter can open.
_MIN_CIPHERTEXT = 32 + 16
_OPEN_FAILED = "sealed box could not be opened"


@dataclass(frozen=True)
class SealedBox:
    """A sealed answer: ``ciphertext`` is HPKE ``enc || ct``."""

    version: int
    suite: str
    recipient_key_id: str
    ciphertext: bytes


@dataclass(frozen=True)
class SealBinding:
    """The context a sealed answer is bound to; the opener must present the same."""

    disclosure_id: str
    recipient_id: str
    purpose: str

    def __post_init__(self) -> None:
        for name in ("disclosure_id", "recipient_id", "purpose"):
            if not getattr(self, name):
                raise ValueError(f"SealBinding.{name} must not be empty")


@dataclass(frozen=True)
class TriageBinding:
    """The context a sealed triage answer is bound to; the opener must present the same."""

    triage_id: str
    recipient_id: str
    purpose: str

    def __post_init__(self) -> None:
        for name in ("triage_id", "recipient_id", "purpose"):
            if not getattr(self, name):
                raise ValueError(f"TriageBinding.{name} must not be empty")


def seal_info(binding: SealBinding, recipient_key_id: str, version: int) -> bytes:
    """The HPKE ``info`` for a binding: a fixed label, then version, disclosure id,
    recipient id, purpose and recipient key id, each length-prefixed."""
    return length_prefixed(
        _INFO_LABEL,
        str(version),
        binding.disclosure_id,
        binding.recipient_id,
        binding.purpose,
        recipient_key_id,
    )


def triage_seal_info(binding: TriageBinding, recipient_key_id: str, version: int) -> bytes:
    """The HPKE ``info`` of a triage answer: the label ``ketenpoort/v1 sealed-triage``, then
    version, triage id, recipient id, purpose and recipient key id, each length-prefixed."""
    return length_prefixed(
        _TRIAGE_INFO_LABEL,
        str(version),
        binding.triage_id,
        binding.recipient_id,
        binding.purpose,
        recipient_key_id,
    )


def seal(plaintext: bytes, recipient: X25519PublicKey, binding: SealBinding) -> SealedBox:
    """Seal ``plaintext`` to ``recipient`` for the disclosure described by ``binding``."""
    return seal_with_info(
        plaintext, recipient, lambda kid: seal_info(binding, kid, SEAL_FORMAT_VERSION)
    )


def seal_triage(plaintext: bytes, recipient: X25519PublicKey, binding: TriageBinding) -> SealedBox:
    """Seal a triage answer to ``recipient`` for the question described by ``binding``."""
    return seal_with_info(
        plaintext, recipient, lambda kid: triage_seal_info(binding, kid, SEAL_FORMAT_VERSION)
    )


def seal_with_info(
    plaintext: bytes,
    recipient: X25519PublicKey,
    info_for: Callable[[str], bytes],
    *,
    version: int = SEAL_FORMAT_VERSION,
) -> SealedBox:
    """Seal ``plaintext`` to ``recipient`` with the ``info`` that ``info_for`` builds from the
    recipient's key id; the box carries ``version``, the suite and that key id. For a format
    on this suite with a binding of its own; its label keeps it apart from the others."""
    recipient_key_id = key_id(recipient)
    info = info_for(recipient_key_id)
    ciphertext = _SUITE.encrypt(plaintext, recipient, info=info)
    return SealedBox(
        version=version,
        suite=SEAL_SUITE_NAME,
        recipient_key_id=recipient_key_id,
        ciphertext=ciphertext,
    )


def open_sealed(box: SealedBox, private_key: X25519PrivateKey, binding: SealBinding) -> bytes:
    """Open a sealed box, or raise :class:`SealOpenError`.

    The key id and binding are recomputed from the caller's own key and expectations, never
    taken from the box, so a box only opens where and for what it was sealed.
    """
    return open_with_info(
        box, private_key, lambda kid: seal_info(binding, kid, SEAL_FORMAT_VERSION)
    )


def open_sealed_triage(
    box: SealedBox, private_key: X25519PrivateKey, binding: TriageBinding
) -> bytes:
    """Open a sealed triage answer, or raise :class:`SealOpenError` (as :func:`open_sealed`)."""
    return open_with_info(
        box, private_key, lambda kid: triage_seal_info(binding, kid, SEAL_FORMAT_VERSION)
    )


def open_with_info(
    box: SealedBox,
    private_key: X25519PrivateKey,
    info_for: Callable[[str], bytes],
    *,
    version: int = SEAL_FORMAT_VERSION,
) -> bytes:
    """Open a box sealed with :func:`seal_with_info`, or raise :class:`SealOpenError` (one
    message for every cause): another version or suite, another key, a short or altered
    ciphertext, or another ``info``. The key id is computed from ``private_key``, never
    taken from the box."""
    expected_key_id = key_id(private_key.public_key())
    if (
        box.version != version
        or box.suite != SEAL_SUITE_NAME
        or not hmac.compare_digest(
            box.recipient_key_id.encode("utf-8", "replace"), expected_key_id.encode()
        )
        or len(box.ciphertext) < _MIN_CIPHERTEXT
    ):
        raise SealOpenError(_OPEN_FAILED)
    info = info_for(expected_key_id)
    try:
        return _SUITE.decrypt(box.ciphertext, private_key, info=info)
    except (InvalidTag, ValueError):
        raise SealOpenError(_OPEN_FAILED) from None
