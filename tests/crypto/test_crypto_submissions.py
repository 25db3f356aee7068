"""The sealed-submission format, version 1: what opens, and everything that must not."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.crypto.errors import SealOpenError, UnknownGatewayKey
from gateway.crypto.keyids import key_id
from gateway.crypto.local_keys import LocalHpkeRecipient
from gateway.crypto.provider import HpkeRecipient, KeyRing
from gateway.crypto.sealing import (
    SEAL_SUITE_NAME,
    SealBinding,
    TriageBinding,
    open_sealed,
    open_sealed_triage,
    seal,
    seal_triage,
)
from gateway.crypto.submissions import (
    MAX_REQUEST_ID_CHARS,
    SUBMISSION_FORMAT_VERSION,
    SUBMISSION_SUITE_NAME,
    GatewayPublicKey,
    SealedSubmission,
    SubmissionBinding,
    open_submission,
    seal_submission,
    submission_info,
)

BINDING = SubmissionBinding("ExchangeService/RegisterCase", "police", "r_0001")
PLAINTEXT = b"\x0a\x0f\x0a\x09111222333\x12\x02JV"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def ring_of(*keys: X25519PrivateKey, current: int = 0) -> KeyRing[HpkeRecipient]:
    recipients = [LocalHpkeRecipient(k) for k in keys]
    return KeyRing(recipients[current].key_id, {r.key_id: r for r in recipients})


def public(key: X25519PrivateKey) -> GatewayPublicKey:
    return GatewayPublicKey(key_id(key.public_key()), key.public_key())


@pytest.fixture(scope="module")
def gateway_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.fixture(scope="module")
def box(gateway_key: X25519PrivateKey) -> SealedSubmission:
    return seal_submission(PLAINTEXT, public(gateway_key), BINDING)


def test_round_trip_and_what_the_box_says(
    gateway_key: X25519PrivateKey, box: SealedSubmission
) -> None:
    assert open_submission(box, ring_of(gateway_key), BINDING) == PLAINTEXT
    assert box.version == SUBMISSION_FORMAT_VERSION == 1
    assert box.suite == SUBMISSION_SUITE_NAME == SEAL_SUITE_NAME
    assert box.gateway_key_id == key_id(gateway_key.public_key())
    assert len(box.ciphertext) == 32 + len(PLAINTEXT) + 16
    assert PLAINTEXT not in box.ciphertext


def test_info_is_the_documented_encoding() -> None:
    def part(text: str) -> bytes:
        return len(text.encode()).to_bytes(4, "big") + text.encode()

    expected = (
        b"ketenpoort/v1 sealed-submission"
        + part("1")
        + part("ExchangeService/RegisterCase")
        + part("police")
        + part("k_0123456789abcdef")
        + part("r_0001")
    )
    assert submission_info(BINDING, "k_0123456789abcdef", 1) == expected


def test_an_independent_hpke_open_with_the_documented_info_works(
    gateway_key: X25519PrivateKey, box: SealedSubmission
) -> None:
    info = submission_info(BINDING, box.gateway_key_id, 1)
    assert SUITE.decrypt(box.ciphertext, gateway_key, info=info) == PLAINTEXT


@pytest.mark.parametrize(
    "other",
    [
        dataclasses.replace(BINDING, operation="ExchangeService/AddToCaseFile"),
        dataclasses.replace(BINDING, operation="SourceService/FetchFields"),
        dataclasses.replace(BINDING, sender_id="ggz"),
        dataclasses.replace(BINDING, request_id="r_0002"),
    ],
    ids=["other-operation", "source-operation", "other-sender", "other-request"],
)
def test_another_binding_does_not_open(
    gateway_key: X25519PrivateKey, box: SealedSubmission, other: SubmissionBinding
) -> None:
    with pytest.raises(SealOpenError):
        open_submission(box, ring_of(gateway_key), other)


@pytest.mark.parametrize(
    "label",
    [
        b"ketenpoort/v1 sealed-record",
        b"ketenpoort/v1 sealed-triage",
        b"ketenpoort/v2 sealed-submission",
        b"",
    ],
)
def test_a_box_under_another_label_does_not_open(
    gateway_key: X25519PrivateKey, label: bytes
) -> None:
    right = submission_info(BINDING, key_id(gateway_key.public_key()), 1)
    info = label + right[len(b"ketenpoort/v1 sealed-submission"):]
    forged = SealedSubmission(
        1, SUBMISSION_SUITE_NAME, key_id(gateway_key.public_key()),
        SUITE.encrypt(PLAINTEXT, gateway_key.public_key(), info=info),
    )
    with pytest.raises(SealOpenError):
        open_submission(forged, ring_of(gateway_key), BINDING)


def test_a_box_claiming_another_version_or_suite_does_not_open(
    gateway_key: X25519PrivateKey, box: SealedSubmission
) -> None:
    ring = ring_of(gateway_key)
    for changed in (
        dataclasses.replace(box, version=2),
        dataclasses.replace(box, version=0),
        dataclasses.replace(box, suite="DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/AES-256-GCM"),
    ):
        with pytest.raises(SealOpenError):
            open_submission(changed, ring, BINDING)
    # Sealed with version 2 in info but labelled version 1: the version is bound, not just said.
    info = submission_info(BINDING, box.gateway_key_id, 2)
    v2 = dataclasses.replace(
        box, ciphertext=SUITE.encrypt(PLAINTEXT, gateway_key.public_key(), info=info)
    )
    with pytest.raises(SealOpenError):
        open_submission(v2, ring, BINDING)


@pytest.mark.parametrize("position", [0, 31, 32, -1])
def test_altered_or_truncated_ciphertext_does_not_open(
    gateway_key: X25519PrivateKey, box: SealedSubmission, position: int
) -> None:
    data = bytearray(box.ciphertext)
    data[position] ^= 0x01
    with pytest.raises(SealOpenError):
        open_submission(dataclasses.replace(box, ciphertext=bytes(data)), ring_of(gateway_key),
                        BINDING)
    with pytest.raises(SealOpenError):
        open_submission(dataclasses.replace(box, ciphertext=box.ciphertext[:47]),
                        ring_of(gateway_key), BINDING)


def test_every_failure_has_the_same_message(
    gateway_key: X25519PrivateKey, box: SealedSubmission
) -> None:
    messages = set()
    for changed, binding in (
        (box, dataclasses.replace(BINDING, sender_id="ggz")),
        (dataclasses.replace(box, version=2), BINDING),
        (dataclasses.replace(box, ciphertext=box.ciphertext[:10]), BINDING),
    ):
        with pytest.raises(SealOpenError) as err:
            open_submission(changed, ring_of(gateway_key), binding)
        messages.add(str(err.value))
    assert len(messages) == 1


def test_the_ring_opens_with_the_named_key_current_or_not(gateway_key: X25519PrivateKey) -> None:
    new = X25519PrivateKey.generate()
    ring = ring_of(gateway_key, new, current=1)
    old_box = seal_submission(PLAINTEXT, public(gateway_key), BINDING)
    new_box = seal_submission(PLAINTEXT, public(new), BINDING)
    assert open_submission(old_box, ring, BINDING) == PLAINTEXT
    assert open_submission(new_box, ring, BINDING) == PLAINTEXT
    # Naming the other key of the ring: that key is bound into info and cannot open it.
    with pytest.raises(SealOpenError):
        open_submission(dataclasses.replace(old_box, gateway_key_id=ring.current_id), ring,
                        BINDING)


def test_a_key_not_in_the_ring_is_told_apart(gateway_key: X25519PrivateKey) -> None:
    retired = X25519PrivateKey.generate()
    box = seal_submission(PLAINTEXT, public(retired), BINDING)
    with pytest.raises(UnknownGatewayKey) as err:
        open_submission(box, ring_of(gateway_key), BINDING)
    assert box.gateway_key_id not in str(err.value)
    assert not isinstance(err.value, SealOpenError)


def test_a_sealed_answer_does_not_open_as_a_submission_nor_the_reverse(
    gateway_key: X25519PrivateKey,
) -> None:
    # The same strings in each kind's binding: only the labels differ.
    answer = seal(PLAINTEXT, gateway_key.public_key(),
                  SealBinding("ExchangeService/RegisterCase", "police", "r_0001"))
    as_submission = SealedSubmission(
        answer.version, answer.suite, answer.recipient_key_id, answer.ciphertext
    )
    with pytest.raises(SealOpenError):
        open_submission(as_submission, ring_of(gateway_key), BINDING)
    submission = seal_submission(PLAINTEXT, public(gateway_key), BINDING)
    with pytest.raises(SealOpenError):
        open_sealed(
            dataclasses.replace(answer, ciphertext=submission.ciphertext),
            gateway_key,
            SealBinding("ExchangeService/RegisterCase", "police", "r_0001"),
        )


def test_binding_values_are_required_and_request_ids_bounded() -> None:
    for bad in (
        dict(operation=""),
        dict(sender_id=""),
        dict(request_id=""),
        dict(request_id="r" * (MAX_REQUEST_ID_CHARS + 1)),
    ):
        with pytest.raises(ValueError):
            dataclasses.replace(BINDING, **bad)


def test_triage_answers_open_only_as_triage_answers(gateway_key: X25519PrivateKey) -> None:
    binding = TriageBinding("t_1", "zvh", "triage")
    box = seal_triage(PLAINTEXT, gateway_key.public_key(), binding)
    assert open_sealed_triage(box, gateway_key, binding) == PLAINTEXT
    for other in (
        TriageBinding("t_2", "zvh", "triage"),
        TriageBinding("t_1", "ggz", "triage"),
        TriageBinding("t_1", "zvh", "analysis_and_plan"),
    ):
        with pytest.raises(SealOpenError):
            open_sealed_triage(box, gateway_key, other)
    # The same three strings as a disclosure binding: the label keeps the kinds apart.
    with pytest.raises(SealOpenError):
        open_sealed(box, gateway_key, SealBinding("t_1", "zvh", "triage"))
    record = seal(PLAINTEXT, gateway_key.public_key(), SealBinding("t_1", "zvh", "triage"))
    with pytest.raises(SealOpenError):
        open_sealed_triage(record, gateway_key, binding)
