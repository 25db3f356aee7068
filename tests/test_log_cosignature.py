"""Witness cosignatures follow C2SP tlog-cosignature (cosignature/v1), checked here by a second
implementation written from the specification alone, with hashlib and cryptography only."""

from __future__ import annotations

import base64
import hashlib
import struct
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.crypto.keyids import key_pin
from gateway.store.checkpoints import CheckpointSigner
from gateway.tlog.cosignature import (
    CosignatureError,
    add_cosignature,
    cosign,
    cosignatures_of,
    verify_cosignature,
)
from gateway.tlog.notes import open_checkpoint

ORIGIN = "zvh.example/ketenpoort/accountability-log"
AT = datetime(2026, 12, 7, 1, 0, 0, tzinfo=UTC)


def _note() -> str:
    log_key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    return CheckpointSigner(log_key, ORIGIN).sign(42, bytes(range(32)), AT).note


def _spec_verify(note: str, line: str, name: str, public: Ed25519PublicKey) -> int:
    """C2SP tlog-cosignature, section by section; returns the signed timestamp."""
    body = note.split("\n\n", 1)[0] + "\n"
    assert line.startswith("\u2014 " + name + " ")
    blob = base64.b64decode(line.rsplit(" ", 1)[1], validate=True)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert blob[:4] == hashlib.sha256(name.encode() + b"\n\x04" + raw).digest()[:4]
    (timestamp,) = struct.unpack(">Q", blob[4:12])
    message = b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + body.encode()
    public.verify(blob[12:], message)  # raises InvalidSignature
    return int(timestamp)


def test_a_cosignature_checks_with_an_implementation_from_the_spec() -> None:
    note = _note()
    witness = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
    line = cosign(note, "police", witness, AT)
    assert len(base64.b64decode(line.rsplit(" ", 1)[1])) == 4 + 8 + 64
    assert _spec_verify(note, line, "police", witness.public_key()) == int(AT.timestamp())
    cosigned = add_cosignature(note, line)
    # The log's own signature still verifies on the cosigned note; the line is ignored there.
    log_key = Ed25519PrivateKey.from_private_bytes(bytes(range(32))).public_key()
    assert open_checkpoint(cosigned, [log_key]).tree_size == 42
    found = cosignatures_of(cosigned, {"police": [witness.public_key()]}, key_pin)
    assert [(c.witness, c.signed_at) for c in found] == [("police", AT)]


def test_a_cosignature_binds_the_witness_the_key_and_the_checkpoint() -> None:
    note = _note()
    witness = Ed25519PrivateKey.generate()
    line = cosign(note, "police", witness, AT)
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(CosignatureError):
        verify_cosignature(note, line, "ggz", [witness.public_key()], key_pin)
    with pytest.raises(CosignatureError):
        verify_cosignature(note, line, "police", [other], key_pin)
    changed = note.replace("\n42\n", "\n41\n")
    with pytest.raises(CosignatureError):
        verify_cosignature(changed, line, "police", [witness.public_key()], key_pin)
    assert cosignatures_of(add_cosignature(changed, line), {"police": [witness.public_key()]},
                           key_pin) == []
