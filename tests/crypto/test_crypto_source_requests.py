"""The sealed source-request format, version 1: what opens, and everything that must not."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from gateway.crypto.errors import SealOpenError, UnknownRecipientKey
from gateway.crypto.hpke_base import open_base
from gateway.crypto.keyids import key_id
from gateway.crypto.local_keys import LocalHpkeRecipient
from gateway.crypto.provider import HpkeRecipient, KeyRing
from gateway.crypto.sealing import SEAL_SUITE_NAME, SealBinding, SealedBox, open_sealed, seal
from gateway.crypto.source_requests import (
    SOURCE_REQUEST_FORMAT_VERSION,
    SOURCE_REQUEST_SUITE_NAME,
    SourceRequestBinding,
    open_source_request,
    seal_source_request,
    source_request_info,
)
from gateway.crypto.submissions import (
    MAX_REQUEST_ID_CHARS,
    GatewayPublicKey,
    SealedSubmission,
    SubmissionBinding,
    open_submission,
    seal_submission,
)

BINDING = SourceRequestBinding(
    "SourceService/FetchFields", "ketenpoort", "police", "f_0001", "d_0001"
)
# A FetchFieldsQuery as the gateway serialises it: a BSN and a name among other things.
PLAINTEXT = b"\x0a\x15\x0a\x09111222333\x12\x08Jan Smit\x12\x10police.incidents"
SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def ring_of(key: X25519PrivateKey) -> KeyRing[HpkeRecipient]:
    recipient = LocalHpkeRecipient(key)
    return KeyRing(recipient.key_id, {recipient.key_id: recipient})


def keys_of(*keys: X25519PrivateKey) -> dict[str, X25519PrivateKey]:
    return {key_id(k.public_key()): k for k in keys}


@pytest.fixture(scope="module")
def partner_key() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.fixture(scope="module")
def box(partner_key: X25519PrivateKey) -> SealedBox:
    return seal_source_request(PLAINTEXT, partner_key.public_key(), BINDING)


def test_round_trip_and_what_the_box_says(partner_key: X25519PrivateKey, box: SealedBox) -> None:
    assert open_source_request(box, keys_of(partner_key), BINDING) == PLAINTEXT
    assert box.version == SOURCE_REQUEST_FORMAT_VERSION == 1
    assert box.suite == SOURCE_REQUEST_SUITE_NAME == SEAL_SUITE_NAME
    assert box.recipient_key_id == key_id(partner_key.public_key())
    assert len(box.ciphertext) == 32 + len(PLAINTEXT) + 16
    assert b"111222333" not in box.ciphertext and b"Jan Smit" not in box.ciphertext


def test_info_is_the_documented_encoding() -> None:
    def part(text: str) -> bytes:
        return len(text.encode()).to_bytes(4, "big") + text.encode()

    expected = (
        b"ketenpoort/v1 sealed-source-request"
        + part("1")
        + part("SourceService/FetchFields")
        + part("ketenpoort")
        + part("police")
        + part("k_0123456789abcdef")
        + part("f_0001")
        + part("d_0001")
    )
    assert source_request_info(BINDING, "k_0123456789abcdef", 1) == expected


def test_an_independent_hpke_open_with_the_documented_info_works(
    partner_key: X25519PrivateKey, box: SealedBox
) -> None:
    info = source_request_info(BINDING, box.recipient_key_id, 1)
    assert SUITE.decrypt(box.ciphertext, partner_key, info=info) == PLAINTEXT
    # And with the gateway's own RFC 9180 key schedule, which shares no code with the above.
    public = partner_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )

    def dh(enc: bytes) -> bytes:
        return partner_key.exchange(X25519PublicKey.from_public_bytes(enc))

    assert open_base(dh, public, box.ciphertext, info) == PLAINTEXT


@pytest.mark.parametrize(
    "other",
    [
        dataclasses.replace(BINDING, request_id="f_0002"),
        dataclasses.replace(BINDING, operation="SourceService/LookupSubject"),
        dataclasses.replace(BINDING, source_id="ggz"),
        dataclasses.replace(BINDING, gateway_id="another-zvh"),
        dataclasses.replace(BINDING, reference="d_0002"),
    ],
    ids=["other-request", "other-operation", "other-partner", "other-gateway", "other-disclosure"],
)
def test_a_moved_box_does_not_open(
    partner_key: X25519PrivateKey, box: SealedBox, other: SourceRequestBinding
) -> None:
    with pytest.raises(SealOpenError):
        open_source_request(box, keys_of(partner_key), other)


def test_a_box_for_another_partner_does_not_open_with_its_key(box: SealedBox) -> None:
    # Another partner's source, handed the box and claiming to be the first partner: its key
    # is not the one named, and naming its own key binds another key id into info.
    other = X25519PrivateKey.generate()
    with pytest.raises(UnknownRecipientKey):
        open_source_request(box, keys_of(other), BINDING)
    renamed = dataclasses.replace(box, recipient_key_id=key_id(other.public_key()))
    with pytest.raises(SealOpenError):
        open_source_request(renamed, keys_of(other), BINDING)


@pytest.mark.parametrize("position", [0, 31, 32, -1])
def test_altered_or_truncated_ciphertext_does_not_open(
    partner_key: X25519PrivateKey, box: SealedBox, position: int
) -> None:
    data = bytearray(box.ciphertext)
    data[position] ^= 0x01
    with pytest.raises(SealOpenError):
        open_source_request(
            dataclasses.replace(box, ciphertext=bytes(data)), keys_of(partner_key), BINDING
        )
    with pytest.raises(SealOpenError):
        open_source_request(
            dataclasses.replace(box, ciphertext=box.ciphertext[:47]), keys_of(partner_key), BINDING
        )


def test_a_box_claiming_another_version_or_suite_does_not_open(
    partner_key: X25519PrivateKey, box: SealedBox
) -> None:
    keys = keys_of(partner_key)
    for changed in (
        dataclasses.replace(box, version=2),
        dataclasses.replace(box, version=0),
        dataclasses.replace(box, suite="DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/AES-256-GCM"),
    ):
        with pytest.raises(SealOpenError):
            open_source_request(changed, keys, BINDING)
    # Sealed with version 2 inside info but labelled 1: the version is bound, not just said.
    info = source_request_info(BINDING, box.recipient_key_id, 2)
    v2 = dataclasses.replace(
        box, ciphertext=SUITE.encrypt(PLAINTEXT, partner_key.public_key(), info=info)
    )
    with pytest.raises(SealOpenError):
        open_source_request(v2, keys, BINDING)


def test_an_unknown_key_id_is_told_apart_and_not_echoed(partner_key: X25519PrivateKey) -> None:
    box = seal_source_request(PLAINTEXT, X25519PrivateKey.generate().public_key(), BINDING)
    with pytest.raises(UnknownRecipientKey) as err:
        open_source_request(box, keys_of(partner_key), BINDING)
    assert box.recipient_key_id not in str(err.value)
    assert not isinstance(err.value, SealOpenError)


def test_every_failure_has_the_same_message(partner_key: X25519PrivateKey, box: SealedBox) -> None:
    messages = set()
    for changed, binding in (
        (box, dataclasses.replace(BINDING, source_id="ggz")),
        (dataclasses.replace(box, version=2), BINDING),
        (dataclasses.replace(box, ciphertext=box.ciphertext[:10]), BINDING),
    ):
        with pytest.raises(SealOpenError) as err:
            open_source_request(changed, keys_of(partner_key), binding)
        messages.add(str(err.value))
    assert len(messages) == 1


def test_old_and_new_keys_each_open_what_was_sealed_to_them(
    partner_key: X25519PrivateKey,
) -> None:
    new = X25519PrivateKey.generate()
    keys = keys_of(partner_key, new)
    old_box = seal_source_request(PLAINTEXT, partner_key.public_key(), BINDING)
    new_box = seal_source_request(PLAINTEXT, new.public_key(), BINDING)
    assert open_source_request(old_box, keys, BINDING) == PLAINTEXT
    assert open_source_request(new_box, keys, BINDING) == PLAINTEXT
    with pytest.raises(SealOpenError):
        open_source_request(
            dataclasses.replace(old_box, recipient_key_id=new_box.recipient_key_id), keys, BINDING
        )


def test_no_other_sealed_kind_opens_as_a_source_request_nor_the_reverse(
    partner_key: X25519PrivateKey,
) -> None:
    # The same strings in each kind's binding: only the labels keep them apart.
    answer = seal(PLAINTEXT, partner_key.public_key(), SealBinding("d_0001", "police", "x"))
    with pytest.raises(SealOpenError):
        open_source_request(answer, keys_of(partner_key), BINDING)
    submission_binding = SubmissionBinding("SourceService/FetchFields", "police", "f_0001")
    submission = seal_submission(
        PLAINTEXT, GatewayPublicKey(key_id(partner_key.public_key()), partner_key.public_key()),
        submission_binding,
    )
    as_request = SealedBox(
        submission.version, submission.suite, submission.gateway_key_id, submission.ciphertext
    )
    with pytest.raises(SealOpenError):
        open_source_request(as_request, keys_of(partner_key), BINDING)
    request = seal_source_request(PLAINTEXT, partner_key.public_key(), BINDING)
    with pytest.raises(SealOpenError):
        open_sealed(request, partner_key, SealBinding("d_0001", "police", "x"))
    with pytest.raises(SealOpenError):
        open_submission(
            SealedSubmission(1, request.suite, request.recipient_key_id, request.ciphertext),
            ring_of(partner_key),
            submission_binding,
        )


def test_binding_values_are_required_and_request_ids_bounded() -> None:
    for bad in (
        dict(operation=""),
        dict(gateway_id=""),
        dict(source_id=""),
        dict(request_id=""),
        dict(reference=""),
        dict(request_id="f" * (MAX_REQUEST_ID_CHARS + 1)),
    ):
        with pytest.raises(ValueError):
            dataclasses.replace(BINDING, **bad)
