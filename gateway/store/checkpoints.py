"""Signed checkpoints: the gateway's Ed25519 signature over a tree size and Merkle root.

A checkpoint is a C2SP ``tlog-checkpoint`` carried in a C2SP ``signed-note``, the format Go's
checksum database, Sigstore and Tessera logs publish, so existing note verifiers and witnesses
read it. The note text is::

    <origin>
    <tree size, decimal>
    <root hash, base64>
    time <RFC 3339 UTC>

followed by a blank line and one signature line ``— <origin> <base64(key hash || signature)>``.
The key hash is the first four bytes of SHA-256(origin || "\\n" || 0x01 || public key), 0x01
naming Ed25519; the signature covers the text up to and including its last newline. The
``time`` extension line makes the checkpoint's age part of what is signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.crypto.keyids import key_pin
from gateway.crypto.local_keys import LocalSigningKey
from gateway.crypto.provider import LogSigningKey
from gateway.store.audit_event import format_time, parse_time
from gateway.store.merkle import HASH_SIZE

_ED25519 = b"\x01"
_DASH = "\u2014 "


class CheckpointError(ValueError):
    """A note that is not a well-formed checkpoint, or whose signature does not verify."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    created_at: datetime
    key_id: str
    note: str


def note_key_hash(origin: str, public_key: Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(origin.encode() + b"\n" + _ED25519 + raw).digest()[:4]


def checkpoint_text(origin: str, tree_size: int, root_hash: bytes, at: datetime) -> str:
    root = base64.b64encode(root_hash).decode()
    return f"{origin}\n{tree_size}\n{root}\ntime {format_time(at)}\n"


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
        note = f"{text}\n{_DASH}{self.origin} {blob}\n"
        return Checkpoint(self.origin, tree_size, root_hash, parse_time(format_time(at)),
                          state.key_id, note)

    def _state_for(self, key: LogSigningKey | Ed25519PrivateKey) -> _SigningState:
        signer: LogSigningKey = LocalSigningKey(key) if isinstance(key, Ed25519PrivateKey) else key
        public = signer.public_key()
        return _SigningState(signer, public, key_pin(public), note_key_hash(self.origin, public))


def open_checkpoint(
    note: str, trusted: Iterable[Ed25519PublicKey], *, require_signature: bool = True
) -> Checkpoint:
    """Parse ``note`` and check its signature against one of the ``trusted`` keys.

    Raises ``CheckpointError`` naming what is wrong. Signature lines of unknown keys are
    ignored (a witness may have cosigned); at least one trusted key must have signed, unless
    ``require_signature`` is false (then key_id is "" when no trusted key signed).
    """
    text, separator, signatures = note.partition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise CheckpointError("not a signed note: no blank line before the signatures")
    text += "\n"
    lines = text.splitlines()
    if len(lines) < 3:
        raise CheckpointError("a checkpoint has an origin, a tree size and a root hash")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    # isdigit() alone admits other scripts' digits and superscripts, which int() reads or
    # refuses with a ValueError; the format is ASCII decimal.
    if not (size_text.isascii() and size_text.isdigit()) or (
        size_text != "0" and size_text.startswith("0")
    ):
        raise CheckpointError("tree size is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as exc:
        raise CheckpointError("root hash is not base64") from exc
    if len(root) != HASH_SIZE:
        raise CheckpointError("root hash is not 32 bytes")
    created = _signed_time(lines[3:])
    keys = [(note_key_hash(origin, k), k) for k in trusted]
    for line in signatures.splitlines():
        key_id = _verified_by(line, origin, text, keys)
        if key_id is not None:
            return Checkpoint(origin, int(size_text), root, created, key_id, note)
    if not require_signature:
        return Checkpoint(origin, int(size_text), root, created, "", note)
    raise CheckpointError("no signature by a trusted log key verifies this checkpoint")


def _signed_time(extensions: list[str]) -> datetime:
    for line in extensions:
        if line.startswith("time "):
            try:
                return parse_time(line[5:])
            except ValueError as exc:
                raise CheckpointError("checkpoint time is not RFC 3339 UTC") from exc
    raise CheckpointError("checkpoint has no time line")


def _verified_by(
    line: str, origin: str, text: str, keys: list[tuple[bytes, Ed25519PublicKey]]
) -> str | None:
    if not line.startswith(_DASH):
        raise CheckpointError("signature line does not start with an em dash")
    name, _, blob = line[len(_DASH) :].rpartition(" ")
    try:
        raw = base64.b64decode(blob, validate=True)
    except binascii.Error as exc:
        raise CheckpointError("signature is not base64") from exc
    if name != origin or len(raw) != 4 + 64:
        return None
    for key_hash, key in keys:
        if raw[:4] == key_hash:
            try:
                key.verify(raw[4:], text.encode())
            except InvalidSignature:
                continue
            return key_pin(key)
    return None
