"""What the vector generators beside this file share: fixture keys, the HPKE suite, the JSON
shapes of keys, boxes and decoded messages, the check that every negative is refused, the
file's rendering and the command line (write, or ``--check``).

The generators run as scripts and are loaded by path from the tests; both ways, this folder is
on ``sys.path`` when they import this module.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf.message import Message

from gateway.crypto.errors import SealOpenError
from gateway.crypto.keyids import key_id
from gateway.crypto.sealing import SEAL_SUITE_NAME, SealedBox

KEM_ID, KDF_ID, AEAD_ID = 0x0020, 0x0001, 0x0003
HPKE_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
MIN_CIPHERTEXT = 32 + 16  # enc + AEAD tag
WARNING = (
    "TEST FIXTURE. The private keys in this file are published on purpose and derived from "
    "public labels: never use them, or anything sealed to them, outside tests."
)


def fixture_x25519_key(prefix: str, label: str) -> X25519PrivateKey:
    """A TEST FIXTURE X25519 key: SHA-256 of a public label as the raw private key."""
    return X25519PrivateKey.from_private_bytes(
        hashlib.sha256((prefix + label).encode("utf-8")).digest()
    )


def raw_private(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def raw_public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def fields_in_order(message: Message) -> dict[str, Any]:
    """A decoded message as JSON, its fields in declaration order, enums by name."""
    out: dict[str, Any] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if isinstance(value, Message):
            out[field.name] = fields_in_order(value)
        elif field.message_type is not None:
            out[field.name] = [fields_in_order(item) for item in value]
        elif field.enum_type is not None:
            out[field.name] = field.enum_type.values_by_number[value].name
        else:
            out[field.name] = value
    return out


def sealed_json(box: SealedBox) -> dict[str, Any]:
    return {
        "format_version": box.version,
        "suite": box.suite,
        "recipient_key_id": box.recipient_key_id,
        "ciphertext": box.ciphertext.hex(),
    }


def suite_json() -> dict[str, Any]:
    """The HPKE suite of sealed answers, as the files name it."""
    return {
        "name": SEAL_SUITE_NAME,
        "mode": "base",
        "kem_id": KEM_ID,
        "kdf_id": KDF_ID,
        "aead_id": AEAD_ID,
        "aad": "",
    }


def passes_format_checks(box: SealedBox, key: X25519PrivateKey, version: int) -> bool:
    """The checks docs/sealed-answers.md asks of an opener before any decryption."""
    return (
        box.version == version
        and box.suite == SEAL_SUITE_NAME
        and box.recipient_key_id == key_id(key.public_key())
        and len(box.ciphertext) >= MIN_CIPHERTEXT
    )


Opener = Callable[[SealedBox, X25519PrivateKey, Mapping[str, Any]], object]


def expect_refused(negative: Mapping[str, Any], open_box: Opener) -> None:
    """The gateway's opener (``open_box``, given the box, the key and the negative for its
    binding) refuses the negative; one marked ``hpke`` passes every format check and is
    refused by HPKE itself."""
    s = negative["sealed"]
    box = SealedBox(s["format_version"], s["suite"], s["recipient_key_id"],
                    bytes.fromhex(s["ciphertext"]))
    key = X25519PrivateKey.from_private_bytes(bytes.fromhex(negative["recipient_private_key"]))
    try:
        open_box(box, key, negative)
    except SealOpenError:
        pass
    else:
        raise AssertionError(f"{negative['name']}: opened, but must be refused")
    if negative["refused_by"] == "hpke":
        try:
            HPKE_SUITE.decrypt(box.ciphertext, key, info=bytes.fromhex(negative["info"]))
        except (InvalidTag, ValueError):
            return
        raise AssertionError(f"{negative['name']}: HPKE opened it")


def flip(data: bytes, position: int, bit: int) -> bytes:
    out = bytearray(data)
    out[position] ^= bit
    return bytes(out)


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def run(
    argv: Sequence[str] | None,
    doc: str | None,
    default_out: Path,
    build: Callable[[], Mapping[str, Any]],
    check: Callable[[Path], bool],
) -> int:
    """A generator's command line: write the file, or with ``--check`` verify it."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument("--check", action="store_true", help="verify, do not write")
    args = parser.parse_args(argv)
    if args.check:
        if check(args.out):
            print(f"{args.out}: up to date")
            return 0
        print(f"{args.out}: differs from what the generator makes", file=sys.stderr)
        return 1
    args.out.write_text(render(build()), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0
