"""What partners send in, sealed to the gateway with HPKE (RFC 9180, base mode).

A registration, a case-file entry or a source system's answer is sealed to one of the
gateway's own X25519 keys, so that a proxy terminating TLS on the way sees ciphertext only.
The ``info`` binds the box to the operation it was made for, the partner that sent it, the
gateway key it was sealed to and a value unique to the request (sent beside the box in the
clear): a box moved to another operation, claimed by another partner or replayed under
another request id does not open. The suite is that of sealed answers
(:mod:`gateway.crypto.sealing`); the label keeps the two kinds apart. See
docs/sealed-answers.md, "Sealed submissions".

The gateway opens with its key ring (:class:`gateway.crypto.provider.KeyRing`): the key named
in the box, current or not yet retired, so that boxes sealed just before a rotation still open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from gateway.crypto._encoding import length_prefixed
from gateway.crypto.errors import KeystoreError, SealOpenError, UnknownGatewayKey
from gateway.crypto.provider import HpkeRecipient, KeyRing
from gateway.crypto.sealing import SEAL_SUITE_NAME

__all__ = [
    "MAX_REQUEST_ID_CHARS",
    "SIGNED_SUBMISSION_FORMAT_VERSION",
    "SUBMISSION_FORMAT_VERSION",
    "SUBMISSION_SUITE_NAME",
    "GatewayPublicKey",
    "SealedSubmission",
    "SubmissionBinding",
    "check_binding",
    "open_submission",
    "seal_submission",
    "submission_info",
]

SUBMISSION_FORMAT_VERSION = 1
# Version 2: the same sealing, and the box signed by the sender's registered token key (source
# answers: gateway.crypto.source_answers). Its info carries "2", so a box of one version never
# opens as the other.
SIGNED_SUBMISSION_FORMAT_VERSION = 2
_VERSIONS = frozenset({SUBMISSION_FORMAT_VERSION, SIGNED_SUBMISSION_FORMAT_VERSION})
SUBMISSION_SUITE_NAME = SEAL_SUITE_NAME
# Long enough for a UUID or a prefixed 128-bit hex id; short enough that nobody stores text in it.
MAX_REQUEST_ID_CHARS = 128

_INFO_LABEL = b"ketenpoort/v1 sealed-submission"
_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
# enc (32-byte X25519 public key) + Poly1305 tag (16 bytes): nothing shorter can open.
_MIN_CIPHERTEXT = 32 + 16
_OPEN_FAILED = "sealed submission could not be opened"


@dataclass(frozen=True)
class GatewayPublicKey:
    """One of the gateway's HPKE public keys as a partner seals to it. ``key_id`` is the id the
    gateway advertises; the box names it so the gateway knows which of its keys opens it."""

    key_id: str
    public_key: X25519PublicKey

    def __repr__(self) -> str:
        return f"GatewayPublicKey(key_id={self.key_id!r})"


@dataclass(frozen=True)
class SealedSubmission:
    """A sealed submission: ``ciphertext`` is HPKE ``enc || ct``."""

    version: int
    suite: str
    gateway_key_id: str
    ciphertext: bytes
    # Version 2 only: the sender's token key id and its signature over the box and the request
    # (gateway.crypto.source_answers).
    signer_key_id: str = ""
    signature: bytes = b""


@dataclass(frozen=True)
class SubmissionBinding:
    """What a sealed submission is bound to; sender and opener must present the same.

    ``operation`` is "Service/Method" (e.g. ``ExchangeService/RegisterCase``), ``sender_id``
    the partner id of the sender (the gateway takes it from the authenticated caller or from
    the source it called, never from the message), ``request_id`` the request-unique value sent
    beside the box.
    """

    operation: str
    sender_id: str
    request_id: str

    def __post_init__(self) -> None:
        check_binding(self, ("operation", "sender_id", "request_id"))


def check_binding(binding: Any, fields: tuple[str, ...]) -> None:
    """Refuses a binding with an empty field among ``fields`` or an over-long ``request_id``:
    an empty part would bind a box to less than its reader believes."""
    for name in fields:
        if not getattr(binding, name):
            raise ValueError(f"{type(binding).__name__}.{name} must not be empty")
    if len(binding.request_id) > MAX_REQUEST_ID_CHARS:
        raise ValueError(f"request_id is longer than {MAX_REQUEST_ID_CHARS} characters")


def submission_info(binding: SubmissionBinding, gateway_key_id: str, version: int) -> bytes:
    """The HPKE ``info``: the label ``ketenpoort/v1 sealed-submission``, then version,
    operation, sender id, gateway key id and request id, each length-prefixed."""
    return length_prefixed(
        _INFO_LABEL,
        str(version),
        binding.operation,
        binding.sender_id,
        gateway_key_id,
        binding.request_id,
    )


def seal_submission(
    plaintext: bytes,
    gateway_key: GatewayPublicKey,
    binding: SubmissionBinding,
    *,
    version: int = SUBMISSION_FORMAT_VERSION,
) -> SealedSubmission:
    """Seal ``plaintext`` to ``gateway_key`` for the request described by ``binding``, in
    ``version`` (2 only for a box its sender then signs)."""
    if not gateway_key.key_id:
        raise ValueError("the gateway key has no id")
    if version not in _VERSIONS:
        raise ValueError(f"no sealed submission format version {version}")
    info = submission_info(binding, gateway_key.key_id, version)
    return SealedSubmission(
        version=version,
        suite=SUBMISSION_SUITE_NAME,
        gateway_key_id=gateway_key.key_id,
        ciphertext=_SUITE.encrypt(plaintext, gateway_key.public_key, info=info),
    )


def open_submission(
    box: SealedSubmission,
    keys: KeyRing[HpkeRecipient],
    binding: SubmissionBinding,
    *,
    version: int = SUBMISSION_FORMAT_VERSION,
) -> bytes:
    """Open a sealed submission with the gateway key it names.

    Raises :class:`UnknownGatewayKey` when that key is not in ``keys`` (never was, or was
    retired), and :class:`SealOpenError`, with one message for every cause, when the box is of
    another version or suite, was altered, or was sealed for another binding. The binding is
    the opener's own expectation; only the key id is taken from the box, and it is bound into
    ``info``, so naming another key does not help a moved box open either. Only a box of
    ``version`` opens: the caller says which it expects (2 after checking the signature).
    """
    if box.version != version or box.suite != SUBMISSION_SUITE_NAME:
        raise SealOpenError(_OPEN_FAILED)
    try:
        recipient = keys.get(box.gateway_key_id)
    except KeystoreError:
        # The id came with the request: it is not echoed, so nothing sent in lands in a message.
        raise UnknownGatewayKey(
            "the gateway key the submission was sealed to is not in use; "
            "fetch the gateway's keys again (GetGatewayKeys)"
        ) from None
    if len(box.ciphertext) < _MIN_CIPHERTEXT:
        raise SealOpenError(_OPEN_FAILED)
    info = submission_info(binding, recipient.key_id, version)
    try:
        return recipient.open(box.ciphertext, info)
    except SealOpenError:
        raise SealOpenError(_OPEN_FAILED) from None
