"""Key rings in the key directory: permissions, the earlier single-file layout, and a keystore
that follows a rotation made by another process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.crypto import DevKeyPaths, Keystore
from gateway.crypto._files import write_private_file, write_public_file
from gateway.crypto._pem import private_pem, public_pem
from gateway.crypto.errors import KeystoreError
from gateway.crypto.file_provider import FileKeyProvider
from gateway.crypto.keyids import key_id
from gateway.crypto.provider import KeyKind


def _current_signing_file(keys: DevKeyPaths) -> Path:
    gw = keys.gateway
    return gw.signing_file(gw.signing_current.read_text().strip())


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_refuses_a_ring_key_others_can_read(fresh_keys: DevKeyPaths, mode: int) -> None:
    path = _current_signing_file(fresh_keys)
    os.chmod(path, mode)
    with pytest.raises(KeystoreError, match=f"{path.name}.*{mode:04o}"):
        FileKeyProvider(fresh_keys.root).signing_keys()
    with pytest.raises(KeystoreError):
        Keystore.open(fresh_keys.root)


@pytest.mark.parametrize("which", ["gateway", "signing", "hpke", "kek"])
@pytest.mark.parametrize("mode", [0o777, 0o770, 0o705, 0o701])
def test_refuses_a_key_directory_others_can_write_or_read(
    fresh_keys: DevKeyPaths, which: str, mode: int
) -> None:
    gw = fresh_keys.gateway
    directory = {"gateway": gw.directory, "signing": gw.signing_dir, "hpke": gw.hpke_dir,
                 "kek": gw.kek_dir}[which]
    os.chmod(directory, mode)
    try:
        with pytest.raises(KeystoreError, match=f"{directory}.*{mode:04o}"):
            Keystore.open(fresh_keys.root)
        with pytest.raises(KeystoreError, match="mode"):
            FileKeyProvider(fresh_keys.root).rotate(
                KeyKind.KEK if which == "kek" else KeyKind.HPKE if which == "hpke"
                else KeyKind.SIGNING
            )
    finally:
        os.chmod(directory, 0o700)


def test_accepts_a_directory_an_operators_group_may_read(fresh_keys: DevKeyPaths) -> None:
    for directory in (fresh_keys.gateway.directory, fresh_keys.gateway.signing_dir):
        os.chmod(directory, 0o750)
    Keystore.open(fresh_keys.root)


def test_a_key_file_must_hold_the_key_its_name_says(fresh_keys: DevKeyPaths) -> None:
    gw = fresh_keys.gateway
    other = Ed25519PrivateKey.generate()
    impostor = gw.signing_file(key_id(Ed25519PrivateKey.generate().public_key()))
    write_private_file(impostor, private_pem(other))
    with pytest.raises(KeystoreError, match="holds key"):
        Keystore.open(fresh_keys.root)


def test_a_stray_file_in_a_ring_is_refused(fresh_keys: DevKeyPaths) -> None:
    stray = fresh_keys.gateway.hpke_dir / "backup.key.pem"
    write_private_file(stray, private_pem(X25519PrivateKey.generate()))
    with pytest.raises(KeystoreError, match="backup.key.pem"):
        Keystore.open(fresh_keys.root)


def test_current_must_name_a_present_key(fresh_keys: DevKeyPaths) -> None:
    _current_signing_file(fresh_keys).unlink()
    with pytest.raises(KeystoreError, match="current"):
        Keystore.open(fresh_keys.root)
    fresh_keys.gateway.signing_current.write_text("../../etc/passwd\n")
    with pytest.raises(KeystoreError, match="does not name"):
        Keystore.open(fresh_keys.root)


def _to_earlier_layout(keys: DevKeyPaths) -> tuple[str, str]:
    """Turn a fresh key directory into the single-file layout of earlier versions."""
    gw = keys.gateway
    signing_id = gw.signing_current.read_text().strip()
    hpke_id = gw.hpke_current.read_text().strip()
    shutil.move(gw.signing_file(signing_id), gw.signing_key)
    shutil.move(gw.hpke_file(hpke_id), gw.hpke_key)
    shutil.rmtree(gw.signing_dir)
    shutil.rmtree(gw.hpke_dir)
    return signing_id, hpke_id


def test_reads_the_earlier_single_file_layout_as_rings_of_one(fresh_keys: DevKeyPaths) -> None:
    signing_id, hpke_id = _to_earlier_layout(fresh_keys)
    keystore = Keystore.open(fresh_keys.root)
    assert keystore.signing_key_id == signing_id
    assert keystore.hpke_key_id == hpke_id
    assert list(keystore.signing_keys().keys) == [signing_id]
    listed = FileKeyProvider(fresh_keys.root).list_keys(KeyKind.SIGNING)
    assert [(i.key_id, i.current) for i in listed] == [(signing_id, True)]
    with pytest.raises(KeystoreError, match="current"):
        FileKeyProvider(fresh_keys.root).retire(KeyKind.SIGNING, signing_id)


def test_the_first_rotation_moves_a_single_file_key_into_the_ring(
    fresh_keys: DevKeyPaths,
) -> None:
    signing_id, _ = _to_earlier_layout(fresh_keys)
    gw = fresh_keys.gateway
    old = Keystore.open(fresh_keys.root).signing_key
    signature = old.sign(b"before")
    new_id = FileKeyProvider(fresh_keys.root).rotate(KeyKind.SIGNING)
    assert not gw.signing_key.exists()  # no second copy of the private key
    assert gw.signing_file(signing_id).stat().st_mode & 0o777 == 0o600
    keystore = Keystore.open(fresh_keys.root)
    assert keystore.signing_key_id == new_id
    keystore.signing_keys().get(signing_id).public_key().verify(signature, b"before")
    assert gw.signing_pub.read_bytes() == public_pem(keystore.signing_key.public_key())


def test_keys_init_again_keeps_an_earlier_layout(fresh_keys: DevKeyPaths) -> None:
    from gateway.crypto import init_dev_keys

    _to_earlier_layout(fresh_keys)
    again = init_dev_keys(fresh_keys.root, [p.partner_id for p in fresh_keys.partners])
    assert again.created == ()
    assert not fresh_keys.gateway.signing_dir.exists()


def test_refresh_follows_a_rotation_made_elsewhere(fresh_keys: DevKeyPaths) -> None:
    keystore = Keystore.open(fresh_keys.root)
    before = keystore.signing_key_id, keystore.hpke_key_id, keystore.current_kek.kek_id
    assert keystore.refresh() is False
    other = FileKeyProvider(fresh_keys.root)  # e.g. `ketenpoort keys rotate` in the shared dir
    new_signing = other.rotate(KeyKind.SIGNING)
    new_kek = other.rotate(KeyKind.KEK)
    assert keystore.refresh() is True
    assert keystore.signing_key_id == new_signing
    assert keystore.current_kek.kek_id == new_kek
    assert keystore.hpke_key_id == before[1]
    assert before[0] in keystore.signing_keys().keys
    assert keystore.kek(before[2]).kek_id == before[2]
    assert keystore.refresh() is False


def test_refresh_keeps_the_keys_in_force_when_a_ring_breaks(fresh_keys: DevKeyPaths) -> None:
    keystore = Keystore.open(fresh_keys.root)
    current = keystore.signing_key_id
    write_public_file(fresh_keys.gateway.signing_current, b"k_ffffffffffffffff\n")
    with pytest.raises(KeystoreError):
        keystore.refresh()
    assert keystore.signing_key_id == current
    keystore.signing_key.sign(b"still signs")


def test_retired_signing_keys_are_trusted_for_verification(fresh_keys: DevKeyPaths) -> None:
    keystore = Keystore.open(fresh_keys.root)
    old = keystore.signing_key
    provider = FileKeyProvider(fresh_keys.root)
    provider.rotate(KeyKind.SIGNING)
    assert keystore.refresh()
    trusted = [key_id(k) for k in keystore.log_verification_keys()]
    assert trusted == [keystore.signing_key_id, old.key_id]
    provider.retire(KeyKind.SIGNING, old.key_id)
    assert keystore.refresh()
    assert old.key_id not in keystore.signing_keys().keys
    assert [key_id(k) for k in keystore.log_verification_keys()] == trusted
