"""Signed checkpoints: the gateway's Ed25519 signature over a tree size and Merkle root.

The note format (a C2SP ``tlog-checkpoint`` in a C2SP ``signed-note``) and its checks live in
:mod:`gateway.tlog.notes`, which partners' witnesses use too; this module signs.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.crypto.keyids import key_pin
from gateway.crypto.local_keys import LocalSigningKey
from gateway.crypto.provider import LogSigningKey
from gateway.tlog.notes import (
    SIGNATURE_DASH,
    Checkpoint,
    CheckpointError,
    checkpoint_text,
    format_time,
    note_key_hash,
    open_checkpoint,
    parse_time,
)

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "CheckpointSigner",
    "checkpoint_text",
    "note_key_hash",
    "open_checkpoint",
]

@dataclass(frozen=True, slots=True)
class _SigningState:
    key: LogSigningKey
    public_key: Ed25519PublicKey
    key_id: str
    key_hash: bytes


class CheckpointSigner:
    """Signs checkpoints with the gateway's log-signing key (made once, used per checkpoint).

    The key is a :class:`~gateway.crypto.provider.LogSigningKey` (in memory or in a token);
    an ``Ed25519PrivateKey`` is taken as one held in memory. :meth:`use` moves the signer to
    another key, as after a rotation; a checkpoint being signed meanwhile keeps the key it
    started with."""

    def __init__(self, key: LogSigningKey | Ed25519PrivateKey, origin: str) -> None:
        if not origin or "\n" in origin or not origin.isprintable():
            raise ValueError("the origin must be one printable line")
        self.origin = origin
        self._state = self._state_for(key)

    def use(self, key: LogSigningKey | Ed25519PrivateKey) -> None:
        """Sign the next checkpoints with ``key``."""
        # One attribute replaced at once: a signing thread sees the old key or the new one.
        self._state = self._state_for(key)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._state.public_key

    @property
    def key_id(self) -> str:
        """The key pin (``sha256:`` of the public key) that checkpoints carry."""
        return self._state.key_id

    def sign(self, tree_size: int, root_hash: bytes, at: datetime) -> Checkpoint:
        state = self._state
        at = at.astimezone(UTC)
        text = checkpoint_text(self.origin, tree_size, root_hash, at)
        signature = state.key.sign(text.encode())
        blob = base64.b64encode(state.key_hash + signature).decode()
        note = f"{text}\n{SIGNATURE_DASH}{self.origin} {blob}\n"
        return Checkpoint(self.origin, tree_size, root_hash, parse_time(format_time(at)),
                          state.key_id, note)

    def _state_for(self, key: LogSigningKey | Ed25519PrivateKey) -> _SigningState:
        signer: LogSigningKey = LocalSigningKey(key) if isinstance(key, Ed25519PrivateKey) else key
        public = signer.public_key()
        return _SigningState(signer, public, key_pin(public), note_key_hash(self.origin, public))
