from __future__ import annotations

import dataclasses
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.crypto import (
    DataKey,
    DevKeyPaths,
    EnvelopeError,
    KeyEncryptionKey,
    Keystore,
    WrappedKey,
    field_aad,
    rotate_kek,
    unwrap_data_key,
    wrap_data_key,
)

AAD = field_aad("case-1", "entry-1", "address")


@pytest.fixture(scope="module")
def data_key() -> DataKey:
    return DataKey.generate()


def test_round_trip(data_key: DataKey) -> None:
    token = data_key.encrypt(b"Hoofdstraat 1, Enschede", AAD)
    assert token[0] == 1
    assert len(token) == 1 + 12 + len(b"Hoofdstraat 1, Enschede") + 16
    assert data_key.decrypt(token, AAD) == b"Hoofdstraat 1, Enschede"


def test_each_encryption_uses_a_fresh_nonce(data_key: DataKey) -> None:
    assert data_key.encrypt(b"x", AAD) != data_key.encrypt(b"x", AAD)


def test_token_matches_the_documented_layout() -> None:
    # Built with the AES-GCM primitive directly: version byte, nonce, ct; the version
    # byte is part of the associated data.
    raw_key, nonce = bytes(range(32)), bytes(range(12))
    token = b"\x01" + nonce + AESGCM(raw_key).encrypt(nonce, b"value", b"\x01" + AAD)
    assert DataKey(raw_key).decrypt(token, AAD) == b"value"


@pytest.mark.parametrize(
    "other_aad",
    [
        field_aad("case-2", "entry-1", "address"),
        field_aad("case-1", "entry-2", "address"),
        field_aad("case-1", "entry-1", "name"),
        field_aad("case-1e", "ntry-1", "address"),
        b"",
    ],
)
def test_wrong_aad_fails(data_key: DataKey, other_aad: bytes) -> None:
    token = data_key.encrypt(b"secret", AAD)
    with pytest.raises(EnvelopeError):
        data_key.decrypt(token, other_aad)


def test_wrong_key_fails(data_key: DataKey) -> None:
    with pytest.raises(EnvelopeError):
        DataKey.generate().decrypt(data_key.encrypt(b"secret", AAD), AAD)


def test_any_flipped_byte_fails(data_key: DataKey) -> None:
    token = data_key.encrypt(b"secret value", AAD)
    for position in range(len(token)):
        tampered = bytearray(token)
        tampered[position] ^= 0x01
        with pytest.raises(EnvelopeError):
            data_key.decrypt(bytes(tampered), AAD)


@pytest.mark.parametrize("length", [0, 1, 13, 28])
def test_truncated_token_fails(data_key: DataKey, length: int) -> None:
    with pytest.raises(EnvelopeError):
        data_key.decrypt(data_key.encrypt(b"", AAD)[:length], AAD)


def test_field_aad_is_unambiguous() -> None:
    assert field_aad("ab", "c", "d") != field_aad("a", "bc", "d")
    assert field_aad("a", "b", "c") == (
        b"ketenpoort/v1 case-field"
        + b"\x00\x00\x00\x01a"
        + b"\x00\x00\x00\x01b"
        + b"\x00\x00\x00\x01c"
    )


def test_data_key_needs_32_bytes_and_never_shows_them() -> None:
    with pytest.raises(ValueError):
        DataKey(b"\0" * 16)
    key = DataKey(b"\xab" * 32)
    assert repr(key) == "DataKey(<secret>)"
    assert DataKey.generate(lambda n: b"\x07" * n).encrypt(b"x", AAD)[0] == 1


def test_generate_uses_the_given_randomness() -> None:
    fixed = DataKey.generate(lambda n: bytes(range(n)))
    nonce = os.urandom(12)
    token = b"\x01" + nonce + AESGCM(bytes(range(32))).encrypt(nonce, b"v", b"\x01" + AAD)
    assert fixed.decrypt(token, AAD) == b"v"


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=4096), aad=st.binary(max_size=64))
def test_round_trip_for_any_value(plaintext: bytes, aad: bytes) -> None:
    key = DataKey(b"\x11" * 32)
    assert key.decrypt(key.encrypt(plaintext, aad), aad) == plaintext


# Wrapping


def test_wrap_unwrap_round_trip(dev_keys: DevKeyPaths, data_key: DataKey) -> None:
    keystore = Keystore.open(dev_keys.root)
    wrapped = wrap_data_key(data_key, keystore.current_kek, "case-1")
    assert wrapped.version == 1
    assert wrapped.kek_id == keystore.current_kek.kek_id
    unwrapped = unwrap_data_key(wrapped, keystore, "case-1")
    assert unwrapped.decrypt(data_key.encrypt(b"v", AAD), AAD) == b"v"


def test_unwrap_for_another_case_fails(dev_keys: DevKeyPaths, data_key: DataKey) -> None:
    keystore = Keystore.open(dev_keys.root)
    wrapped = wrap_data_key(data_key, keystore.current_kek, "case-1")
    with pytest.raises(EnvelopeError):
        unwrap_data_key(wrapped, keystore, "case-2")


def test_unwrap_with_unknown_kek_fails(dev_keys: DevKeyPaths, data_key: DataKey) -> None:
    keystore = Keystore.open(dev_keys.root)
    wrapped = wrap_data_key(data_key, keystore.current_kek, "case-1")
    with pytest.raises(EnvelopeError, match="kek_0000000000000000"):
        unwrap_data_key(
            dataclasses.replace(wrapped, kek_id="kek_0000000000000000"), keystore, "case-1"
        )


def test_unwrap_with_another_kek_under_the_same_id_fails(data_key: DataKey) -> None:
    class OneKek:
        def __init__(self, kek: KeyEncryptionKey) -> None:
            self._kek = kek

        def kek(self, kek_id: str) -> KeyEncryptionKey:
            return self._kek

    kek_id = "kek_0123456789abcdef"
    wrapped = wrap_data_key(data_key, KeyEncryptionKey(kek_id, os.urandom(32)), "case-1")
    impostor = OneKek(KeyEncryptionKey(kek_id, os.urandom(32)))
    with pytest.raises(EnvelopeError):
        unwrap_data_key(wrapped, impostor, "case-1")


def test_tampered_or_unknown_version_wrap_fails(dev_keys: DevKeyPaths, data_key: DataKey) -> None:
    keystore = Keystore.open(dev_keys.root)
    wrapped = wrap_data_key(data_key, keystore.current_kek, "case-1")
    with pytest.raises(EnvelopeError):
        unwrap_data_key(dataclasses.replace(wrapped, version=2), keystore, "case-1")
    for position in range(len(wrapped.blob)):
        blob = bytearray(wrapped.blob)
        blob[position] ^= 0x40
        with pytest.raises(EnvelopeError):
            unwrap_data_key(dataclasses.replace(wrapped, blob=bytes(blob)), keystore, "case-1")
    with pytest.raises(EnvelopeError):
        unwrap_data_key(dataclasses.replace(wrapped, blob=wrapped.blob[:20]), keystore, "case-1")


def test_old_kek_still_unwraps_after_rotation(fresh_keys: DevKeyPaths, data_key: DataKey) -> None:
    before = Keystore.open(fresh_keys.root)
    old_wrap = wrap_data_key(data_key, before.current_kek, "case-9")

    new_id = rotate_kek(fresh_keys.root)
    after = Keystore.open(fresh_keys.root)
    assert after.current_kek.kek_id == new_id != before.current_kek.kek_id
    assert set(after.kek_ids) == {new_id, before.current_kek.kek_id}

    old = unwrap_data_key(old_wrap, after, "case-9")
    new_wrap = wrap_data_key(old, after.current_kek, "case-9")
    assert new_wrap.kek_id == new_id
    token = data_key.encrypt(b"kept", AAD)
    assert unwrap_data_key(new_wrap, after, "case-9").decrypt(token, AAD) == b"kept"


def test_wrapped_key_serialises_to_one_column(dev_keys: DevKeyPaths, data_key: DataKey) -> None:
    keystore = Keystore.open(dev_keys.root)
    wrapped = wrap_data_key(data_key, keystore.current_kek, "case-1")
    stored = wrapped.to_bytes()
    kek_id = wrapped.kek_id.encode()
    assert stored == bytes([1, len(kek_id)]) + kek_id + wrapped.blob
    assert WrappedKey.from_bytes(stored) == wrapped
    assert WrappedKey.from_bytes(memoryview(stored).tobytes()) == wrapped


@pytest.mark.parametrize("stored", [b"", b"\x01", b"\x01\x10kek_", b"\x01\x02\xff\xfe"])
def test_malformed_stored_wrapped_key_fails(stored: bytes) -> None:
    with pytest.raises(EnvelopeError):
        WrappedKey.from_bytes(stored)


def test_crypto_shredding_leaves_ciphertext_unreadable() -> None:
    # Without the data key a token does not open under any other key the gateway holds.
    key = DataKey.generate()
    token = key.encrypt(b"gone", AAD)
    del key
    for _ in range(3):
        with pytest.raises(EnvelopeError):
            DataKey.generate().decrypt(token, AAD)
