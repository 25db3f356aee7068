"""The key-provider contract: where the gateway's own private keys live and how they are used.

Three kinds of gateway key sit behind a provider: the log-signing key (Ed25519, signs
checkpoints), the HPKE keys partners seal submissions to (X25519), and the key-encryption
keys that wrap per-case data keys (AES-256-GCM). A provider hands out *operations* on a key
(sign, open, wrap, unwrap), never its bytes, so that a hardware module can keep the key
inside it. Each kind is a :class:`KeyRing`: one current key that makes new signatures,
wraps and is advertised for sealing, and older keys that stay usable for verifying and
opening until they are retired. Every key has an id, and every output carries the id of
the key that made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from gateway.crypto.errors import KeystoreError

__all__ = [
    "HpkeRecipient",
    "KeyInfo",
    "KeyKind",
    "KeyProvider",
    "KeyRing",
    "KeyWrappingKey",
    "LogSigningKey",
]


class KeyKind(StrEnum):
    """The kinds of gateway key that rotate independently."""

    SIGNING = "signing"  # Ed25519: checkpoints of the accountability log
    HPKE = "hpke"  # X25519: what partners seal registrations and source answers to
    KEK = "kek"  # AES-256-GCM: wraps per-case data keys


class LogSigningKey(Protocol):
    """An Ed25519 key that signs checkpoints."""

    @property
    def key_id(self) -> str: ...

    def public_key(self) -> Ed25519PublicKey: ...

    def sign(self, message: bytes) -> bytes: ...


class HpkeRecipient(Protocol):
    """An X25519 key partners seal to (HPKE base mode, the suite of gateway.crypto.sealing)."""

    @property
    def key_id(self) -> str: ...

    def public_key(self) -> X25519PublicKey: ...

    def open(self, ciphertext: bytes, info: bytes) -> bytes:
        """Open HPKE ``enc || ct`` single-shot with empty AAD; raise SealOpenError."""
        ...


class KeyWrappingKey(Protocol):
    """A key-encryption key: wraps and unwraps per-case data keys."""

    @property
    def kek_id(self) -> str: ...

    def wrap(self, key_material: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        """Raise EnvelopeError when the blob does not open under this key."""
        ...


K = TypeVar("K")


@dataclass(frozen=True)
class KeyRing(Generic[K]):
    """The usable keys of one kind: ``current`` makes new outputs, all of ``keys`` (current
    included) open and verify what they made."""

    current_id: str
    keys: Mapping[str, K]

    def __post_init__(self) -> None:
        if self.current_id not in self.keys:
            raise KeystoreError(f"the current key {self.current_id} is not among the loaded keys")

    @property
    def current(self) -> K:
        return self.keys[self.current_id]

    def get(self, key_id: str) -> K:
        try:
            return self.keys[key_id]
        except KeyError:
            raise KeystoreError(f"no usable key with id {key_id!r}") from None


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown of a key: never its material.

    ``created`` is when the key was made, as precisely as the provider knows it (an ISO 8601
    time, or "" when unknown)."""

    kind: KeyKind
    key_id: str
    current: bool
    created: str


class KeyProvider(Protocol):
    """Loads the gateway's key rings and rotates or retires keys of one kind.

    A ring with no key yet raises :class:`~gateway.crypto.errors.NoKeyError`; ``rotate`` on
    such a ring makes its first key.
    """

    @property
    def name(self) -> str:
        """A short name for logs and metrics: ``file`` or ``pkcs11``."""
        ...

    def stamp(self, kind: KeyKind) -> object:
        """A cheap value that changes whenever the ring of ``kind`` changes (a key added or
        removed, the current key moved); compared for equality only."""
        ...

    def list_keys(self, kind: KeyKind) -> list[KeyInfo]:
        """The keys of ``kind``, oldest first; an empty list when there are none."""
        ...

    def close(self) -> None:
        """Release what the provider holds open (a token session); loaded keys stop working."""
        ...

    def signing_keys(self) -> KeyRing[LogSigningKey]: ...

    def hpke_keys(self) -> KeyRing[HpkeRecipient]: ...

    def keks(self) -> KeyRing[KeyWrappingKey]: ...

    def rotate(self, kind: KeyKind) -> str:
        """Make a new key of ``kind`` current; the previous one stays usable. Returns its id."""
        ...

    def retire(self, kind: KeyKind, key_id: str) -> None:
        """Remove a non-current key of ``kind``; what only it can open becomes unreadable."""
        ...
