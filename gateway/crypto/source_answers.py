"""Source answers that prove their origin: a sealed submission signed by the source partner.

A source answer sealed to the gateway (:mod:`gateway.crypto.submissions`) is confidential,
but HPKE base mode proves nothing about who sealed it: anyone holding the gateway's public
key, a relay between gateway and source among them, can seal an answer of its own. Version 2
of the sealed submission adds a signature by the source partner's registered token key (the
key the partner signs its JWTs with, Ed25519 or ES256, named by its ``kid`` in the partner
registry) over a domain-separated statement of the request it answers and the ciphertext.
The gateway verifies it against the registry before it opens the box, so an answer is
accepted only from the partner the source is configured for, and only for that request.

cryptography's HPKE offers base mode only (no RFC 9180 auth mode), hence a signature rather
than an authenticated seal. See docs/sealed-answers.md, "Signed source answers".
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from gateway.crypto._encoding import length_prefixed
from gateway.crypto.errors import SealOpenError
from gateway.crypto.submissions import (
    SIGNED_SUBMISSION_FORMAT_VERSION,
    SealedSubmission,
    check_binding,
)

__all__ = [
    "SIGNATURE_LABEL",
    "SourceAnswerBinding",
    "SourceAnswerSigner",
    "signed_answer_payload",
    "verify_source_answer",
]

SIGNATURE_LABEL = b"ketenpoort/v2 signed-source-answer"
_P256_COORDINATE = 32
_REFUSED = "the source answer's signature does not verify"

SigningKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
VerifyingKey = Ed25519PublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class SourceAnswerBinding:
    """The request a source answer answers; gateway and source must present the same.

    ``operation`` is "SourceService/Method", ``gateway_id`` the gateway's name (its token
    audience), ``source_id`` the partner id of the source's partner, ``request_id`` the
    request's id (128 random bits the gateway draws per call: the request's nonce) and
    ``reference`` the disclosure id (FetchFields) or triage id (LookupSubject).
    """

    operation: str
    gateway_id: str
    source_id: str
    request_id: str
    reference: str

    def __post_init__(self) -> None:
        check_binding(self, ("operation", "gateway_id", "source_id", "request_id", "reference"))


def signed_answer_payload(
    binding: SourceAnswerBinding, gateway_key_id: str, signer_key_id: str, ciphertext: bytes
) -> bytes:
    """What is signed: the label ``ketenpoort/v2 signed-source-answer``, then version,
    operation, gateway id, source partner id, request id, reference, gateway key id, signer key
    id and the ciphertext (``enc || ct``), each length-prefixed."""
    return length_prefixed(
        SIGNATURE_LABEL,
        str(SIGNED_SUBMISSION_FORMAT_VERSION),
        binding.operation,
        binding.gateway_id,
        binding.source_id,
        binding.request_id,
        binding.reference,
        gateway_key_id,
        signer_key_id,
        ciphertext,
    )


@dataclass(frozen=True)
class SourceAnswerSigner:
    """A source partner's token signing key and its registered ``kid``."""

    key: SigningKey
    key_id: str

    def __post_init__(self) -> None:
        if not self.key_id:
            raise ValueError("a signer needs the kid its key is registered under")
        if isinstance(self.key, ec.EllipticCurvePrivateKey) and not isinstance(
            self.key.curve, ec.SECP256R1
        ):
            raise ValueError("EC signing keys are P-256 (ES256)")

    def __repr__(self) -> str:
        return f"SourceAnswerSigner(key_id={self.key_id!r})"

    def sign(self, box: SealedSubmission, binding: SourceAnswerBinding) -> SealedSubmission:
        """``box`` (sealed in version 2) with this signer's signature over it and ``binding``."""
        if box.version != SIGNED_SUBMISSION_FORMAT_VERSION:
            raise ValueError("only a version 2 sealed submission is signed")
        payload = signed_answer_payload(binding, box.gateway_key_id, self.key_id, box.ciphertext)
        if isinstance(self.key, Ed25519PrivateKey):
            signature = self.key.sign(payload)
        else:
            r, s = decode_dss_signature(self.key.sign(payload, ec.ECDSA(hashes.SHA256())))
            # JWS form (RFC 7518 3.4): r || s, each 32 bytes big-endian.
            signature = r.to_bytes(_P256_COORDINATE, "big") + s.to_bytes(_P256_COORDINATE, "big")
        return SealedSubmission(
            version=box.version,
            suite=box.suite,
            gateway_key_id=box.gateway_key_id,
            ciphertext=box.ciphertext,
            signer_key_id=self.key_id,
            signature=signature,
        )


def verify_source_answer(
    box: SealedSubmission, binding: SourceAnswerBinding, algorithm: str, key: VerifyingKey
) -> None:
    """Check the signature of ``box`` for ``binding`` with the registered ``key`` of
    ``algorithm`` ("EdDSA" or "ES256"); raises :class:`SealOpenError` (one message for every
    cause) when it is not a signed box, the key does not fit the algorithm, or it does not
    verify. The caller chose ``key`` by ``box.signer_key_id`` among the partner's keys."""
    if box.version != SIGNED_SUBMISSION_FORMAT_VERSION or not box.signature:
        raise SealOpenError(_REFUSED)
    payload = signed_answer_payload(
        binding, box.gateway_key_id, box.signer_key_id, box.ciphertext
    )
    try:
        if algorithm == "EdDSA" and isinstance(key, Ed25519PublicKey):
            key.verify(box.signature, payload)
            return
        if (
            algorithm == "ES256"
            and isinstance(key, ec.EllipticCurvePublicKey)
            and isinstance(key.curve, ec.SECP256R1)
            and len(box.signature) == 2 * _P256_COORDINATE
        ):
            r = int.from_bytes(box.signature[:_P256_COORDINATE], "big")
            s = int.from_bytes(box.signature[_P256_COORDINATE:], "big")
            key.verify(encode_dss_signature(r, s), payload, ec.ECDSA(hashes.SHA256()))
            return
    except InvalidSignature:
        raise SealOpenError(_REFUSED) from None
    raise SealOpenError(_REFUSED)
