"""Gateway keys held in process memory (loaded from files): the software side of the
key-provider contract in :mod:`gateway.crypto.provider`."""

from __future__ import annotations

import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.crypto.errors import EnvelopeError, SealOpenError
from gateway.crypto.keyids import key_id

__all__ = [
    "KEK_BYTES",
    "KEK_ID_PATTERN",
    "WRAP_NONCE_BYTES",
    "WRAP_TAG_BYTES",
    "KeyEncryptionKey",
    "LocalHpkeRecipient",
    "LocalSigningKey",
    "new_kek_id",
]

KEK_BYTES = 32
KEK_ID_PATTERN = re.compile(r"kek_[0-9a-f]{16}\Z")
# A wrapped blob is a 12-byte random nonce, then AES-256-GCM ciphertext and 16-byte tag; the
# PKCS#11 provider writes the same layout, so the two kinds of KEK are interchangeable.
WRAP_NONCE_BYTES = 12
WRAP_TAG_BYTES = 16

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
_OPEN_FAILED = "sealed box could not be opened"


def new_kek_id() -> str:
    # Random rather than derived from the key, so the id says nothing about the key.
    return "kek_" + os.urandom(8).hex()


class KeyEncryptionKey:
    """An AES-256-GCM key that wraps per-case data keys. Its bytes never leave the object.

    This is the type every key-encryption key has (the :class:`~gateway.crypto.provider.
    KeyWrappingKey` contract, nominally): constructed with key bytes it holds the key in
    memory; a provider that keeps the key elsewhere subclasses it and overrides ``wrap`` and
    ``unwrap`` (:class:`gateway.crypto.pkcs11_keys.Pkcs11Kek`).
    """

    __slots__ = ("_aead", "kek_id")

    def __init__(self, kek_id: str, key: bytes) -> None:
        if not KEK_ID_PATTERN.match(kek_id):
            raise ValueError("a key-encryption key id is 'kek_' followed by 16 hex digits")
        if len(key) != KEK_BYTES:
            raise ValueError(f"a key-encryption key is {KEK_BYTES} bytes")
        self.kek_id = kek_id
        self._aead = AESGCM(key)

    def wrap(self, key_material: bytes, aad: bytes) -> bytes:
        """Encrypt ``key_material``; the result is a 12-byte random nonce followed by ct."""
        nonce = os.urandom(WRAP_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, key_material, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt what :meth:`wrap` produced with the same ``aad``; raise EnvelopeError."""
        if len(blob) < WRAP_NONCE_BYTES + WRAP_TAG_BYTES:
            raise EnvelopeError(f"wrapped key under {self.kek_id} is truncated")
        try:
            return self._aead.decrypt(blob[:WRAP_NONCE_BYTES], blob[WRAP_NONCE_BYTES:], aad)
        except InvalidTag:
            raise EnvelopeError(f"wrapped key does not open under {self.kek_id}") from None

    def __repr__(self) -> str:
        return f"KeyEncryptionKey(kek_id={self.kek_id!r})"


class LocalSigningKey:
    """An Ed25519 log-signing key in memory."""

    __slots__ = ("_key", "_key_id", "_public")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self._public = private_key.public_key()
        self._key_id = key_id(self._public)

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"LocalSigningKey(key_id={self._key_id!r})"


class LocalHpkeRecipient:
    """An X25519 key in memory that opens what partners sealed to the gateway."""

    __slots__ = ("_key", "_key_id", "_public")

    def __init__(self, private_key: X25519PrivateKey) -> None:
        self._key = private_key
        self._public = private_key.public_key()
        self._key_id = key_id(self._public)

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key(self) -> X25519PublicKey:
        return self._public

    def open(self, ciphertext: bytes, info: bytes) -> bytes:
        try:
            return _SUITE.decrypt(ciphertext, self._key, info=info)
        except (InvalidTag, ValueError):
            raise SealOpenError(_OPEN_FAILED) from None

    def __repr__(self) -> str:
        return f"LocalHpkeRecipient(key_id={self._key_id!r})"
