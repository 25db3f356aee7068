from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.crypto import (
    SEAL_FORMAT_VERSION,
    SEAL_SUITE_NAME,
    SealBinding,
    SealedBox,
    SealOpenError,
    key_id,
    open_sealed,
    seal,
)

BINDING = SealBinding(disclosure_id="d-0001", recipient_id="politie", purpose="code-rood")
PLAINTEXT = b'{"name": "J. Jansen", "address": "Hoofdstraat 1"}'


@pytest.fixture(scope="module")
def recipient() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.fixture(scope="module")
def box(recipient: X25519PrivateKey) -> SealedBox:
    return seal(PLAINTEXT, recipient.public_key(), BINDING)


def test_round_trip(recipient: X25519PrivateKey, box: SealedBox) -> None:
    assert open_sealed(box, recipient, BINDING) == PLAINTEXT


def test_box_carries_version_suite_and_recipient_key_id(
    recipient: X25519PrivateKey, box: SealedBox
) -> None:
    assert box.version == SEAL_FORMAT_VERSION == 1
    assert box.suite == SEAL_SUITE_NAME
    assert box.recipient_key_id == key_id(recipient.public_key())
    # enc (32) + ciphertext + tag (16): HPKE single-shot output.
    assert len(box.ciphertext) == 32 + len(PLAINTEXT) + 16
    assert PLAINTEXT not in box.ciphertext


def test_each_seal_is_fresh(recipient: X25519PrivateKey) -> None:
    first = seal(PLAINTEXT, recipient.public_key(), BINDING)
    second = seal(PLAINTEXT, recipient.public_key(), BINDING)
    assert first.ciphertext != second.ciphertext


def test_empty_plaintext_round_trips(recipient: X25519PrivateKey) -> None:
    sealed = seal(b"", recipient.public_key(), BINDING)
    assert open_sealed(sealed, recipient, BINDING) == b""


def test_another_partners_key_does_not_open(box: SealedBox) -> None:
    with pytest.raises(SealOpenError):
        open_sealed(box, X25519PrivateKey.generate(), BINDING)


def test_another_key_under_the_right_key_id_does_not_open(
    recipient: X25519PrivateKey, box: SealedBox
) -> None:
    # A box relabelled for the attacker's key id still fails: the key id is also in `info`.
    other = X25519PrivateKey.generate()
    relabelled = dataclasses.replace(box, recipient_key_id=key_id(other.public_key()))
    with pytest.raises(SealOpenError):
        open_sealed(relabelled, other, BINDING)


def test_a_flipped_bit_anywhere_fails(recipient: X25519PrivateKey, box: SealedBox) -> None:
    for position in range(len(box.ciphertext)):
        for bit in (0x01, 0x80):
            tampered = bytearray(box.ciphertext)
            tampered[position] ^= bit
            with pytest.raises(SealOpenError):
                open_sealed(
                    dataclasses.replace(box, ciphertext=bytes(tampered)), recipient, BINDING
                )


@pytest.mark.parametrize("cut", [0, 1, 31, 32, 47, 48])
def test_truncated_ciphertext_fails(recipient: X25519PrivateKey, box: SealedBox, cut: int) -> None:
    with pytest.raises(SealOpenError):
        open_sealed(dataclasses.replace(box, ciphertext=box.ciphertext[:cut]), recipient, BINDING)


def test_appended_bytes_fail(recipient: X25519PrivateKey, box: SealedBox) -> None:
    with pytest.raises(SealOpenError):
        open_sealed(dataclasses.replace(box, ciphertext=box.ciphertext + b"\0"), recipient, BINDING)


@pytest.mark.parametrize(
    "changed",
    [
        dataclasses.replace(BINDING, disclosure_id="d-0002"),
        dataclasses.replace(BINDING, recipient_id="ggz-twente"),
        dataclasses.replace(BINDING, purpose="triage"),
        # Shifting characters between elements must not produce the same context.
        SealBinding(disclosure_id="d-0001p", recipient_id="olitie", purpose="code-rood"),
        SealBinding(disclosure_id="d-0001", recipient_id="politiec", purpose="ode-rood"),
    ],
    ids=["disclosure", "recipient", "purpose", "shift-1", "shift-2"],
)
def test_each_binding_element_is_bound(
    recipient: X25519PrivateKey, box: SealedBox, changed: SealBinding
) -> None:
    with pytest.raises(SealOpenError):
        open_sealed(box, recipient, changed)


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 2},
        {"version": 0},
        {"suite": "DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/AES-256-GCM"},
        {"suite": ""},
        {"recipient_key_id": "k_0000000000000000"},
        {"recipient_key_id": "k_\udcff"},
    ],
)
def test_header_mismatch_fails(
    recipient: X25519PrivateKey, box: SealedBox, changes: dict[str, object]
) -> None:
    with pytest.raises(SealOpenError):
        open_sealed(dataclasses.replace(box, **changes), recipient, BINDING)  # type: ignore[arg-type]


def test_every_failure_reads_the_same(recipient: X25519PrivateKey, box: SealedBox) -> None:
    messages = set()
    for bad_box, key, binding in [
        (box, X25519PrivateKey.generate(), BINDING),
        (box, recipient, dataclasses.replace(BINDING, purpose="triage")),
        (dataclasses.replace(box, version=9), recipient, BINDING),
        (dataclasses.replace(box, ciphertext=box.ciphertext[:-1]), recipient, BINDING),
    ]:
        with pytest.raises(SealOpenError) as caught:
            open_sealed(bad_box, key, binding)
        messages.add(str(caught.value))
        assert caught.value.__cause__ is None
    assert len(messages) == 1


@pytest.mark.parametrize("field", ["disclosure_id", "recipient_id", "purpose"])
def test_binding_elements_must_not_be_empty(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(BINDING, **{field: ""})


_PROPERTY_KEY = X25519PrivateKey.generate()


@settings(max_examples=40, deadline=None)
@given(
    plaintext=st.binary(max_size=2048),
    disclosure=st.text(min_size=1, max_size=30, alphabet=st.characters(codec="utf-8")),
    recipient_id=st.text(min_size=1, max_size=30, alphabet=st.characters(codec="utf-8")),
    purpose=st.text(min_size=1, max_size=30, alphabet=st.characters(codec="utf-8")),
)
def test_round_trip_for_any_plaintext_and_binding(
    plaintext: bytes, disclosure: str, recipient_id: str, purpose: str
) -> None:
    key = _PROPERTY_KEY
    binding = SealBinding(disclosure, recipient_id, purpose)
    assert open_sealed(seal(plaintext, key.public_key(), binding), key, binding) == plaintext


NONCE = bytes(range(16))


def test_a_binding_with_a_nonce_is_version_2_and_opens_only_as_version_2(
    recipient: X25519PrivateKey,
) -> None:
    bound = dataclasses.replace(BINDING, case_id="c_1", request_nonce=NONCE)
    assert BINDING.version == 1 and bound.version == 2
    box = seal(b"record", recipient.public_key(), bound)
    assert box.version == 2
    assert open_sealed(box, recipient, bound) == b"record"
    for other in (
        BINDING,  # no nonce: a version 1 opener
        dataclasses.replace(bound, case_id="c_2"),
        dataclasses.replace(bound, request_nonce=NONCE[::-1]),
    ):
        with pytest.raises(SealOpenError):
            open_sealed(box, recipient, other)
    # ... and a version 1 box does not open for a client that sent a nonce, even relabelled.
    unbound = seal(b"record", recipient.public_key(), BINDING)
    for candidate in (unbound, dataclasses.replace(unbound, version=2)):
        with pytest.raises(SealOpenError):
            open_sealed(candidate, recipient, bound)


@pytest.mark.parametrize(
    ("case_id", "nonce"),
    [("c_1", b""), ("", NONCE), ("c_1", NONCE[:15]), ("c_1", bytes(65))],
    ids=["case-without-nonce", "nonce-without-case", "nonce-too-short", "nonce-too-long"],
)
def test_a_request_binding_needs_both_parts_and_a_nonce_of_16_to_64_bytes(
    case_id: str, nonce: bytes
) -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(BINDING, case_id=case_id, request_nonce=nonce)
