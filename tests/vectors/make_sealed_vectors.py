"""Generate tests/vectors/sealed-answer-v1.json, the test vectors of the sealed-answer format.

The plaintexts are made by the gateway's own encoder (gateway.broker.sealed_record) and sealed
with gateway.crypto.sealing. Everything in the file follows from the case table below, except
the HPKE ephemeral key that :func:`gateway.crypto.sealing.seal` draws for every seal:
re-running the generator therefore writes the same keys, bindings, ``info`` bytes and
plaintexts, but new ciphertexts. Once the file is committed its ciphertexts are the vectors;
regenerate only when the cases change.

    python tests/vectors/make_sealed_vectors.py            # write the file (new ciphertexts)
    python tests/vectors/make_sealed_vectors.py --check    # verify the committed file

``--check`` rebuilds the file around the committed ciphertexts and fails on any difference,
so a hand edit or a change in how the gateway encodes records or ``info`` shows up.

The recipient private keys are TEST FIXTURES: they are derived from public labels, printed in
the file, and must never protect anything.
"""

from __future__ import annotations

import hashlib
import json
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.api.v1 import common_pb2
from gateway.broker.sealed_record import ReleasedValue, encode_record
from gateway.core import Effect
from gateway.crypto.keyids import key_id
from gateway.crypto.sealing import (
    SEAL_FORMAT_VERSION,
    SEAL_SUITE_NAME,
    SealBinding,
    SealedBox,
    open_sealed,
    seal,
    seal_info,
)

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path (the tests): vector_files sits beside this file
    sys.path.insert(0, _HERE)
from vector_files import (  # noqa: E402
    WARNING,
    expect_refused,
    fields_in_order,
    fixture_x25519_key,
    flip,
    passes_format_checks,
    raw_private,
    raw_public,
    render,
    run,
    sealed_json,
    suite_json,
)

VECTOR_FILE = Path(__file__).resolve().parent / "sealed-answer-v1.json"

INFO_LABEL = b"ketenpoort/v1 sealed-record"
_KEY_LABEL = "ketenpoort sealed-answer-v1 TEST FIXTURE key: "
_WRONG_KEY = "wrong-recipient"


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    binding: SealBinding
    case_id: str
    phase: str
    issued_at: str
    policy_version: str
    values: tuple[ReleasedValue, ...]


def _value(
    field: str, effect: Effect, value: str, availability: str = "available", transform: str = ""
) -> ReleasedValue:
    return ReleasedValue(field, effect, transform or None, value, availability)


_POLICY = "sha256:" + hashlib.sha256(b"ketenpoort sealed-answer-v1 test policy").hexdigest()
_LONG_SUMMARY = " ".join(
    f"Melding {n}: overlast en bedreiging in de woning, politie ter plaatse, geen aanhouding."
    for n in range(1, 13)
)

CASES: tuple[Case, ...] = (
    Case(
        name="ascii-case-meeting",
        description="A case-meeting answer to the police: disclosed and masked fields, ASCII.",
        binding=SealBinding(
            disclosure_id="d_3f6c1a9e0b7d4c2e8f1a5b6c7d8e9f01",
            recipient_id="police",
            purpose="analysis_and_plan",
        ),
        case_id="c_9a8b7c6d5e4f30211203f4e5d6c7b8a9",
        phase="case_meeting",
        issued_at="2025-03-03T09:30:00.250000Z",
        policy_version=_POLICY,
        values=(
            _value("subject.name", Effect.DISCLOSE, "Jan de Vries"),
            _value("subject.date_of_birth", Effect.MASK, "1984", transform="year_only"),
            _value("subject.postcode", Effect.MASK, "7511", transform="postcode_area"),
            _value("police.weapon_flag", Effect.DISCLOSE, "no"),
        ),
    ),
    Case(
        name="non-ascii-binding-and-values",
        description=(
            "Disclosure id, recipient id, purpose and values with 2-, 3- and 4-byte UTF-8 "
            "(NFC); info carries the exact UTF-8 bytes, without normalisation."
        ),
        binding=SealBinding(
            disclosure_id="d_één-€-🔒-0002",
            recipient_id="ggz-’s-Hertogenbosch",
            purpose="casusoverleg-één",
        ),
        case_id="c_zaak-Ω-0002",
        phase="case_meeting",
        issued_at="2025-03-03T10:00:00Z",
        policy_version=_POLICY,
        values=(
            _value("subject.name", Effect.DISCLOSE, "Zoë Çelik-Lê Thị Hương"),
            _value("subject.address", Effect.DISCLOSE, "Śląskastraat 3, ’s-Hertogenbosch 🏠"),
            _value("case.concerns", Effect.MASK, "Zorg – ‘Code Rood’ …", transform="truncate"),
        ),
    ),
    Case(
        name="no-released-fields",
        description=(
            "Every field withheld and every optional string empty: the record holds only the "
            "three bound ids, so proto3 writes nothing else."
        ),
        binding=SealBinding(
            disclosure_id="d_00000000000000000000000000000003",
            recipient_id="om",
            purpose="monitoring",
        ),
        case_id="",
        phase="",
        issued_at="",
        policy_version="",
        values=(),
    ),
    Case(
        name="empty-and-long-values",
        description=(
            "Released fields without a value (not held, source unavailable, an empty masked "
            "value) next to a value of about 1 KB, so the AEAD runs over many blocks."
        ),
        binding=SealBinding(
            disclosure_id="d_4444444444444444444444444444444a",
            recipient_id="municipality",
            purpose="acute_safety",
        ),
        case_id="c_44444444444444444444444444444444",
        phase="monitoring",
        issued_at="2025-12-31T23:59:59.999999Z",
        policy_version=_POLICY,
        values=(
            _value("mun.debts", Effect.DISCLOSE, "", availability="not_held"),
            _value("ggz.care_involved", Effect.MASK, "", "source_unavailable", "presence"),
            _value("case.notes", Effect.MASK, "", transform="truncate"),
            _value("police.antecedents_summary", Effect.DISCLOSE, _LONG_SUMMARY),
        ),
    ),
)


def fixture_key(label: str) -> X25519PrivateKey:
    """A TEST FIXTURE X25519 key: SHA-256 of a public label as the raw private key."""
    return fixture_x25519_key(_KEY_LABEL, label)


def _plaintext(case: Case) -> bytes:
    return encode_record(
        disclosure_id=case.binding.disclosure_id,
        case_id=case.case_id,
        recipient_id=case.binding.recipient_id,
        purpose=case.binding.purpose,
        phase=case.phase,
        issued_at=case.issued_at,
        policy_version=case.policy_version,
        values=case.values,
    )


def _readable(plaintext: bytes) -> dict[str, Any]:
    """The record as JSON: every field in field-number order, empty ones too, enums by name."""
    record = common_pb2.DisclosedRecord()
    record.ParseFromString(plaintext)
    return fields_in_order(record)


def _binding_json(binding: SealBinding) -> dict[str, str]:
    return {
        "disclosure_id": binding.disclosure_id,
        "recipient_id": binding.recipient_id,
        "purpose": binding.purpose,
    }


def _attempt(
    name: str,
    case: Case,
    description: str,
    box: SealedBox,
    key: X25519PrivateKey,
    binding: SealBinding,
) -> dict[str, Any]:
    """A negative vector: what an opener holds and expects, and the box it is handed."""
    info = seal_info(binding, key_id(key.public_key()), SEAL_FORMAT_VERSION)
    return {
        "name": name,
        "case": case.name,
        "description": description,
        "refused_by": "hpke" if passes_format_checks(box, key, SEAL_FORMAT_VERSION) else "format",
        "recipient_private_key": raw_private(key).hex(),
        "binding": _binding_json(binding),
        "info": info.hex(),
        "sealed": sealed_json(box),
    }


def _negatives(case: Case, key: X25519PrivateKey, box: SealedBox) -> list[dict[str, Any]]:
    b = case.binding
    wrong = fixture_key(_WRONG_KEY)
    ct = box.ciphertext
    attempts: list[tuple[str, str, SealedBox, X25519PrivateKey, SealBinding]] = [
        ("other-disclosure-id", "Opened for another disclosure id.",
         box, key, replace(b, disclosure_id=b.disclosure_id + "x")),
        ("other-recipient-id", "Opened by another recipient id.",
         box, key, replace(b, recipient_id=b.recipient_id + "x")),
        ("other-purpose", "Opened for another purpose.",
         box, key, replace(b, purpose=b.purpose + "x")),
        ("shifted-boundary",
         "The same concatenated text split differently between disclosure id and recipient "
         "id; the length prefixes keep the two info strings apart.",
         box, key, replace(b, disclosure_id=b.disclosure_id + b.recipient_id[0],
                           recipient_id=b.recipient_id[1:])),
        ("flipped-byte-enc", "First byte of enc flipped (xor 0x01).",
         replace(box, ciphertext=flip(ct, 0, 0x01)), key, b),
        ("flipped-byte-ct", "First byte after enc flipped (xor 0x80).",
         replace(box, ciphertext=flip(ct, 32, 0x80)), key, b),
        ("flipped-byte-tag", "Last byte, in the AEAD tag, flipped (xor 0x01).",
         replace(box, ciphertext=flip(ct, len(ct) - 1, 0x01)), key, b),
        ("truncated", "Ciphertext cut to 47 bytes, shorter than enc + tag.",
         replace(box, ciphertext=ct[:47]), key, b),
        ("wrong-key", "Another private key; the box still names the right recipient key id.",
         box, wrong, b),
        ("wrong-key-relabelled",
         "Another private key, and the box relabelled with that key's id: only HPKE itself "
         "can refuse it.",
         replace(box, recipient_key_id=key_id(wrong.public_key())), wrong, b),
        ("unknown-format-version",
         "format_version 2, otherwise unchanged: openers refuse a version they do not know "
         "before any decryption.",
         replace(box, version=SEAL_FORMAT_VERSION + 1), key, b),
        ("unknown-suite", "Another suite name, otherwise unchanged: openers refuse it.",
         replace(box, suite="DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/AES-256-GCM"), key, b),
    ]
    nfd = unicodedata.normalize("NFD", b.purpose)
    if nfd != b.purpose:
        attempts.append(
            ("purpose-nfd",
             "The purpose in Unicode NFD instead of the NFC it was sealed with: info holds "
             "UTF-8 bytes as given, so canonically equal text does not open.",
             box, key, replace(b, purpose=nfd))
        )
    return [
        _attempt(f"{case.name}/{suffix}", case, description, attempt_box, attempt_key, binding)
        for suffix, description, attempt_box, attempt_key, binding in attempts
    ]


def build(ciphertexts: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The vector document; ``ciphertexts`` (case name -> hex) reuses committed ones."""
    positives: list[dict[str, Any]] = []
    negatives: list[dict[str, Any]] = []
    for case in CASES:
        key = fixture_key(case.name)
        plaintext = _plaintext(case)
        kid = key_id(key.public_key())
        if ciphertexts is None:
            box = seal(plaintext, key.public_key(), case.binding)
        else:
            box = SealedBox(
                version=SEAL_FORMAT_VERSION,
                suite=SEAL_SUITE_NAME,
                recipient_key_id=kid,
                ciphertext=bytes.fromhex(ciphertexts[case.name]),
            )
        if open_sealed(box, key, case.binding) != plaintext:
            raise AssertionError(f"{case.name}: sealed box does not open to its plaintext")
        positives.append(
            {
                "name": case.name,
                "description": case.description,
                "recipient_private_key": raw_private(key).hex(),
                "recipient_public_key": raw_public(key).hex(),
                "recipient_key_id": kid,
                "binding": _binding_json(case.binding),
                "info": seal_info(case.binding, kid, SEAL_FORMAT_VERSION).hex(),
                "plaintext": plaintext.hex(),
                "record": _readable(plaintext),
                "sealed": sealed_json(box),
            }
        )
        negatives.extend(_negatives(case, key, box))
    for negative in negatives:
        expect_refused(negative, _open_as_named)
    return {
        "WARNING": WARNING,
        "description": (
            "Test vectors of the Ketenpoort sealed-answer format (docs/sealed-answers.md). "
            "Every case must open to its plaintext; every negative must be refused."
        ),
        "generator": "tests/vectors/make_sealed_vectors.py",
        "format_version": SEAL_FORMAT_VERSION,
        "suite": suite_json(),
        "info_label": INFO_LABEL.decode("ascii"),
        "cases": positives,
        "negatives": negatives,
    }


def _open_as_named(box: SealedBox, key: X25519PrivateKey, negative: Mapping[str, Any]) -> bytes:
    return open_sealed(box, key, SealBinding(**negative["binding"]))


def committed_ciphertexts(text: str) -> dict[str, str]:
    return {c["name"]: c["sealed"]["ciphertext"] for c in json.loads(text)["cases"]}


def check(path: Path = VECTOR_FILE) -> bool:
    """Whether ``path`` is exactly what the generator makes around its own ciphertexts."""
    text = path.read_text(encoding="utf-8")
    return render(build(committed_ciphertexts(text))) == text


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv, __doc__, VECTOR_FILE, build, check)


if __name__ == "__main__":
    raise SystemExit(main())
