"""The gateway's own keys, from the key providers the configuration names.

The log-signing, HPKE and key-encryption keys come from a provider each (files in the key
directory, or a PKCS#11 token: :mod:`gateway.crypto.provider_settings`); the pseudonym key is
always a file, ``DIR/gateway/pseudonym.key``. Every private file must be mode 0600 (no group
or other access); a wider mode is refused rather than silently used, because a key that
others could read must be treated as leaked.

A keystore keeps the rings it loaded. :meth:`Keystore.refresh` looks whether a provider's
rings changed (a ``stat`` per file, or one search in the token) and loads only those, so a
gateway follows a rotation that ``ketenpoort keys rotate`` made in the shared key directory
or token without a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.crypto._files import read_private_file
from gateway.crypto._pem import load_ed25519_public_key
from gateway.crypto.errors import KeystoreError
from gateway.crypto.file_provider import FileKeyProvider
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.local_keys import KEK_BYTES, KeyEncryptionKey, new_kek_id
from gateway.crypto.memory_provider import MemoryKeyProvider
from gateway.crypto.provider import (
    HpkeRecipient,
    KeyKind,
    KeyProvider,
    KeyRing,
    KeyWrappingKey,
    LogSigningKey,
)
from gateway.crypto.provider_settings import KeyProviderSettings, open_providers

__all__ = [
    "KEK_BYTES",
    "PSEUDONYM_KEY_BYTES",
    "KeyEncryptionKey",
    "Keystore",
    "new_kek_id",
    "rotate_kek",
]

PSEUDONYM_KEY_BYTES = 32


@dataclass(frozen=True)
class _Loaded:
    """Everything a keystore hands out, replaced as a whole by a refresh."""

    signing: KeyRing[LogSigningKey]
    hpke: KeyRing[HpkeRecipient]
    keks: KeyRing[KeyEncryptionKey]
    retired: tuple[Ed25519PublicKey, ...]
    stamps: Mapping[KeyKind, object]


class Keystore:
    """The gateway's keys: key-encryption keys, pseudonym key, log-signing and HPKE keys.

    Build with :meth:`open` from a key directory (and provider settings), or with
    ``providers`` of one's own; ``signing_key``/``hpke_private_key``/``keks`` build an
    in-memory keystore (tests, benchmarks)."""

    def __init__(
        self,
        *,
        pseudonym_key: bytes,
        providers: Mapping[KeyKind, KeyProvider] | None = None,
        keys_dir: Path | None = None,
        keks: Iterable[KeyEncryptionKey] = (),
        current_kek_id: str | None = None,
        signing_key: Ed25519PrivateKey | None = None,
        hpke_private_key: X25519PrivateKey | None = None,
    ) -> None:
        if len(pseudonym_key) != PSEUDONYM_KEY_BYTES:
            raise KeystoreError(f"the pseudonym key must be {PSEUDONYM_KEY_BYTES} bytes")
        if providers is None:
            memory = MemoryKeyProvider(
                signing_keys=[signing_key] if signing_key is not None else [],
                hpke_keys=[hpke_private_key] if hpke_private_key is not None else [],
                keks=keks,
                current_kek_id=current_kek_id,
            )
            providers = dict.fromkeys(KeyKind, memory)
        missing = [kind.value for kind in KeyKind if kind not in providers]
        if missing:
            raise KeystoreError(f"no key provider for {', '.join(missing)} keys")
        self._providers: dict[KeyKind, KeyProvider] = dict(providers)
        self._pseudonym_key = pseudonym_key
        self._retired_dir = None if keys_dir is None else GatewayKeyPaths.under(keys_dir)
        self._refresh_lock = threading.Lock()
        self._loaded = self._load(previous=None)

    @classmethod
    def open(cls, path: Path, settings: KeyProviderSettings | None = None) -> Keystore:
        """Load the keys for the key directory ``path`` (see :mod:`gateway.crypto.layout`),
        from the providers ``settings`` name (default: all files)."""
        paths = GatewayKeyPaths.under(path)
        pseudonym_key = read_private_file(paths.pseudonym_key)
        if len(pseudonym_key) != PSEUDONYM_KEY_BYTES:
            raise KeystoreError(
                f"key file {paths.pseudonym_key} must hold exactly {PSEUDONYM_KEY_BYTES} bytes"
            )
        providers = open_providers(path, settings)
        try:
            return cls(pseudonym_key=pseudonym_key, providers=providers, keys_dir=path)
        except BaseException:
            _close_all(providers.values())
            raise

    # -- key-encryption keys --------------------------------------------------------------

    @property
    def current_kek(self) -> KeyEncryptionKey:
        """The key that wraps new data keys."""
        return self._loaded.keks.current

    @property
    def kek_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._loaded.keks.keys))

    def kek(self, kek_id: str) -> KeyEncryptionKey:
        try:
            return self._loaded.keks.keys[kek_id]
        except KeyError:
            raise KeystoreError(f"no key-encryption key with id {kek_id!r}") from None

    def keks(self) -> KeyRing[KeyEncryptionKey]:
        return self._loaded.keks

    # -- pseudonyms, signing, HPKE ---------------------------------------------------------

    @property
    def pseudonym_key(self) -> bytes:
        return self._pseudonym_key

    @property
    def signing_key(self) -> LogSigningKey:
        """The current log-signing key (``signing_keys().current``)."""
        return self._loaded.signing.current

    @property
    def signing_key_id(self) -> str:
        return self._loaded.signing.current_id

    def signing_keys(self) -> KeyRing[LogSigningKey]:
        """The log-signing keys: the current one signs checkpoints, all verify."""
        return self._loaded.signing

    def log_verification_keys(self) -> tuple[Ed25519PublicKey, ...]:
        """Every key a checkpoint of this gateway's log may carry a signature of: the current
        log-signing key first, the rest of its ring, then retired keys kept in the key
        directory (``signing/retired/``)."""
        loaded = self._loaded
        ring = [loaded.signing.current.public_key()] + [
            key.public_key()
            for kid, key in sorted(loaded.signing.keys.items())
            if kid != loaded.signing.current_id
        ]
        return _unique([*ring, *loaded.retired])

    def hpke_keys(self) -> KeyRing[HpkeRecipient]:
        """The keys partners seal to: the current one is advertised, all open."""
        return self._loaded.hpke

    @property
    def hpke_key_id(self) -> str:
        return self._loaded.hpke.current_id

    # -- providers ------------------------------------------------------------------------

    def provider(self, kind: KeyKind) -> KeyProvider:
        return self._providers[kind]

    def refresh(self) -> bool:
        """Load again the rings whose provider reports a change; True when a ring (its keys
        or its current key) or the retired signing keys changed.

        Cheap when nothing changed: a ``stat`` per key file, or one search in a token. A ring
        that no longer loads (a half-copied file, say) raises KeystoreError and leaves every
        key in force as it was."""
        with self._refresh_lock:
            before = self._loaded
            after = self._load(previous=before)
            self._loaded = after
        return _shape(before) != _shape(after)

    def close(self) -> None:
        """Release what the providers hold open (a token session)."""
        _close_all(self._providers.values())

    def _load(self, previous: _Loaded | None) -> _Loaded:
        # Stamps are taken before the rings are read, so a change made meanwhile is seen by
        # the next refresh.
        stamps = {kind: self._providers[kind].stamp(kind) for kind in KeyKind}

        def unchanged(kind: KeyKind) -> bool:
            return previous is not None and previous.stamps.get(kind) == stamps[kind]

        same_signing = previous is not None and unchanged(KeyKind.SIGNING)
        signing = (
            previous.signing if previous is not None and same_signing
            else self._providers[KeyKind.SIGNING].signing_keys()
        )
        hpke = (
            previous.hpke if previous is not None and unchanged(KeyKind.HPKE)
            else self._providers[KeyKind.HPKE].hpke_keys()
        )
        keks = (
            previous.keks if previous is not None and unchanged(KeyKind.KEK)
            else _nominal(self._providers[KeyKind.KEK].keks())
        )
        # A signing key is retired in the same step that changes its ring's stamp.
        retired = (
            previous.retired if previous is not None and same_signing else self._retired_keys()
        )
        return _Loaded(signing, hpke, keks, retired, stamps)

    def _retired_keys(self) -> tuple[Ed25519PublicKey, ...]:
        paths = self._retired_dir
        if paths is None or not paths.signing_retired_dir.is_dir():
            return ()
        return tuple(
            load_ed25519_public_key(f) for f in sorted(paths.signing_retired_dir.glob("*.pub.pem"))
        )

    def __repr__(self) -> str:
        loaded = self._loaded
        names = sorted({p.name for p in self._providers.values()})
        return (
            f"Keystore(providers={names}, current_kek={loaded.keks.current_id!r}, "
            f"keks={len(loaded.keks.keys)}, signing_key_id={loaded.signing.current_id!r}, "
            f"hpke_key_id={loaded.hpke.current_id!r})"
        )


def rotate_kek(path: Path) -> str:
    """Add a new key-encryption key under ``path/gateway/kek`` and make it current.

    Older keys stay, so data keys they wrapped still open; re-wrap those and retire the old
    key (``ketenpoort keys retire kek ID``). Returns the new key's id."""
    return FileKeyProvider(path).rotate(KeyKind.KEK)


def _nominal(ring: KeyRing[KeyWrappingKey]) -> KeyRing[KeyEncryptionKey]:
    """The ring with its keys typed as :class:`KeyEncryptionKey`, the type callers hold."""
    keys: dict[str, KeyEncryptionKey] = {}
    for kid, kek in ring.keys.items():
        if not isinstance(kek, KeyEncryptionKey):
            raise KeystoreError(f"key-encryption key {kid} is not a KeyEncryptionKey")
        keys[kid] = kek
    return KeyRing(ring.current_id, keys)


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _unique(keys: Iterable[Ed25519PublicKey]) -> tuple[Ed25519PublicKey, ...]:
    seen: set[bytes] = set()
    out: list[Ed25519PublicKey] = []
    for key in keys:
        raw = _raw(key)
        if raw not in seen:
            seen.add(raw)
            out.append(key)
    return tuple(out)


def _shape(loaded: _Loaded) -> tuple[object, ...]:
    return (
        loaded.signing.current_id,
        frozenset(loaded.signing.keys),
        loaded.hpke.current_id,
        frozenset(loaded.hpke.keys),
        loaded.keks.current_id,
        frozenset(loaded.keks.keys),
        frozenset(_raw(k) for k in loaded.retired),
    )


def _close_all(providers: Iterable[KeyProvider]) -> None:
    done: set[int] = set()
    for provider in providers:
        if id(provider) not in done:
            done.add(id(provider))
            provider.close()
