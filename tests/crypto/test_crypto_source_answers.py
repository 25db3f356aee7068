"""Signed source answers (sealed submissions version 2): the signed statement byte for byte,
Ed25519 and ES256 signatures, and the gateway's origin check against registered keys."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.broker.source_origin import AnswerOrigins, OriginRefused
from gateway.crypto.errors import SealOpenError
from gateway.crypto.keyids import key_id
from gateway.crypto.memory_provider import MemoryKeyProvider
from gateway.crypto.source_answers import (
    SourceAnswerBinding,
    SourceAnswerSigner,
    VerifyingKey,
    signed_answer_payload,
    verify_source_answer,
)
from gateway.crypto.submissions import (
    GatewayPublicKey,
    SealedSubmission,
    SubmissionBinding,
    open_submission,
    seal_submission,
)

BINDING = SourceAnswerBinding(
    operation="SourceService/LookupSubject",
    gateway_id="ketenpoort",
    source_id="police",
    request_id="l_" + "ab" * 16,
    reference="t_" + "cd" * 16,
)
GATEWAY_KEY = X25519PrivateKey.generate()
GATEWAY_PUBLIC = GatewayPublicKey(key_id(GATEWAY_KEY.public_key()), GATEWAY_KEY.public_key())


def _box(version: int = 2) -> SealedSubmission:
    return seal_submission(
        b"\x08\x01", GATEWAY_PUBLIC, SubmissionBinding(BINDING.operation, "police",
                                                       BINDING.request_id),
        version=version,
    )


def test_the_signed_statement_is_the_documented_byte_string() -> None:
    parts = [b"2", BINDING.operation.encode(), b"ketenpoort", b"police",
             BINDING.request_id.encode(), BINDING.reference.encode(), b"k_gw", b"k_signer",
             b"\x00\xffciphertext"]
    expected = b"ketenpoort/v2 signed-source-answer" + b"".join(
        len(p).to_bytes(4, "big") + p for p in parts
    )
    assert signed_answer_payload(BINDING, "k_gw", "k_signer", b"\x00\xffciphertext") == expected


@pytest.mark.parametrize("algorithm", ["EdDSA", "ES256"])
def test_a_signature_verifies_only_for_its_request_box_and_key(algorithm: str) -> None:
    private = (
        Ed25519PrivateKey.generate() if algorithm == "EdDSA" else ec.generate_private_key(
            ec.SECP256R1()
        )
    )
    public: VerifyingKey = private.public_key()
    signed = SourceAnswerSigner(private, "k_police").sign(_box(), BINDING)
    assert signed.signer_key_id == "k_police"
    assert len(signed.signature) == 64
    verify_source_answer(signed, BINDING, algorithm, public)

    for name in ("operation", "gateway_id", "source_id", "request_id", "reference"):
        moved = dataclasses.replace(BINDING, **{name: getattr(BINDING, name) + "x"})
        with pytest.raises(SealOpenError):
            verify_source_answer(signed, moved, algorithm, public)
    altered = bytearray(signed.ciphertext)
    altered[40] ^= 1
    # A flipped bit, never a set byte: the last byte may already be the one written.
    forged = signed.signature[:-1] + bytes([signed.signature[-1] ^ 1])
    for box in (
        dataclasses.replace(signed, ciphertext=bytes(altered)),
        dataclasses.replace(signed, gateway_key_id="k_other"),
        dataclasses.replace(signed, signer_key_id="k_other"),
        dataclasses.replace(signed, signature=forged),
        dataclasses.replace(signed, signature=b""),
    ):
        with pytest.raises(SealOpenError):
            verify_source_answer(box, BINDING, algorithm, public)
    other = "ES256" if algorithm == "EdDSA" else "EdDSA"
    with pytest.raises(SealOpenError):
        verify_source_answer(signed, BINDING, other, public)


def test_only_a_version_2_box_is_signed_and_versions_do_not_open_as_each_other() -> None:
    signer = SourceAnswerSigner(Ed25519PrivateKey.generate(), "k_police")
    with pytest.raises(ValueError):
        signer.sign(_box(version=1), BINDING)
    ring = MemoryKeyProvider(hpke_keys=[GATEWAY_KEY]).hpke_keys()
    submission = SubmissionBinding(BINDING.operation, "police", BINDING.request_id)
    assert open_submission(_box(2), ring, submission, version=2) == b"\x08\x01"
    with pytest.raises(SealOpenError):
        open_submission(_box(2), ring, submission)
    with pytest.raises(SealOpenError):
        open_submission(dataclasses.replace(_box(1), version=2), ring, submission, version=2)


@dataclass(frozen=True)
class _Partner:
    token_keys: Mapping[str, tuple[str, VerifyingKey]]
    algorithms: frozenset[str] = frozenset({"EdDSA", "ES256"})
    active: bool = True


@dataclass
class _Registry:
    partners: dict[str, _Partner] = field(default_factory=dict)


def _origins(registry: _Registry, unsigned: frozenset[str] = frozenset()) -> AnswerOrigins:
    return AnswerOrigins(lambda: registry.partners, "ketenpoort", unsigned)


def test_the_origin_check_accepts_only_the_partners_registered_active_keys() -> None:
    police, ggz = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    registry = _Registry({
        "police": _Partner({"k_police": ("EdDSA", police.public_key())}),
        "ggz": _Partner({"k_ggz": ("EdDSA", ggz.public_key())}),
    })
    origins = _origins(registry)
    assert origins.check(SourceAnswerSigner(police, "k_police").sign(_box(), BINDING), BINDING) == 2

    refused = [
        SourceAnswerSigner(ggz, "k_ggz").sign(_box(), BINDING),  # another partner's key
        SourceAnswerSigner(ggz, "k_police").sign(_box(), BINDING),  # ... under the police's kid
        _box(1),  # sealed, unsigned
        None,  # in clear
    ]
    for box in refused:
        with pytest.raises(OriginRefused):
            origins.check(box, BINDING)
    # Where unsigned answers are allowed, a signed one is still checked.
    lenient = _origins(registry, frozenset({"police"}))
    assert lenient.check(_box(1), BINDING) == 1 and lenient.check(None, BINDING) == 1
    with pytest.raises(OriginRefused):
        lenient.check(refused[0], BINDING)

    registry.partners["police"] = _Partner({}, active=True)  # the key revoked
    with pytest.raises(OriginRefused):
        origins.check(SourceAnswerSigner(police, "k_police").sign(_box(), BINDING), BINDING)
    registry.partners["police"] = _Partner(
        {"k_police": ("EdDSA", police.public_key())}, algorithms=frozenset({"ES256"})
    )
    with pytest.raises(OriginRefused):
        origins.check(SourceAnswerSigner(police, "k_police").sign(_box(), BINDING), BINDING)
    registry.partners["police"] = _Partner(
        {"k_police": ("EdDSA", police.public_key())}, active=False
    )
    with pytest.raises(OriginRefused):
        origins.check(SourceAnswerSigner(police, "k_police").sign(_box(), BINDING), BINDING)
