"""Encrypting and opening free texts (hold reasons, break-glass justifications, review
comments) under the data keys of their text class; see ``gateway.crypto.free_text``.

Synchronous, like the stores it calls: use cases run it through ``asyncio.to_thread``. A key
is unwrapped for each text and never kept, so a shredded key is gone from this process too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.broker.context import CaseKeys
from gateway.crypto.envelope import DataKey, WrappedKey, unwrap_text_key, wrap_text_key
from gateway.crypto.free_text import (
    KeyScope,
    TextClass,
    TextKind,
    text_aad,
    text_digest,
    text_digest_key,
    text_key_id,
)
from gateway.store.errors import CaseShredded

__all__ = ["FreeTexts", "SealedText", "TextKeys"]


class TextKeys(Protocol):
    """Where the wrapped text keys are kept (``gateway.store.text_keys.TextKeyStore``)."""

    def get(self, key_id: str) -> bytes | None: ...

    def add(
        self, key_id: str, text_class: str, case_id: str, wrapped: bytes, at: datetime
    ) -> bytes: ...


@dataclass(frozen=True, slots=True)
class SealedText:
    """A free text as stored: the id of its key and its ciphertext."""

    key_id: str
    ciphertext: bytes


class FreeTexts:
    def __init__(
        self, store: TextKeys, keys: CaseKeys, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._keys = keys
        self._clock = clock
        # Derived once: the pseudonym key never changes while a gateway runs.
        self._digest_key = text_digest_key(keys.pseudonym_key)

    def digest(self, kind: TextKind, text: str) -> str:
        """What the log keeps of a text: its keyed digest (``hmac-sha256:<hex>``)."""
        return text_digest(self._digest_key, kind, text)

    def seal(
        self,
        text: str,
        *,
        text_class: TextClass,
        kind: TextKind,
        row_id: str,
        scope: KeyScope,
        scope_id: str,
    ) -> SealedText:
        """Encrypt ``text`` for the row ``row_id`` under the key of ``text_class`` in
        ``scope``, made on first use. Raises ``gateway.store.errors.CaseShredded`` for the
        key of a shredded case."""
        return self.seal_bytes(
            text.encode("utf-8"),
            text_class=text_class, kind=kind, row_id=row_id, scope=scope, scope_id=scope_id,
        )

    def seal_bytes(
        self,
        plaintext: bytes,
        *,
        text_class: TextClass,
        kind: TextKind,
        row_id: str,
        scope: KeyScope,
        scope_id: str,
    ) -> SealedText:
        key_id = text_key_id(text_class, scope, scope_id)
        key = self._key(key_id, text_class, scope_id if scope is KeyScope.CASE else "")
        return SealedText(key_id, key.encrypt(plaintext, text_aad(key_id, kind, row_id)))

    def open(self, sealed: SealedText, *, kind: TextKind, row_id: str) -> str | None:
        """The text, or None once its key was shredded with its case. Raises
        ``EnvelopeError`` for a ciphertext that does not open (altered, or moved)."""
        plaintext = self.open_bytes(sealed, kind=kind, row_id=row_id)
        return None if plaintext is None else plaintext.decode("utf-8")

    def open_bytes(self, sealed: SealedText, *, kind: TextKind, row_id: str) -> bytes | None:
        key = self._stored_key(sealed.key_id)
        if key is None:
            return None
        return key.decrypt(sealed.ciphertext, text_aad(sealed.key_id, kind, row_id))

    def open_many(
        self, items: Sequence[tuple[SealedText, str]], *, kind: TextKind
    ) -> list[str | None]:
        """Each (text, row id) opened as ``open`` does; each key read and unwrapped once."""
        keys: dict[str, DataKey | None] = {}
        opened: list[str | None] = []
        for sealed, row_id in items:
            if sealed.key_id not in keys:
                keys[sealed.key_id] = self._stored_key(sealed.key_id)
            key = keys[sealed.key_id]
            aad = text_aad(sealed.key_id, kind, row_id)
            opened.append(None if key is None else key.decrypt(sealed.ciphertext, aad).decode())
        return opened

    def _stored_key(self, key_id: str) -> DataKey | None:
        stored = self._store.get(key_id)
        if not stored:
            return None
        return unwrap_text_key(WrappedKey.from_bytes(stored), self._keys, key_id)

    def _key(self, key_id: str, text_class: TextClass, case_id: str) -> DataKey:
        stored = self._store.get(key_id)
        if stored == b"":
            # Emptied when its case was shredded: nothing is written under it any more.
            raise CaseShredded(case_id or key_id)
        if stored is None:
            fresh = DataKey.generate()
            wrapped = wrap_text_key(fresh, self._keys.current_kek, key_id).to_bytes()
            stored = self._store.add(key_id, text_class.value, case_id, wrapped, self._clock())
            if stored == wrapped:
                return fresh
        return unwrap_text_key(WrappedKey.from_bytes(stored), self._keys, key_id)
