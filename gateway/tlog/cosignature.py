"""Witness cosignatures on checkpoints: C2SP ``tlog-cosignature`` (``cosignature/v1``, Ed25519).

A cosignature is one more signature line on a checkpoint note::

    — <witness name> base64(key ID || timestamp || Ed25519 signature)

The key ID is SHA-256(name || "\\n" || 0x04 || raw public key)[:4]; the timestamp is a
big-endian u64 of POSIX seconds; the signature covers::

    cosignature/v1
    time <timestamp, decimal>
    <the checkpoint's note text, with its final newline, without signature lines>

It says: as of that time, the consistent tree head with the largest size the witness has seen
for this log (the origin line) has this root. A witness here is a partner of the gateway, named
by its partner id. The message starts with ``cosignature/v1\\n``: neither a JWS signing input
(base64url and dots only) nor a checkpoint or key statement can be one, so a partner may sign
cosignatures with its registered Ed25519 token key without a signature of one kind ever passing
for the other.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.tlog.notes import (
    SIGNATURE_DASH,
    CheckpointError,
    note_text,
    signature_lines,
    split_signature_line,
    with_signature_lines,
)

COSIGNATURE_HEADER = "cosignature/v1"
_COSIGNATURE_V1 = b"\x04"
_SIGNATURE_SIZE = 4 + 8 + 64
_MAX_TIMESTAMP = 2**63 - 1


class CosignatureError(CheckpointError):
    """A cosignature line that is malformed, or made by a key other than the one named."""


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A verified cosignature: who (witness name), with which key (its ``sha256:`` pin or id),
    and when (the signed timestamp)."""

    witness: str
    key_id: str
    signed_at: datetime
    line: str


def witness_key_hash(name: str, public_key: Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(name.encode() + b"\n" + _COSIGNATURE_V1 + raw).digest()[:4]


def cosigned_message(note: str, timestamp: int) -> bytes:
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{note_text(note)}".encode()


def cosign(note: str, name: str, key: Ed25519PrivateKey, at: datetime) -> str:
    """The signature line of witness ``name`` over the checkpoint ``note`` at time ``at``."""
    _check_name(name)
    timestamp = int(at.astimezone(UTC).timestamp())
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise ValueError("the cosignature time is out of range")
    signature = key.sign(cosigned_message(note, timestamp))
    blob = witness_key_hash(name, key.public_key()) + struct.pack(">Q", timestamp) + signature
    return f"{SIGNATURE_DASH}{name} {base64.b64encode(blob).decode()}"


def add_cosignature(note: str, line: str) -> str:
    """``note`` with the cosignature ``line`` added (once)."""
    return with_signature_lines(note, [line])


def verify_cosignature(
    note: str, line: str, name: str, keys: Iterable[Ed25519PublicKey],
    key_id: Callable[[Ed25519PublicKey], str],
) -> Cosignature:
    """Check that ``line`` is a cosignature of ``note`` by witness ``name`` with one of
    ``keys``; raises CosignatureError. ``key_id`` names the key that verified."""
    signed_name, raw = split_signature_line(line)
    if signed_name != name:
        raise CosignatureError(f"the cosignature is by {signed_name!r}, not by {name!r}")
    if len(raw) != _SIGNATURE_SIZE:
        raise CosignatureError("not a cosignature/v1 signature (wrong length)")
    (timestamp,) = struct.unpack(">Q", raw[4:12])
    if timestamp > _MAX_TIMESTAMP:
        raise CosignatureError("the cosignature's timestamp is out of range")
    message = cosigned_message(note, timestamp)
    for key in keys:
        if witness_key_hash(name, key) != raw[:4]:
            continue
        try:
            key.verify(raw[12:], message)
        except InvalidSignature:
            continue
        return Cosignature(name, key_id(key), datetime.fromtimestamp(timestamp, UTC), line)
    raise CosignatureError(f"no registered key of {name!r} verifies the cosignature")


def cosignatures_of(
    note: str, witness_keys: Mapping[str, Sequence[Ed25519PublicKey]],
    key_id: Callable[[Ed25519PublicKey], str],
) -> list[Cosignature]:
    """The cosignatures on ``note`` that verify against ``witness_keys`` (name -> keys), one
    per witness; lines of other signers (the log itself, unknown witnesses) are passed over."""
    found: dict[str, Cosignature] = {}
    for line in signature_lines(note):
        try:
            name, _ = split_signature_line(line)
        except CheckpointError:
            continue
        keys = witness_keys.get(name)
        if not keys or name in found:
            continue
        try:
            found[name] = verify_cosignature(note, line, name, keys, key_id)
        except CosignatureError:
            continue
    return list(found.values())


def _check_name(name: str) -> None:
    if not name or " " in name or "\n" in name or "+" in name or not name.isprintable():
        raise ValueError("a witness name is one printable word without spaces or '+'")
