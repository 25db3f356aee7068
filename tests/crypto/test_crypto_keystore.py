from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gateway.crypto import DevKeyPaths, Keystore, KeystoreError, key_id, rotate_kek


def _signing_file(paths: DevKeyPaths) -> Path:
    gw = paths.gateway
    return gw.signing_file(gw.signing_current.read_text().strip())


def _hpke_file(paths: DevKeyPaths) -> Path:
    gw = paths.gateway
    return gw.hpke_file(gw.hpke_current.read_text().strip())


def test_opens_the_gateway_keys(dev_keys: DevKeyPaths) -> None:
    keystore = Keystore.open(dev_keys.root)
    assert keystore.signing_key_id == key_id(keystore.signing_key.public_key())
    assert keystore.signing_key_id == dev_keys.gateway.signing_current.read_text().strip()
    assert keystore.hpke_key_id == key_id(keystore.hpke_keys().current.public_key())
    assert len(keystore.pseudonym_key) == 32
    current = dev_keys.gateway.kek_current.read_text().strip()
    assert keystore.current_kek.kek_id == current
    assert keystore.kek(current) is keystore.current_kek


def test_repr_shows_ids_only(dev_keys: DevKeyPaths) -> None:
    keystore = Keystore.open(dev_keys.root)
    text = repr(keystore) + repr(keystore.current_kek)
    assert keystore.pseudonym_key.hex() not in text
    assert keystore.hpke_key_id in text


def test_unknown_kek_id_is_refused(dev_keys: DevKeyPaths) -> None:
    with pytest.raises(KeystoreError, match="kek_ffffffffffffffff"):
        Keystore.open(dev_keys.root).kek("kek_ffffffffffffffff")


def _private_files(paths: DevKeyPaths) -> list[Path]:
    gw = paths.gateway
    current = gw.kek_current.read_text().strip()
    return [gw.kek_file(current), gw.pseudonym_key, _signing_file(paths), _hpke_file(paths)]


@pytest.mark.parametrize("index", range(4), ids=["kek", "pseudonym", "signing", "hpke"])
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_refuses_a_private_key_file_others_can_read(
    fresh_keys: DevKeyPaths, index: int, mode: int
) -> None:
    path = _private_files(fresh_keys)[index]
    secret = path.read_bytes()
    os.chmod(path, mode)
    with pytest.raises(KeystoreError) as caught:
        Keystore.open(fresh_keys.root)
    message = str(caught.value)
    assert str(path) in message
    assert f"{mode:04o}" in message
    assert secret.hex() not in message and secret.decode("latin-1") not in message


def test_accepts_owner_read_only(fresh_keys: DevKeyPaths) -> None:
    for path in _private_files(fresh_keys):
        os.chmod(path, 0o400)
    Keystore.open(fresh_keys.root)


def test_follows_a_symlink_and_checks_the_target(fresh_keys: DevKeyPaths) -> None:
    # Mounted secrets are symbolic links; the mode that counts is the target's.
    target = fresh_keys.gateway.pseudonym_key
    moved = target.with_name("pseudonym.data")
    shutil.move(target, moved)
    target.symlink_to(moved.name)
    Keystore.open(fresh_keys.root)
    os.chmod(moved, 0o644)
    with pytest.raises(KeystoreError, match="pseudonym.key"):
        Keystore.open(fresh_keys.root)


def test_missing_file_is_named(fresh_keys: DevKeyPaths) -> None:
    missing = _signing_file(fresh_keys)
    missing.unlink()
    with pytest.raises(KeystoreError, match=missing.name):
        Keystore.open(fresh_keys.root)


def test_wrong_key_type_is_named(fresh_keys: DevKeyPaths) -> None:
    # An X25519 key where the Ed25519 signing key belongs.
    target = _signing_file(fresh_keys)
    shutil.copy(_hpke_file(fresh_keys), target)
    with pytest.raises(KeystoreError, match=f"{target.name}.*Ed25519"):
        Keystore.open(fresh_keys.root)


def test_garbage_pem_is_named_without_its_content(fresh_keys: DevKeyPaths) -> None:
    target = _hpke_file(fresh_keys)
    target.write_bytes(b"not-a-key-TOPSECRET")
    with pytest.raises(KeystoreError) as caught:
        Keystore.open(fresh_keys.root)
    assert target.name in str(caught.value)
    assert "TOPSECRET" not in str(caught.value)


def test_kek_of_wrong_length_is_refused(fresh_keys: DevKeyPaths) -> None:
    gw = fresh_keys.gateway
    path = gw.kek_file(gw.kek_current.read_text().strip())
    path.write_bytes(b"\0" * 16)
    with pytest.raises(KeystoreError, match="32 bytes"):
        Keystore.open(fresh_keys.root)


@pytest.mark.parametrize("content", [b"kek_0000000000000000\n", b"../../etc/passwd", b"\xff"])
def test_current_must_name_a_present_kek(fresh_keys: DevKeyPaths, content: bytes) -> None:
    fresh_keys.gateway.kek_current.write_bytes(content)
    with pytest.raises(KeystoreError, match="current"):
        Keystore.open(fresh_keys.root)


def test_stray_file_in_kek_directory_is_refused(fresh_keys: DevKeyPaths) -> None:
    stray = fresh_keys.gateway.kek_dir / "backup.key"
    stray.write_bytes(os.urandom(32))
    os.chmod(stray, 0o600)
    with pytest.raises(KeystoreError, match="backup.key"):
        Keystore.open(fresh_keys.root)


def test_rotate_kek_writes_a_private_key_and_updates_current(fresh_keys: DevKeyPaths) -> None:
    old = Keystore.open(fresh_keys.root).current_kek.kek_id
    new = rotate_kek(fresh_keys.root)
    path = fresh_keys.gateway.kek_file(new)
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_bytes()) == 32
    assert fresh_keys.gateway.kek_current.read_text().strip() == new
    keystore = Keystore.open(fresh_keys.root)
    assert keystore.current_kek.kek_id == new
    assert keystore.kek(old).kek_id == old
