"""Gateway keys handed in as objects and kept in memory only: a key provider for tests,
benchmarks and tools that build a :class:`~gateway.crypto.keystore.Keystore` themselves.

Rotation and retirement change this process's rings and nothing else.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.crypto.errors import KeystoreError, NoKeyError
from gateway.crypto.local_keys import (
    KEK_BYTES,
    KeyEncryptionKey,
    LocalHpkeRecipient,
    LocalSigningKey,
    new_kek_id,
)
from gateway.crypto.provider import (
    HpkeRecipient,
    KeyInfo,
    KeyKind,
    KeyRing,
    KeyWrappingKey,
    LogSigningKey,
)

__all__ = ["MemoryKeyProvider"]


class MemoryKeyProvider:
    """Rings built from the keys given; each kind's last key given is its current one."""

    def __init__(
        self,
        *,
        signing_keys: Iterable[Ed25519PrivateKey] = (),
        hpke_keys: Iterable[X25519PrivateKey] = (),
        keks: Iterable[KeyEncryptionKey] = (),
        current_kek_id: str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._version = 0
        self._signing: dict[str, LogSigningKey] = {}
        self._hpke: dict[str, HpkeRecipient] = {}
        self._keks: dict[str, KeyWrappingKey] = {}
        self._keys: dict[KeyKind, dict[str, Any]] = {
            KeyKind.SIGNING: self._signing,
            KeyKind.HPKE: self._hpke,
            KeyKind.KEK: self._keks,
        }
        self._current: dict[KeyKind, str] = {}  # kind -> current key id
        self._created: dict[str, str] = {}
        for private_key in signing_keys:
            signer = LocalSigningKey(private_key)
            self._add(KeyKind.SIGNING, signer.key_id, signer)
        for private in hpke_keys:
            recipient = LocalHpkeRecipient(private)
            self._add(KeyKind.HPKE, recipient.key_id, recipient)
        for kek in keks:
            self._add(KeyKind.KEK, kek.kek_id, kek)
        if current_kek_id is not None:
            if current_kek_id not in self._keys[KeyKind.KEK]:
                raise KeystoreError(f"current key-encryption key {current_kek_id} is not loaded")
            self._current[KeyKind.KEK] = current_kek_id

    @property
    def name(self) -> str:
        return "memory"

    def signing_keys(self) -> KeyRing[LogSigningKey]:
        return KeyRing(self._current_id(KeyKind.SIGNING), dict(self._signing))

    def hpke_keys(self) -> KeyRing[HpkeRecipient]:
        return KeyRing(self._current_id(KeyKind.HPKE), dict(self._hpke))

    def keks(self) -> KeyRing[KeyWrappingKey]:
        return KeyRing(self._current_id(KeyKind.KEK), dict(self._keks))

    def rotate(self, kind: KeyKind) -> str:
        key: Any
        kid: str
        if kind is KeyKind.SIGNING:
            signer = LocalSigningKey(Ed25519PrivateKey.generate())
            key, kid = signer, signer.key_id
        elif kind is KeyKind.HPKE:
            recipient = LocalHpkeRecipient(X25519PrivateKey.generate())
            key, kid = recipient, recipient.key_id
        else:
            kid = new_kek_id()
            key = KeyEncryptionKey(kid, os.urandom(KEK_BYTES))
        with self._lock:
            self._add(kind, kid, key)
        return kid

    def retire(self, kind: KeyKind, key_id: str) -> None:
        with self._lock:
            if self._current.get(kind) == key_id:
                raise KeystoreError(
                    f"{key_id} is the current {kind} key; rotate first, then retire it"
                )
            if self._keys[kind].pop(key_id, None) is None:
                raise KeystoreError(f"no {kind} key with id {key_id!r}")
            self._version += 1

    def stamp(self, kind: KeyKind) -> object:
        return self._version

    def list_keys(self, kind: KeyKind) -> list[KeyInfo]:
        current = self._current.get(kind)
        return [
            KeyInfo(kind, kid, kid == current, self._created.get(kid, ""))
            for kid in self._keys[kind]
        ]

    def close(self) -> None:
        """Nothing is held open."""

    def _add(self, kind: KeyKind, kid: str, key: Any) -> None:
        self._keys[kind][kid] = key
        self._current[kind] = kid
        self._created[kid] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._version += 1

    def _current_id(self, kind: KeyKind) -> str:
        if kind not in self._current or not self._keys[kind]:
            raise NoKeyError(f"no {kind} key was given")
        return self._current[kind]
