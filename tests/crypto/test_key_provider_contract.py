"""The key-provider contract, run against every provider: files in a key directory, and a
PKCS#11 token (SoftHSM2)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hpke

from gateway.crypto._files import ensure_private_dir
from gateway.crypto.envelope import DataKey, unwrap_data_key, wrap_data_key
from gateway.crypto.errors import EnvelopeError, KeystoreError, NoKeyError, SealOpenError
from gateway.crypto.file_provider import FileKeyProvider
from gateway.crypto.keyids import key_id
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.provider import KeyKind, KeyProvider
from gateway.crypto.public_exports import log_public_keys
from tests.softhsm import SoftHsm, pkcs11_settings

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
INFO = b"ketenpoort/v1 sealed-submission test"


def _empty(request: pytest.FixtureRequest, keys: Path) -> KeyProvider:
    ensure_private_dir(keys)
    if request.param == "file":
        return FileKeyProvider(keys)
    from gateway.crypto.pkcs11_provider import Pkcs11KeyProvider

    hsm: SoftHsm = request.getfixturevalue("softhsm")
    return Pkcs11KeyProvider(pkcs11_settings(hsm), keys)


@pytest.fixture(params=["file", "pkcs11"])
def empty_provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyProvider]:
    provider = _empty(request, tmp_path / "keys")
    yield provider
    provider.close()


@pytest.fixture
def provider(empty_provider: KeyProvider) -> KeyProvider:
    for kind in KeyKind:
        empty_provider.rotate(kind)
    return empty_provider


def _keys_dir(provider: KeyProvider, tmp_path: Path) -> GatewayKeyPaths:
    return GatewayKeyPaths.under(tmp_path / "keys")


def test_an_empty_provider_has_no_keys_and_rotate_makes_the_first(
    empty_provider: KeyProvider,
) -> None:
    with pytest.raises(NoKeyError):
        empty_provider.signing_keys()
    with pytest.raises(NoKeyError):
        empty_provider.hpke_keys()
    with pytest.raises(NoKeyError):
        empty_provider.keks()
    assert empty_provider.list_keys(KeyKind.SIGNING) == []
    first = empty_provider.rotate(KeyKind.SIGNING)
    assert empty_provider.signing_keys().current_id == first


def test_signatures_verify_under_the_published_key(provider: KeyProvider) -> None:
    signer = provider.signing_keys().current
    assert signer.key_id == key_id(signer.public_key())
    signature = signer.sign(b"checkpoint text\n")
    assert len(signature) == 64
    signer.public_key().verify(signature, b"checkpoint text\n")


def test_opens_what_cryptography_sealed(provider: KeyProvider) -> None:
    recipient = provider.hpke_keys().current
    assert recipient.key_id == key_id(recipient.public_key())
    sealed = SUITE.encrypt(b"registration", recipient.public_key(), info=INFO)
    assert recipient.open(sealed, INFO) == b"registration"
    with pytest.raises(SealOpenError):
        recipient.open(sealed, INFO + b"x")
    tampered = bytearray(sealed)
    tampered[-1] ^= 1
    with pytest.raises(SealOpenError):
        recipient.open(bytes(tampered), INFO)
    with pytest.raises(SealOpenError):
        recipient.open(sealed[:40], INFO)


def test_wraps_and_unwraps_data_keys(provider: KeyProvider) -> None:
    kek = provider.keks().current
    material = os.urandom(32)
    blob = kek.wrap(material, b"aad")
    assert len(blob) == 12 + 32 + 16
    assert kek.unwrap(blob, b"aad") == material
    with pytest.raises(EnvelopeError):
        kek.unwrap(blob, b"other aad")
    with pytest.raises(EnvelopeError):
        kek.unwrap(blob[:20], b"aad")


def test_rotation_moves_current_and_old_keys_still_work(provider: KeyProvider) -> None:
    old_signer = provider.signing_keys().current
    old_signature = old_signer.sign(b"before")
    old_recipient = provider.hpke_keys().current
    sealed = SUITE.encrypt(b"sealed before", old_recipient.public_key(), info=INFO)
    old_kek = provider.keks().current
    data_key = DataKey.generate()
    wrapped = wrap_data_key(data_key, old_kek, "case-1")  # type: ignore[arg-type]
    stamps = {kind: provider.stamp(kind) for kind in KeyKind}

    new_ids = {kind: provider.rotate(kind) for kind in KeyKind}

    assert {kind: provider.stamp(kind) for kind in KeyKind} != stamps
    signing, hpke_ring, keks = provider.signing_keys(), provider.hpke_keys(), provider.keks()
    assert signing.current_id == new_ids[KeyKind.SIGNING] != old_signer.key_id
    assert hpke_ring.current_id == new_ids[KeyKind.HPKE] != old_recipient.key_id
    assert keks.current_id == new_ids[KeyKind.KEK] != old_kek.kek_id
    signing.get(old_signer.key_id).public_key().verify(old_signature, b"before")
    assert hpke_ring.get(old_recipient.key_id).open(sealed, INFO) == b"sealed before"

    class Lookup:
        def kek(self, kek_id: str):  # type: ignore[no-untyped-def]
            return keks.get(kek_id)

    assert unwrap_data_key(wrapped, Lookup(), "case-1")._key == data_key._key  # type: ignore[arg-type]
    listed = provider.list_keys(KeyKind.SIGNING)
    assert [i.key_id for i in listed if i.current] == [new_ids[KeyKind.SIGNING]]
    assert {i.key_id for i in listed} == {old_signer.key_id, new_ids[KeyKind.SIGNING]}
    assert all(i.created for i in listed)


@pytest.mark.parametrize("kind", list(KeyKind), ids=[k.value for k in KeyKind])
def test_retire_removes_an_old_key_and_refuses_the_current(
    provider: KeyProvider, kind: KeyKind
) -> None:
    old = next(i.key_id for i in provider.list_keys(kind) if i.current)
    with pytest.raises(KeystoreError, match="current"):
        provider.retire(kind, old)
    new = provider.rotate(kind)
    stamp = provider.stamp(kind)
    provider.retire(kind, old)
    assert provider.stamp(kind) != stamp
    assert [i.key_id for i in provider.list_keys(kind)] == [new]
    ring = {
        KeyKind.SIGNING: provider.signing_keys,
        KeyKind.HPKE: provider.hpke_keys,
        KeyKind.KEK: provider.keks,
    }[kind]()
    assert set(ring.keys) == {new}
    with pytest.raises(KeystoreError):
        ring.get(old)
    with pytest.raises(KeystoreError, match="no .* key"):
        provider.retire(kind, old)


def test_a_retired_signing_key_stays_a_verification_key(
    provider: KeyProvider, tmp_path: Path
) -> None:
    paths = _keys_dir(provider, tmp_path)
    old = provider.signing_keys().current
    signature = old.sign(b"old checkpoint")
    provider.rotate(KeyKind.SIGNING)
    provider.retire(KeyKind.SIGNING, old.key_id)
    assert paths.retired_signing_pub_file(old.key_id).is_file()
    assert not paths.signing_pub_file(old.key_id).exists()
    trusted = log_public_keys(paths)
    assert len(trusted) == 2
    assert key_id(trusted[0]) == provider.signing_keys().current_id
    # The current export leads; the retired key is among the rest.
    [retired] = [k for k in trusted if key_id(k) == old.key_id]
    retired.verify(signature, b"old checkpoint")


def test_public_halves_are_published_in_the_key_directory(
    provider: KeyProvider, tmp_path: Path
) -> None:
    paths = _keys_dir(provider, tmp_path)
    signing, recipient = provider.signing_keys(), provider.hpke_keys()
    assert paths.signing_pub_file(signing.current_id).is_file()
    assert paths.hpke_pub_file(recipient.current_id).is_file()
    assert [key_id(k) for k in log_public_keys(paths)] == [signing.current_id]
    assert paths.hpke_pub.read_bytes() == paths.hpke_pub_file(recipient.current_id).read_bytes()
