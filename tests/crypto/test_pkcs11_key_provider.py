"""Keys in a PKCS#11 token (SoftHSM2): generated inside, never readable outside; the PIN's
sources; one login shared in a process; a keystore with some kinds in the token."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.crypto import DevKeyPaths, Keystore
from gateway.crypto.errors import KeystoreError
from gateway.crypto.file_provider import FileKeyProvider
from gateway.crypto.pkcs11_provider import Pkcs11KeyProvider
from gateway.crypto.provider import KeyKind
from gateway.crypto.provider_settings import KeyProviderSettings, ProviderType
from tests.softhsm import SoftHsm, pkcs11_settings


@pytest.fixture
def token(softhsm: SoftHsm, tmp_path: Path) -> Iterator[Pkcs11KeyProvider]:
    provider = Pkcs11KeyProvider(pkcs11_settings(softhsm), tmp_path / "keys")
    for kind in KeyKind:
        provider.rotate(kind)
    yield provider
    provider.close()


def _objects(softhsm: SoftHsm, provider: Pkcs11KeyProvider, kind: KeyKind) -> list[Any]:
    """The token's objects of the current key of ``kind``, through a session of its own."""
    from pkcs11.constants import Attribute

    key_id = next(i.key_id for i in provider.list_keys(kind) if i.current)
    label = f"{provider._settings.namespace}/{kind.value}/{key_id}"
    return provider._token.run(
        lambda session: list(session.get_objects({Attribute.LABEL: label}))
    )


@pytest.mark.parametrize("kind", list(KeyKind), ids=[k.value for k in KeyKind])
def test_private_keys_cannot_leave_the_token(
    softhsm: SoftHsm, token: Pkcs11KeyProvider, kind: KeyKind
) -> None:
    from pkcs11.constants import Attribute, ObjectClass
    from pkcs11.exceptions import AttributeSensitive, PKCS11Error

    secret_class = ObjectClass.SECRET_KEY if kind is KeyKind.KEK else ObjectClass.PRIVATE_KEY
    [secret] = [o for o in _objects(softhsm, token, kind) if o.object_class == secret_class]
    assert secret[Attribute.TOKEN] is True
    assert secret[Attribute.PRIVATE] is True
    assert secret[Attribute.EXTRACTABLE] is False
    assert secret[Attribute.SENSITIVE] is True
    assert secret[Attribute.NEVER_EXTRACTABLE] is True
    assert secret[Attribute.ALWAYS_SENSITIVE] is True
    assert secret[Attribute.LOCAL] is True  # generated in the token, not imported
    with pytest.raises(AttributeSensitive):
        token._token.run(lambda _: secret[Attribute.VALUE])
    # Neither flag can be turned back: the token refuses both changes.
    with pytest.raises(PKCS11Error):
        token._token.run(
            lambda _: secret.__setitem__(Attribute.EXTRACTABLE, True)
        )
    assert secret[Attribute.EXTRACTABLE] is False


def test_a_key_encryption_key_does_nothing_but_encrypt_and_decrypt(
    softhsm: SoftHsm, token: Pkcs11KeyProvider
) -> None:
    from pkcs11.constants import Attribute

    [kek] = _objects(softhsm, token, KeyKind.KEK)
    assert kek[Attribute.ENCRYPT] and kek[Attribute.DECRYPT]
    for use in (Attribute.WRAP, Attribute.UNWRAP, Attribute.SIGN, Attribute.DERIVE):
        assert kek[use] is False


def test_the_current_key_is_recorded_in_the_token(
    softhsm: SoftHsm, tmp_path: Path, token: Pkcs11KeyProvider
) -> None:
    # A second provider (another gateway on the same token) agrees on every current key.
    other = Pkcs11KeyProvider(token._settings, tmp_path / "elsewhere")
    try:
        new = token.rotate(KeyKind.SIGNING)
        assert other.signing_keys().current_id == new
        assert other.keks().current_id == token.keks().current_id
    finally:
        other.close()
    # Closing one share of the session left the other logged in.
    token.signing_keys().current.sign(b"still logged in")


def test_a_wrong_pin_is_refused_without_showing_it(softhsm: SoftHsm, tmp_path: Path) -> None:
    # The shared session is logged in already while `token` is open; a fresh process logs in
    # with what the configuration gives. Ours has no other share open here.
    pin_file = tmp_path / "wrong-pin"
    pin_file.write_text("0000-wrong\n")
    pin_file.chmod(0o600)
    settings = dataclasses.replace(pkcs11_settings(softhsm), pin_file=pin_file)
    with pytest.raises(KeystoreError) as caught:
        Pkcs11KeyProvider(settings, tmp_path / "keys")
    assert "PinIncorrect" in str(caught.value)
    assert "0000-wrong" not in str(caught.value)


def test_the_pin_comes_from_the_environment_or_a_private_file(
    softhsm: SoftHsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_env = dataclasses.replace(
        pkcs11_settings(softhsm), pin_file=None, pin_env="KETENPOORT_TEST_HSM_PIN"
    )
    monkeypatch.delenv("KETENPOORT_TEST_HSM_PIN", raising=False)
    with pytest.raises(KeystoreError, match="KETENPOORT_TEST_HSM_PIN"):
        by_env.read_pin()
    monkeypatch.setenv("KETENPOORT_TEST_HSM_PIN", softhsm.pin)
    assert by_env.read_pin() == softhsm.pin
    provider = Pkcs11KeyProvider(by_env, tmp_path / "keys")
    provider.close()
    readable = tmp_path / "pin"
    readable.write_text(softhsm.pin)
    readable.chmod(0o644)
    with pytest.raises(KeystoreError, match="0644"):
        dataclasses.replace(pkcs11_settings(softhsm), pin_file=readable).read_pin()
    assert softhsm.pin not in repr(by_env)


def test_a_keystore_with_only_the_signing_key_in_the_token(
    softhsm: SoftHsm, fresh_keys: DevKeyPaths
) -> None:
    settings = KeyProviderSettings(
        type=ProviderType.PKCS11,
        pkcs11=pkcs11_settings(softhsm),
        token_kinds=frozenset({KeyKind.SIGNING}),
    )
    assert settings.pkcs11 is not None
    first = Pkcs11KeyProvider(settings.pkcs11, fresh_keys.root)
    first.rotate(KeyKind.SIGNING)
    first.close()
    keystore = Keystore.open(fresh_keys.root, settings)
    try:
        assert keystore.provider(KeyKind.SIGNING).name == "pkcs11"
        assert keystore.provider(KeyKind.HPKE).name == "file"
        assert keystore.provider(KeyKind.KEK).name == "file"
        file_ring = FileKeyProvider(fresh_keys.root).signing_keys()
        assert keystore.signing_key_id not in file_ring.keys
        assert keystore.current_kek.kek_id == FileKeyProvider(fresh_keys.root).keks().current_id
        keystore.signing_key.public_key().verify(keystore.signing_key.sign(b"m"), b"m")
    finally:
        keystore.close()


def test_refresh_follows_a_rotation_in_the_token(
    softhsm: SoftHsm, fresh_keys: DevKeyPaths
) -> None:
    settings = KeyProviderSettings(type=ProviderType.PKCS11, pkcs11=pkcs11_settings(softhsm))
    assert settings.pkcs11 is not None
    cli = Pkcs11KeyProvider(settings.pkcs11, fresh_keys.root)
    try:
        for kind in KeyKind:
            cli.rotate(kind)
        keystore = Keystore.open(fresh_keys.root, settings)
        old_kek = keystore.current_kek
        blob = old_kek.wrap(b"k" * 32, b"aad")
        assert keystore.refresh() is False
        new_kek = cli.rotate(KeyKind.KEK)
        assert keystore.refresh() is True
        assert keystore.current_kek.kek_id == new_kek
        assert keystore.kek(old_kek.kek_id).unwrap(blob, b"aad") == b"k" * 32
        keystore.close()
    finally:
        cli.close()
