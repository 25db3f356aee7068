"""The gateway's own keys, loaded from a key directory.

Every private file must be mode 0600 (no group or other access); a wider mode is refused
rather than silently used, because a key that others could read must be treated as leaked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.crypto._files import (
    ensure_private_dir,
    read_private_file,
    read_public_file,
    write_private_file,
    write_public_file,
)
from gateway.crypto._pem import load_ed25519_private_key, load_x25519_private_key
from gateway.crypto.errors import EnvelopeError, KeystoreError
from gateway.crypto.keyids import key_id
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.local_keys import LocalHpkeRecipient, LocalSigningKey
from gateway.crypto.provider import HpkeRecipient, KeyRing, LogSigningKey

__all__ = [
    "KEK_BYTES",
    "PSEUDONYM_KEY_BYTES",
    "KeyEncryptionKey",
    "Keystore",
    "new_kek_id",
    "rotate_kek",
]

KEK_BYTES = 32
PSEUDONYM_KEY_BYTES = 32
_KEK_ID = re.compile(r"kek_[0-9a-f]{16}\Z")
_NONCE_BYTES = 12
_TAG_BYTES = 16


def new_kek_id() -> str:
    # Random rather than derived from the key, so the id says nothing about the key.
    return "kek_" + os.urandom(8).hex()


class KeyEncryptionKey:
    """An AES-256-GCM key that wraps per-case data keys. Its bytes never leave the object."""

    __slots__ = ("_aead", "kek_id")

    def __init__(self, kek_id: str, key: bytes) -> None:
        if not _KEK_ID.match(kek_id):
            raise ValueError("a key-encryption key id is 'kek_' followed by 16 hex digits")
        if len(key) != KEK_BYTES:
            raise ValueError(f"a key-encryption key is {KEK_BYTES} bytes")
        self.kek_id = kek_id
        self._aead = AESGCM(key)

    def wrap(self, key_material: bytes, aad: bytes) -> bytes:
        """Encrypt ``key_material``; the result is a 12-byte random nonce followed by ct."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, key_material, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt what :meth:`wrap` produced with the same ``aad``; raise EnvelopeError."""
        if len(blob) < _NONCE_BYTES + _TAG_BYTES:
            raise EnvelopeError(f"wrapped key under {self.kek_id} is truncated")
        try:
            return self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad)
        except InvalidTag:
            raise EnvelopeError(f"wrapped key does not open under {self.kek_id}") from None

    def __repr__(self) -> str:
        return f"KeyEncryptionKey(kek_id={self.kek_id!r})"


class Keystore:
    """The gateway's keys: key-encryption keys, pseudonym key, log-signing and HPKE keys."""

    def __init__(
        self,
        *,
        keks: Iterable[KeyEncryptionKey],
        current_kek_id: str,
        pseudonym_key: bytes,
        signing_key: Ed25519PrivateKey,
        hpke_private_key: X25519PrivateKey,
    ) -> None:
        self._keks = {kek.kek_id: kek for kek in keks}
        if current_kek_id not in self._keks:
            raise KeystoreError(f"current key-encryption key {current_kek_id} is not loaded")
        if len(pseudonym_key) != PSEUDONYM_KEY_BYTES:
            raise KeystoreError(f"the pseudonym key must be {PSEUDONYM_KEY_BYTES} bytes")
        self._current_kek = self._keks[current_kek_id]
        self._pseudonym_key = pseudonym_key
        self._signing_key = signing_key
        self._signing_key_id = key_id(signing_key.public_key())
        self._hpke_private_key = hpke_private_key
        self._hpke_key_id = key_id(hpke_private_key.public_key())

    @classmethod
    def open(cls, path: Path) -> Keystore:
        """Load the keys under ``path/gateway`` (see :mod:`gateway.crypto.layout`)."""
        paths = GatewayKeyPaths.under(path)
        current = _read_kek_current(paths)
        keks = _load_keks(paths)
        if current not in {kek.kek_id for kek in keks}:
            raise KeystoreError(
                f"{paths.kek_current} names {current}, but {paths.kek_file(current)} is missing"
            )
        pseudonym_key = read_private_file(paths.pseudonym_key)
        if len(pseudonym_key) != PSEUDONYM_KEY_BYTES:
            raise KeystoreError(
                f"key file {paths.pseudonym_key} must hold exactly {PSEUDONYM_KEY_BYTES} bytes"
            )
        return cls(
            keks=keks,
            current_kek_id=current,
            pseudonym_key=pseudonym_key,
            signing_key=load_ed25519_private_key(paths.signing_key),
            hpke_private_key=load_x25519_private_key(paths.hpke_key),
        )

    @property
    def current_kek(self) -> KeyEncryptionKey:
        """The key that wraps new data keys."""
        return self._current_kek

    @property
    def kek_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._keks))

    def kek(self, kek_id: str) -> KeyEncryptionKey:
        try:
            return self._keks[kek_id]
        except KeyError:
            raise KeystoreError(f"no key-encryption key with id {kek_id!r}") from None

    @property
    def pseudonym_key(self) -> bytes:
        return self._pseudonym_key

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        return self._signing_key

    @property
    def signing_key_id(self) -> str:
        return self._signing_key_id

    def signing_keys(self) -> KeyRing[LogSigningKey]:
        """The log-signing keys: the current one signs checkpoints, all verify."""
        signer = LocalSigningKey(self._signing_key)
        return KeyRing(signer.key_id, {signer.key_id: signer})

    def hpke_keys(self) -> KeyRing[HpkeRecipient]:
        """The keys partners seal to: the current one is advertised, all open."""
        recipient = LocalHpkeRecipient(self._hpke_private_key)
        return KeyRing(recipient.key_id, {recipient.key_id: recipient})

    @property
    def hpke_private_key(self) -> X25519PrivateKey:
        return self._hpke_private_key

    @property
    def hpke_key_id(self) -> str:
        return self._hpke_key_id

    def __repr__(self) -> str:
        return (
            f"Keystore(current_kek={self._current_kek.kek_id!r}, keks={len(self._keks)}, "
            f"signing_key_id={self._signing_key_id!r}, hpke_key_id={self._hpke_key_id!r})"
        )


def rotate_kek(path: Path) -> str:
    """Add a new key-encryption key under ``path/gateway/kek`` and make it current.

    Older keys stay, so data keys they wrapped still open; rewrap those and delete the old
    file to retire it. Returns the new key's id.
    """
    paths = GatewayKeyPaths.under(path)
    ensure_private_dir(paths.kek_dir)
    kek_id = new_kek_id()
    write_private_file(paths.kek_file(kek_id), os.urandom(KEK_BYTES))
    # The key file exists before `current` names it, so a reader never sees a dangling id.
    write_public_file(paths.kek_current, f"{kek_id}\n".encode("ascii"))
    return kek_id


def _read_kek_current(paths: GatewayKeyPaths) -> str:
    raw = read_public_file(paths.kek_current)
    try:
        current = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        current = ""
    if not _KEK_ID.match(current):
        raise KeystoreError(f"{paths.kek_current} does not name a key-encryption key id")
    return current


def _load_keks(paths: GatewayKeyPaths) -> list[KeyEncryptionKey]:
    keks: list[KeyEncryptionKey] = []
    for file in sorted(paths.kek_dir.glob("*.key")):
        kek_id = file.name.removesuffix(".key")
        if not _KEK_ID.match(kek_id):
            raise KeystoreError(f"key file {file} is not named <kek_id>.key")
        key = read_private_file(file)
        if len(key) != KEK_BYTES:
            raise KeystoreError(f"key file {file} must hold exactly {KEK_BYTES} bytes")
        keks.append(KeyEncryptionKey(kek_id, key))
    return keks
