"""Case data at rest: a random AES-256-GCM key per case, wrapped by a key-encryption key.

Deleting a case's wrapped data key makes every copy of its encrypted fields unreadable,
backups included (crypto-shredding). Each token carries a format version; each wrapped
key carries the id of the key-encryption key that wrapped it, so keys can be rotated
while old wraps still open.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.crypto._encoding import length_prefixed
from gateway.crypto.errors import EnvelopeError, KeystoreError
from gateway.crypto.keystore import KeyEncryptionKey

__all__ = [
    "DATA_KEY_BYTES",
    "ENVELOPE_FORMAT_VERSION",
    "WRAP_FORMAT_VERSION",
    "DataKey",
    "KekLookup",
    "WrappedKey",
    "field_aad",
    "unwrap_data_key",
    "unwrap_text_key",
    "wrap_data_key",
    "wrap_text_key",
    "wrapped_key_header",
]

ENVELOPE_FORMAT_VERSION = 1
WRAP_FORMAT_VERSION = 1
DATA_KEY_BYTES = 32

_NONCE_BYTES = 12
_TAG_BYTES = 16
_WRAP_LABEL = b"ketenpoort/v1 wrapped-data-key"
# A free-text key (gateway.crypto.free_text) is wrapped under its own label: a wrap made for
# one never opens as the other, whatever ids the two carry.
_TEXT_WRAP_LABEL = b"ketenpoort/v1 wrapped-text-key"
_FIELD_LABEL = b"ketenpoort/v1 case-field"


class KekLookup(Protocol):
    """Finds a key-encryption key by id (a :class:`Keystore`, or a key service)."""

    def kek(self, kek_id: str) -> KeyEncryptionKey: ...


class DataKey:
    """A per-case AES-256-GCM key. Hold it in memory only; store it wrapped."""

    __slots__ = ("_aead", "_key")

    def __init__(self, key: bytes) -> None:
        if len(key) != DATA_KEY_BYTES:
            raise ValueError(f"a data key is {DATA_KEY_BYTES} bytes")
        self._key = bytes(key)
        self._aead = AESGCM(self._key)

    @classmethod
    def generate(cls, randbytes: Callable[[int], bytes] = os.urandom) -> DataKey:
        return cls(randbytes(DATA_KEY_BYTES))

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """Return version byte + 12-byte random nonce + ciphertext and tag.

        ``aad`` (see :func:`field_aad`) binds the token to where it is stored, so a token
        copied into another case, entry or field does not decrypt there.
        """
        header = bytes([ENVELOPE_FORMAT_VERSION])
        nonce = os.urandom(_NONCE_BYTES)
        return header + nonce + self._aead.encrypt(nonce, plaintext, header + aad)

    def decrypt(self, token: bytes, aad: bytes) -> bytes:
        """Open a token from :meth:`encrypt` with the same ``aad``, or raise EnvelopeError."""
        if len(token) < 1 + _NONCE_BYTES + _TAG_BYTES:
            raise EnvelopeError("encrypted value is truncated")
        if token[0] != ENVELOPE_FORMAT_VERSION:
            raise EnvelopeError(f"encrypted value has unknown format version {token[0]}")
        nonce = token[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, token[1 + _NONCE_BYTES :], token[:1] + aad)
        except InvalidTag:
            raise EnvelopeError("encrypted value does not open with this key and context") from None

    def __repr__(self) -> str:
        return "DataKey(<secret>)"


@dataclass(frozen=True)
class WrappedKey:
    """A data key encrypted under the key-encryption key ``kek_id`` (AES-256-GCM)."""

    version: int
    kek_id: str
    blob: bytes

    def to_bytes(self) -> bytes:
        """``version (1 byte) | len(kek_id) (1 byte) | kek_id (ASCII) | blob``."""
        return wrapped_key_header(self.kek_id, self.version) + self.blob

    @classmethod
    def from_bytes(cls, data: bytes) -> WrappedKey:
        if len(data) < 2 or len(data) < 2 + data[1]:
            raise EnvelopeError("stored wrapped key is truncated")
        end = 2 + data[1]
        try:
            kek_id = data[2:end].decode("ascii")
        except UnicodeDecodeError:
            raise EnvelopeError("stored wrapped key has a malformed key id") from None
        return cls(version=data[0], kek_id=kek_id, blob=bytes(data[end:]))


def wrapped_key_header(kek_id: str, version: int = WRAP_FORMAT_VERSION) -> bytes:
    """The bytes every stored key of ``version`` wrapped under ``kek_id`` starts with.

    The key-encryption key is named in clear ahead of the wrapped material, so a store can
    find the keys one KEK wrapped (``substr`` on the column) without unwrapping any. From
    byte 1 on the header does not depend on the version: ``header[1:]`` finds them all.
    """
    try:
        encoded = kek_id.encode("ascii")
    except UnicodeEncodeError:
        raise EnvelopeError("a key-encryption key id is ASCII") from None
    if not 0 <= version <= 0xFF or len(encoded) > 0xFF:
        raise EnvelopeError("wrapped key cannot be serialised")
    return bytes([version, len(encoded)]) + encoded


def _wrap_aad(version: int, owner: str, kek_id: str, label: bytes = _WRAP_LABEL) -> bytes:
    return length_prefixed(label, str(version), owner, kek_id)


def wrap_data_key(key: DataKey, kek: KeyEncryptionKey, case_id: str) -> WrappedKey:
    """Wrap ``key`` for storage with case ``case_id``; it unwraps only for that case."""
    aad = _wrap_aad(WRAP_FORMAT_VERSION, case_id, kek.kek_id)
    return WrappedKey(WRAP_FORMAT_VERSION, kek.kek_id, kek.wrap(key._key, aad))


def wrap_text_key(key: DataKey, kek: KeyEncryptionKey, text_key_id: str) -> WrappedKey:
    """Wrap a free-text data key for storage as ``text_key_id``; it unwraps only as that."""
    aad = _wrap_aad(WRAP_FORMAT_VERSION, text_key_id, kek.kek_id, _TEXT_WRAP_LABEL)
    return WrappedKey(WRAP_FORMAT_VERSION, kek.kek_id, kek.wrap(key._key, aad))


def unwrap_text_key(wrapped: WrappedKey, keystore: KekLookup, text_key_id: str) -> DataKey:
    """Unwrap a stored free-text data key ``text_key_id``, or raise EnvelopeError."""
    return _unwrap(wrapped, keystore, text_key_id, _TEXT_WRAP_LABEL)


def unwrap_data_key(wrapped: WrappedKey, keystore: KekLookup, case_id: str) -> DataKey:
    """Unwrap a stored data key for ``case_id``, or raise EnvelopeError."""
    return _unwrap(wrapped, keystore, case_id, _WRAP_LABEL)


def _unwrap(wrapped: WrappedKey, keystore: KekLookup, owner: str, label: bytes) -> DataKey:
    if wrapped.version != WRAP_FORMAT_VERSION:
        raise EnvelopeError(f"wrapped key has unknown format version {wrapped.version}")
    try:
        kek = keystore.kek(wrapped.kek_id)
    except KeystoreError as exc:
        raise EnvelopeError(
            f"wrapped key names unknown key-encryption key {wrapped.kek_id!r}"
        ) from exc
    material = kek.unwrap(wrapped.blob, _wrap_aad(wrapped.version, owner, kek.kek_id, label))
    if len(material) != DATA_KEY_BYTES:
        raise EnvelopeError("wrapped key does not hold a data key")
    return DataKey(material)


def field_aad(case_id: str, entry_id: str, field: str, person_id: str = "") -> bytes:
    """Associated data for one field value of one entry in one case; an entry about one
    person of the case is bound to that person as well, so that it cannot be moved to
    another. A case-level entry (no person) has the associated data it always had."""
    if not person_id:
        return length_prefixed(_FIELD_LABEL, case_id, entry_id, field)
    return length_prefixed(_FIELD_LABEL, case_id, entry_id, field, person_id)
