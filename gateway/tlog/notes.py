"""C2SP checkpoints in C2SP signed notes: parsing and signature checks, for both sides.

A checkpoint is a C2SP ``tlog-checkpoint`` carried in a C2SP ``signed-note``, the format Go's
checksum database, Sigstore and Tessera logs publish, so existing note verifiers and witnesses
read it. The note text is::

    <origin>
    <tree size, decimal>
    <root hash, base64>
    time <RFC 3339 UTC>

followed by a blank line and signature lines ``— <name> <base64(key hash || signature)>``.
The log's key hash is the first four bytes of SHA-256(origin || "\\n" || 0x01 || public key),
0x01 naming Ed25519; the signature covers the text up to and including its last newline. The
``time`` extension line makes the checkpoint's age part of what is signed. Witness
cosignatures (:mod:`gateway.tlog.cosignature`) are further signature lines on the same note.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.crypto.keyids import key_pin
from gateway.tlog.merkle import HASH_SIZE

_ED25519 = b"\x01"
SIGNATURE_DASH = "\u2014 "
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


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

    @property
    def text(self) -> str:
        """The signed text: the note up to and including the line before the blank line."""
        return note_text(self.note)


def format_time(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and ``Z``: one spelling per instant."""
    return moment.astimezone(UTC).isoformat("T", "microseconds")[:26] + "Z"


def parse_time(text: str) -> datetime:
    if _TIME.fullmatch(text) is None:
        raise ValueError("time is not ISO-8601 UTC with microseconds and Z")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def note_key_hash(origin: str, public_key: Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(origin.encode() + b"\n" + _ED25519 + raw).digest()[:4]


def checkpoint_text(origin: str, tree_size: int, root_hash: bytes, at: datetime) -> str:
    root = base64.b64encode(root_hash).decode()
    return f"{origin}\n{tree_size}\n{root}\ntime {format_time(at)}\n"


def note_text(note: str) -> str:
    """The signed text of ``note`` (up to the blank line, with its last newline)."""
    text, separator, _ = note.partition("\n\n")
    if not separator:
        raise CheckpointError("not a signed note: no blank line before the signatures")
    return text + "\n"


def signature_lines(note: str) -> list[str]:
    _, separator, signatures = note.partition("\n\n")
    if not separator:
        raise CheckpointError("not a signed note: no blank line before the signatures")
    return signatures.splitlines()


def with_signature_lines(note: str, lines: Iterable[str]) -> str:
    """``note`` with the signature ``lines`` it lacks added after its own (a cosigned note)."""
    present = signature_lines(note)
    added = [line for line in lines if line not in present]
    return note + "".join(line + "\n" for line in added)


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


def split_signature_line(line: str) -> tuple[str, bytes]:
    """The key name and the decoded ``key hash || signature`` of one signature line."""
    if not line.startswith(SIGNATURE_DASH):
        raise CheckpointError("signature line does not start with an em dash")
    name, _, blob = line[len(SIGNATURE_DASH) :].rpartition(" ")
    try:
        return name, base64.b64decode(blob, validate=True)
    except binascii.Error as exc:
        raise CheckpointError("signature is not base64") from exc


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
    name, raw = split_signature_line(line)
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
