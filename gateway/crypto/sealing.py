"""Answers sealed to the receiving partner with HPKE (RFC 9180, base mode).

Only the partner holding the private key can open a sealed answer, and only for the
disclosure, recipient and purpose it was sealed for: those travel in HPKE's ``info``,
so a box moved to another disclosure, or replayed under another purpose, does not open.
Triage answers are sealed the same way under their own label, bound to the triage id
instead of a disclosure id, so neither kind of box opens as the other. Other formats on the
same suite (sealed source requests, :mod:`gateway.crypto.source_requests`) use
:func:`seal_with_info` and :func:`open_with_info` with their own label.

Format version 2 binds an answer to the request as well: the client sends a fresh random
nonce with each request, and the ``info`` holds it and the case id. A relay that terminates
TLS can then no longer hand a partner the answer to one request in reply to another (the
disclosure id alone is the gateway's, and comes with the swapped answer). A binding with a
nonce is a version 2 binding and opens only version 2 boxes, so a client that sent a nonce
cannot be downgraded to an answer bound to nothing of its own. See docs/sealed-answers.md.
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
    "BOUND_SEAL_FORMAT_VERSION",
    "MAX_REQUEST_NONCE_BYTES",
    "MIN_REQUEST_NONCE_BYTES",
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

# Version 1: bound to the disclosure (or triage) id, recipient, purpose and key id.
SEAL_FORMAT_VERSION = 1
# Version 2: bound also to the case id and the nonce the client sent with its request.
BOUND_SEAL_FORMAT_VERSION = 2
SEAL_SUITE_NAME = "DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/ChaCha20Poly1305"
# 128 bits make a collision between two requests of one partner negligible; 64 bytes is room
# for any reasonable choice without letting a request carry payload in the nonce.
MIN_REQUEST_NONCE_BYTES = 16
MAX_REQUEST_NONCE_BYTES = 64

_RECORD_LABELS = {
    SEAL_FORMAT_VERSION: b"ketenpoort/v1 sealed-record",
    BOUND_SEAL_FORMAT_VERSION: b"ketenpoort/v2 sealed-record",
}
_TRIAGE_LABELS = {
    SEAL_FORMAT_VERSION: b"ketenpoort/v1 sealed-triage",
    BOUND_SEAL_FORMAT_VERSION: b"ketenpoort/v2 sealed-triage",
}
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


def _check_request_binding(kind: str, case_id: str, request_nonce: bytes) -> None:
    if not request_nonce:
        if case_id:
            # Version 1 does not bind the case: accepting one here would promise a binding
            # that the box does not have.
            raise ValueError(f"{kind}.case_id is bound only together with a request_nonce")
        return
    if not MIN_REQUEST_NONCE_BYTES <= len(request_nonce) <= MAX_REQUEST_NONCE_BYTES:
        raise ValueError(
            f"{kind}.request_nonce must be {MIN_REQUEST_NONCE_BYTES}..{MAX_REQUEST_NONCE_BYTES} "
            "bytes"
        )
    if not case_id:
        raise ValueError(f"{kind}.case_id must not be empty with a request_nonce")


@dataclass(frozen=True)
class SealBinding:
    """The context a sealed answer is bound to; the opener must present the same.

    With ``request_nonce`` (the nonce the client sent) and ``case_id`` (the case it asked
    about) the binding is of format version 2; without them, of version 1."""

    disclosure_id: str
    recipient_id: str
    purpose: str
    case_id: str = ""
    request_nonce: bytes = b""

    def __post_init__(self) -> None:
        for name in ("disclosure_id", "recipient_id", "purpose"):
            if not getattr(self, name):
                raise ValueError(f"SealBinding.{name} must not be empty")
        _check_request_binding("SealBinding", self.case_id, self.request_nonce)

    @property
    def version(self) -> int:
        return BOUND_SEAL_FORMAT_VERSION if self.request_nonce else SEAL_FORMAT_VERSION

    def __repr__(self) -> str:
        # The nonce is no secret, but it has no business in a log line either.
        return (
            f"SealBinding(disclosure_id={self.disclosure_id!r}, version={self.version})"
        )


@dataclass(frozen=True)
class TriageBinding:
    """The context a sealed triage answer is bound to; the opener must present the same.
    Versions as for :class:`SealBinding`."""

    triage_id: str
    recipient_id: str
    purpose: str
    case_id: str = ""
    request_nonce: bytes = b""

    def __post_init__(self) -> None:
        for name in ("triage_id", "recipient_id", "purpose"):
            if not getattr(self, name):
                raise ValueError(f"TriageBinding.{name} must not be empty")
        _check_request_binding("TriageBinding", self.case_id, self.request_nonce)

    @property
    def version(self) -> int:
        return BOUND_SEAL_FORMAT_VERSION if self.request_nonce else SEAL_FORMAT_VERSION

    def __repr__(self) -> str:
        return f"TriageBinding(triage_id={self.triage_id!r}, version={self.version})"


def _answer_info(
    labels: dict[int, bytes],
    reference: str,
    binding: SealBinding | TriageBinding,
    recipient_key_id: str,
    version: int | None,
) -> bytes:
    if version is not None and version != binding.version:
        raise ValueError(f"a version {binding.version} binding cannot make version {version} info")
    parts: list[str | bytes] = [
        str(binding.version), reference, binding.recipient_id, binding.purpose, recipient_key_id,
    ]
    if binding.version == BOUND_SEAL_FORMAT_VERSION:
        parts += [binding.case_id, binding.request_nonce]
    return length_prefixed(labels[binding.version], *parts)


def seal_info(binding: SealBinding, recipient_key_id: str, version: int | None = None) -> bytes:
    """The HPKE ``info`` for a binding: the label of its version, then version, disclosure id,
    recipient id, purpose and recipient key id, and in version 2 the case id and the request
    nonce, each length-prefixed. ``version``, when given, must be the binding's."""
    return _answer_info(
        _RECORD_LABELS, binding.disclosure_id, binding, recipient_key_id, version
    )


def triage_seal_info(
    binding: TriageBinding, recipient_key_id: str, version: int | None = None
) -> bytes:
    """The HPKE ``info`` of a triage answer: as :func:`seal_info` under the triage labels
    (``ketenpoort/v1 sealed-triage``, ``ketenpoort/v2 sealed-triage``), with the triage id."""
    return _answer_info(_TRIAGE_LABELS, binding.triage_id, binding, recipient_key_id, version)


def seal(plaintext: bytes, recipient: X25519PublicKey, binding: SealBinding) -> SealedBox:
    """Seal ``plaintext`` to ``recipient`` for the disclosure described by ``binding``, in the
    binding's format version."""
    return seal_with_info(
        plaintext, recipient, lambda kid: seal_info(binding, kid), version=binding.version
    )


def seal_triage(plaintext: bytes, recipient: X25519PublicKey, binding: TriageBinding) -> SealedBox:
    """Seal a triage answer to ``recipient`` for the question described by ``binding``."""
    return seal_with_info(
        plaintext, recipient, lambda kid: triage_seal_info(binding, kid), version=binding.version
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
    taken from the box, so a box only opens where and for what it was sealed. Only a box of
    the binding's own version opens: a binding with a request nonce refuses version 1.
    """
    return open_with_info(
        box, private_key, lambda kid: seal_info(binding, kid), version=binding.version
    )


def open_sealed_triage(
    box: SealedBox, private_key: X25519PrivateKey, binding: TriageBinding
) -> bytes:
    """Open a sealed triage answer, or raise :class:`SealOpenError` (as :func:`open_sealed`)."""
    return open_with_info(
        box, private_key, lambda kid: triage_seal_info(binding, kid), version=binding.version
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
