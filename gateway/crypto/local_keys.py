"""Gateway keys held in process memory (loaded from files): the software side of the
key-provider contract in :mod:`gateway.crypto.provider`."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from gateway.crypto.errors import SealOpenError
from gateway.crypto.keyids import key_id

__all__ = ["LocalHpkeRecipient", "LocalSigningKey"]

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
_OPEN_FAILED = "sealed box could not be opened"


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
