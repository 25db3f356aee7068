"""Operations on keys held in a PKCS#11 token: what the token provider hands out.

Each call goes to the token under its module's lock (:mod:`gateway.crypto.pkcs11_token`); no
key material comes back, except the X25519 result that HPKE's key schedule needs
(:mod:`gateway.crypto.pkcs11_provider` explains why).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from gateway.crypto import hpke_base
from gateway.crypto.errors import EnvelopeError, KeystoreError, SealOpenError
from gateway.crypto.keyids import key_id
from gateway.crypto.local_keys import (
    KEK_ID_PATTERN,
    WRAP_NONCE_BYTES,
    WRAP_TAG_BYTES,
    KeyEncryptionKey,
)
from gateway.crypto.pkcs11_token import TokenSession

if TYPE_CHECKING:
    from pkcs11.types import DeriveMixin, Session, SignMixin

__all__ = ["Pkcs11HpkeRecipient", "Pkcs11Kek", "Pkcs11SigningKey"]

log = logging.getLogger("ketenpoort.keys")

_OPEN_FAILED = "sealed box could not be opened"


class Pkcs11SigningKey:
    """An Ed25519 log-signing key in the token."""

    __slots__ = ("_key", "_key_id", "_public", "_token")

    def __init__(self, token: TokenSession, key: SignMixin, public: Ed25519PublicKey) -> None:
        self._token, self._key, self._public = token, key, public
        self._key_id = key_id(public)

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        from pkcs11.mechanisms import Mechanism

        return bytes(
            self._token.run(lambda _: self._key.sign(message, mechanism=Mechanism.EDDSA))
        )

    def __repr__(self) -> str:
        return f"Pkcs11SigningKey(key_id={self._key_id!r})"


class Pkcs11HpkeRecipient:
    """An X25519 key in the token; the token does the Diffie-Hellman step of opening."""

    __slots__ = ("_key", "_key_id", "_public", "_raw", "_token")

    def __init__(self, token: TokenSession, key: DeriveMixin, public: X25519PublicKey) -> None:
        self._token, self._key, self._public = token, key, public
        self._raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self._key_id = key_id(public)

    @property
    def key_id(self) -> str:
        return self._key_id

    def public_key(self) -> X25519PublicKey:
        return self._public

    def open(self, ciphertext: bytes, info: bytes) -> bytes:
        return hpke_base.open_base(self.exchange, self._raw, ciphertext, info)

    def exchange(self, peer_public: bytes) -> bytes:
        """X25519 of this key with ``peer_public`` (32 raw bytes), computed by the token."""
        from pkcs11.constants import Attribute
        from pkcs11.exceptions import PKCS11Error
        from pkcs11.mechanisms import KDF, KeyType, Mechanism

        def derive(_: Session) -> bytes:
            secret = self._key.derive_key(
                KeyType.GENERIC_SECRET,
                256,
                mechanism=Mechanism.ECDH1_DERIVE,
                mechanism_param=(KDF.NULL, None, peer_public),
                # A session object the gateway may read: the rest of HPKE happens here.
                template={
                    Attribute.TOKEN: False,
                    Attribute.SENSITIVE: False,
                    Attribute.EXTRACTABLE: True,
                },
            )
            try:
                return bytes(secret[Attribute.VALUE])
            finally:
                secret.destroy()

        try:
            return self._token.run(derive)
        except PKCS11Error as exc:
            # A malformed ephemeral key is refused by the token: for the sender that is a box
            # that does not open; the class name says whether the token itself is in trouble.
            log.warning("X25519 in the token failed: %s", type(exc).__name__)
            raise SealOpenError(_OPEN_FAILED) from None

    def __repr__(self) -> str:
        return f"Pkcs11HpkeRecipient(key_id={self._key_id!r})"


class Pkcs11Kek(KeyEncryptionKey):
    """An AES-256 key-encryption key in the token; both operations go to the token."""

    __slots__ = ("_key", "_token")

    # ``key`` is a python-pkcs11 SecretKey (encrypt and decrypt mixins, no common type).
    def __init__(self, token: TokenSession, key: Any, kek_id: str) -> None:
        # No key bytes to hand to the in-memory base: they never leave the token.
        if not KEK_ID_PATTERN.match(kek_id):
            raise KeystoreError(f"token key-encryption key id {kek_id!r} is malformed")
        self._token, self._key, self.kek_id = token, key, kek_id

    def wrap(self, key_material: bytes, aad: bytes) -> bytes:
        from pkcs11.mechanisms import GCMParams, Mechanism

        nonce = os.urandom(WRAP_NONCE_BYTES)
        params = GCMParams(nonce, aad or None, WRAP_TAG_BYTES * 8)
        sealed = self._token.run(
            lambda _: self._key.encrypt(key_material, mechanism=Mechanism.AES_GCM,
                                        mechanism_param=params)
        )
        return nonce + bytes(sealed)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        from pkcs11.exceptions import PKCS11Error
        from pkcs11.mechanisms import GCMParams, Mechanism

        if len(blob) < WRAP_NONCE_BYTES + WRAP_TAG_BYTES:
            raise EnvelopeError(f"wrapped key under {self.kek_id} is truncated")
        params = GCMParams(blob[:WRAP_NONCE_BYTES], aad or None, WRAP_TAG_BYTES * 8)
        try:
            opened = self._token.run(
                lambda _: self._key.decrypt(blob[WRAP_NONCE_BYTES:], mechanism=Mechanism.AES_GCM,
                                            mechanism_param=params)
            )
        except PKCS11Error:
            # SoftHSM2 reports a failed GCM tag check as CKR_GENERAL_ERROR, not as
            # CKR_ENCRYPTED_DATA_INVALID: every failure reads as "does not open".
            raise EnvelopeError(f"wrapped key does not open under {self.kek_id}") from None
        return bytes(opened)

    def __repr__(self) -> str:
        return f"Pkcs11Kek(kek_id={self.kek_id!r})"
