"""Generate tests/vectors/sealed-answer-v2.json, the test vectors of sealed answers version 2.

Version 2 binds an answer to the request it answers: besides the disclosure (or triage) id,
recipient, purpose and key id, HPKE's ``info`` holds the case id and the nonce the client sent
(docs/sealed-answers.md, "Format version 2"). The file has disclosure records and triage
answers (``kind``), each under its own label. As for version 1 (make_sealed_vectors.py), the
plaintexts come from the gateway's own encoders and the boxes from gateway.crypto.sealing;
everything follows from the case table except the HPKE ephemeral keys, so the committed
ciphertexts are the vectors and ``--check`` rebuilds the file around them:

    python tests/vectors/make_sealed_vectors_v2.py            # write the file (new ciphertexts)
    python tests/vectors/make_sealed_vectors_v2.py --check    # verify the committed file

Besides the negatives of version 1 the file holds the ones version 2 exists for: another case
id, another nonce, a box of version 1 for the same answer (a downgrade, refused before
decryption), that box relabelled as version 2 (refused by HPKE), and a record opened as a
triage answer. The recipient private keys are TEST FIXTURES, as in version 1.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf.message import Message

from gateway.api.v1 import common_pb2, exchange_pb2
from gateway.broker.sealed_record import ReleasedValue, encode_record
from gateway.broker.sealed_triage import encode_triage_answer
from gateway.core import Effect
from gateway.crypto.keyids import key_id
from gateway.crypto.sealing import (
    BOUND_SEAL_FORMAT_VERSION,
    SEAL_SUITE_NAME,
    SealBinding,
    SealedBox,
    TriageBinding,
    open_sealed,
    open_sealed_triage,
    seal,
    seal_info,
    seal_triage,
    triage_seal_info,
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

VECTOR_FILE = Path(__file__).resolve().parent / "sealed-answer-v2.json"

INFO_LABELS = {"record": "ketenpoort/v2 sealed-record", "triage": "ketenpoort/v2 sealed-triage"}
_KEY_LABEL = "ketenpoort sealed-answer-v2 TEST FIXTURE key: "
_NONCE_LABEL = "ketenpoort sealed-answer-v2 TEST FIXTURE nonce: "
_WRONG_KEY = "wrong-recipient"
_DOWNGRADE = "downgraded-to-version-1"

Binding = SealBinding | TriageBinding


@dataclass(frozen=True)
class _Hit:
    partner_type: str
    answered: bool
    known: bool
    role: str


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    binding: Binding
    plaintext: bytes

    @property
    def kind(self) -> str:
        return "record" if isinstance(self.binding, SealBinding) else "triage"


def fixture_nonce(label: str, size: int) -> bytes:
    """A TEST FIXTURE nonce of ``size`` bytes, derived from a public label (a real client
    draws a fresh random one per request)."""
    return hashlib.shake_256((_NONCE_LABEL + label).encode("utf-8")).digest(size)


def fixture_key(label: str) -> X25519PrivateKey:
    """A TEST FIXTURE X25519 key: SHA-256 of a public label as the raw private key."""
    return fixture_x25519_key(_KEY_LABEL, label)


_POLICY = "sha256:" + hashlib.sha256(b"ketenpoort sealed-answer-v2 test policy").hexdigest()


def _record(binding: SealBinding, phase: str, values: Sequence[ReleasedValue]) -> bytes:
    return encode_record(
        disclosure_id=binding.disclosure_id,
        case_id=binding.case_id,
        recipient_id=binding.recipient_id,
        purpose=binding.purpose,
        phase=phase,
        issued_at="2025-03-03T09:30:00Z" if values else "",
        policy_version=_POLICY if values else "",
        values=values,
    )


def _triage(binding: TriageBinding, hits: Sequence[_Hit], known_anywhere: bool) -> bytes:
    return encode_triage_answer(
        triage_id=binding.triage_id,
        recipient_id=binding.recipient_id,
        purpose=binding.purpose,
        hits=hits,
        known_anywhere=known_anywhere,
    )


def _cases() -> tuple[Case, ...]:
    ascii_record = SealBinding(
        disclosure_id="d_5e1b7a0c9d2f4e6a8b3c1d0e2f4a6b8c",
        recipient_id="police",
        purpose="analysis_and_plan",
        case_id="c_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        request_nonce=fixture_nonce("record-ascii", 16),
    )
    non_ascii = SealBinding(
        disclosure_id="d_één-€-🔒-0002",
        recipient_id="ggz-’s-Hertogenbosch",
        purpose="casusoverleg-één",
        case_id="c_zaak-Ω-0002",
        request_nonce=fixture_nonce("record-non-ascii", 32),
    )
    empty = SealBinding(
        disclosure_id="d_00000000000000000000000000000003",
        recipient_id="om",
        purpose="monitoring",
        case_id="c_00000000000000000000000000000003",
        request_nonce=fixture_nonce("record-empty", 64),
    )
    hits = TriageBinding(
        triage_id="t_7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29",
        recipient_id="zvh",
        purpose="triage",
        case_id="c_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        request_nonce=fixture_nonce("triage-hits", 16),
    )
    masked = TriageBinding(
        triage_id="t_00000000000000000000000000000005",
        recipient_id="municipality",
        purpose="triage",
        case_id="c_00000000000000000000000000000005",
        request_nonce=fixture_nonce("triage-masked", 16),
    )
    return (
        Case(
            "record-ascii",
            "A case-meeting answer to the police: disclosed and masked fields, a 16-byte nonce.",
            ascii_record,
            _record(ascii_record, "case_meeting", (
                ReleasedValue("subject.name", Effect.DISCLOSE, None, "Jan de Vries", "available"),
                ReleasedValue("subject.date_of_birth", Effect.MASK, "year_only", "1984",
                              "available"),
                ReleasedValue("police.weapon_flag", Effect.DISCLOSE, None, "", "not_held"),
            )),
        ),
        Case(
            "record-non-ascii",
            "Ids, case id and purpose with 2-, 3- and 4-byte UTF-8 (NFC), a 32-byte nonce.",
            non_ascii,
            _record(non_ascii, "case_meeting", (
                ReleasedValue("subject.name", Effect.DISCLOSE, None, "Zoë Çelik-Lê Thị Hương",
                              "available"),
            )),
        ),
        Case(
            "record-empty",
            "Every field withheld; the longest nonce a gateway accepts (64 bytes).",
            empty,
            _record(empty, "", ()),
        ),
        Case(
            "triage-hits",
            "A triage answer with a hit per partner system asked, roles disclosed.",
            hits,
            _triage(hits, (
                _Hit("police", answered=True, known=True, role="suspect"),
                _Hit("ggz", answered=True, known=False, role=""),
                _Hit("housing_corporation", answered=False, known=False, role=""),
            ), known_anywhere=True),
        ),
        Case(
            "triage-masked",
            "A triage answer masked to hit/no-hit: no hits, only known_anywhere.",
            masked,
            _triage(masked, (), known_anywhere=True),
        ),
    )


CASES = _cases()


def kind_of(binding: Binding) -> str:
    return "record" if isinstance(binding, SealBinding) else "triage"


def info_of(binding: Binding, kid: str) -> bytes:
    if isinstance(binding, SealBinding):
        return seal_info(binding, kid)
    return triage_seal_info(binding, kid)


def open_box(box: SealedBox, key: X25519PrivateKey, binding: Binding) -> bytes:
    if isinstance(binding, SealBinding):
        return open_sealed(box, key, binding)
    return open_sealed_triage(box, key, binding)


def _seal(plaintext: bytes, key: X25519PrivateKey, binding: Binding) -> SealedBox:
    if isinstance(binding, SealBinding):
        return seal(plaintext, key.public_key(), binding)
    return seal_triage(plaintext, key.public_key(), binding)


def binding_json(binding: Binding) -> dict[str, str]:
    reference = (
        {"disclosure_id": binding.disclosure_id}
        if isinstance(binding, SealBinding)
        else {"triage_id": binding.triage_id}
    )
    return {
        **reference,
        "recipient_id": binding.recipient_id,
        "purpose": binding.purpose,
        "case_id": binding.case_id,
        "request_nonce": binding.request_nonce.hex(),
    }


def binding_from_json(kind: str, data: Mapping[str, str]) -> Binding:
    """The binding an opener expects, from a vector's ``kind`` and ``binding``."""
    common = {
        "recipient_id": data["recipient_id"],
        "purpose": data["purpose"],
        "case_id": data.get("case_id", ""),
        "request_nonce": bytes.fromhex(data.get("request_nonce", "")),
    }
    if kind == "record":
        return SealBinding(disclosure_id=data["disclosure_id"], **common)
    return TriageBinding(triage_id=data["triage_id"], **common)


def _readable(kind: str, plaintext: bytes) -> dict[str, Any]:
    message: Message = (
        common_pb2.DisclosedRecord() if kind == "record" else exchange_pb2.TriageAnswer()
    )
    message.ParseFromString(plaintext)
    return fields_in_order(message)


def _unbound(binding: Binding) -> Binding:
    """The version 1 binding of the same answer: no case id, no nonce."""
    return replace(binding, case_id="", request_nonce=b"")


def _as_triage(binding: SealBinding) -> TriageBinding:
    return TriageBinding(
        triage_id=binding.disclosure_id,
        recipient_id=binding.recipient_id,
        purpose=binding.purpose,
        case_id=binding.case_id,
        request_nonce=binding.request_nonce,
    )


def _negatives(
    case: Case, key: X25519PrivateKey, box: SealedBox, downgraded: SealedBox
) -> list[dict[str, Any]]:
    b = case.binding
    wrong = fixture_key(_WRONG_KEY)
    ct = box.ciphertext
    nonce = b.request_nonce
    other_reference: Binding = (
        replace(b, disclosure_id=b.disclosure_id + "x")
        if isinstance(b, SealBinding)
        else replace(b, triage_id=b.triage_id + "x")
    )
    attempts: list[tuple[str, str, SealedBox, X25519PrivateKey, Binding]] = [
        ("other-reference", "Opened for another disclosure or triage id.", box, key,
         other_reference),
        ("other-recipient-id", "Opened by another recipient id.",
         box, key, replace(b, recipient_id=b.recipient_id + "x")),
        ("other-purpose", "Opened for another purpose.",
         box, key, replace(b, purpose=b.purpose + "x")),
        ("other-case-id", "Opened by a client that asked about another case.",
         box, key, replace(b, case_id=b.case_id + "x")),
        ("other-nonce", "Opened by a client that sent another nonce (last byte differs).",
         box, key, replace(b, request_nonce=flip(nonce, len(nonce) - 1, 0x01))),
        ("other-nonce-length",
         "The nonce one byte shorter (or, at the shortest size, one zero byte longer): the "
         "length prefix keeps it apart from the one sent.",
         box, key, replace(b, request_nonce=nonce[:-1] if len(nonce) > 16 else nonce + b"\0")),
        ("flipped-byte-enc", "First byte of enc flipped (xor 0x01).",
         replace(box, ciphertext=flip(ct, 0, 0x01)), key, b),
        ("flipped-byte-tag", "Last byte, in the AEAD tag, flipped (xor 0x01).",
         replace(box, ciphertext=flip(ct, len(ct) - 1, 0x01)), key, b),
        ("truncated", "Ciphertext cut to 47 bytes, shorter than enc + tag.",
         replace(box, ciphertext=ct[:47]), key, b),
        ("wrong-key-relabelled",
         "Another private key, and the box relabelled with that key's id: only HPKE itself "
         "can refuse it.",
         replace(box, recipient_key_id=key_id(wrong.public_key())), wrong, b),
        ("labelled-version-1",
         "This version 2 box labelled format_version 1: an opener that sent a nonce accepts "
         "only version 2, before any decryption.",
         replace(box, version=1), key, b),
        (_DOWNGRADE,
         "The same answer sealed in version 1 (bound to neither case nor nonce), as a gateway "
         "answers a request whose nonce a relay stripped: refused before decryption.",
         downgraded, key, b),
        (f"{_DOWNGRADE}-relabelled",
         "That version 1 box relabelled format_version 2: it passes the format checks and "
         "HPKE refuses it, since version 2 info has another label and the nonce.",
         replace(downgraded, version=BOUND_SEAL_FORMAT_VERSION), key, b),
        ("unknown-suite", "Another suite name, otherwise unchanged.",
         replace(box, suite="DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/AES-256-GCM"), key, b),
    ]
    if isinstance(b, SealBinding):
        attempts.append(
            ("record-as-triage",
             "The record opened as a triage answer with the same strings: the labels differ.",
             box, key, _as_triage(b))
        )
    return [
        _attempt(f"{case.name}/{suffix}", case, description, attempt_box, attempt_key, binding)
        for suffix, description, attempt_box, attempt_key, binding in attempts
    ]


def _attempt(
    name: str,
    case: Case,
    description: str,
    box: SealedBox,
    key: X25519PrivateKey,
    binding: Binding,
) -> dict[str, Any]:
    """A negative vector: what an opener holds and expects, and the box it is handed."""
    return {
        "name": name,
        "case": case.name,
        "kind": kind_of(binding),
        "description": description,
        "refused_by": (
            "hpke" if passes_format_checks(box, key, BOUND_SEAL_FORMAT_VERSION) else "format"
        ),
        "recipient_private_key": raw_private(key).hex(),
        "binding": binding_json(binding),
        "info": info_of(binding, key_id(key.public_key())).hex(),
        "sealed": sealed_json(box),
    }


def _box(kid: str, version: int, ciphertext_hex: str) -> SealedBox:
    return SealedBox(version, SEAL_SUITE_NAME, kid, bytes.fromhex(ciphertext_hex))


def build(ciphertexts: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The vector document; ``ciphertexts`` (case name, or case/downgraded-to-version-1, ->
    hex) reuses committed ones."""
    positives: list[dict[str, Any]] = []
    negatives: list[dict[str, Any]] = []
    for case in CASES:
        key = fixture_key(case.name)
        kid = key_id(key.public_key())
        unbound = _unbound(case.binding)
        if ciphertexts is None:
            box = _seal(case.plaintext, key, case.binding)
            downgraded = _seal(case.plaintext, key, unbound)
        else:
            box = _box(kid, BOUND_SEAL_FORMAT_VERSION, ciphertexts[case.name])
            downgraded = _box(kid, 1, ciphertexts[f"{case.name}/{_DOWNGRADE}"])
        if open_box(box, key, case.binding) != case.plaintext:
            raise AssertionError(f"{case.name}: sealed box does not open to its plaintext")
        if open_box(downgraded, key, unbound) != case.plaintext:
            raise AssertionError(f"{case.name}: the version 1 box does not open as version 1")
        positives.append(
            {
                "name": case.name,
                "kind": case.kind,
                "description": case.description,
                "recipient_private_key": raw_private(key).hex(),
                "recipient_public_key": raw_public(key).hex(),
                "recipient_key_id": kid,
                "binding": binding_json(case.binding),
                "info": info_of(case.binding, kid).hex(),
                "plaintext": case.plaintext.hex(),
                "message": _readable(case.kind, case.plaintext),
                "sealed": sealed_json(box),
            }
        )
        negatives.extend(_negatives(case, key, box, downgraded))
    for negative in negatives:
        expect_refused(negative, _open_as_named)
    return {
        "WARNING": WARNING,
        "description": (
            "Test vectors of the Ketenpoort sealed-answer format, version 2 "
            "(docs/sealed-answers.md): disclosure records and triage answers bound to the "
            "request's nonce and case id. Every case must open to its plaintext; every negative "
            "must be refused."
        ),
        "generator": "tests/vectors/make_sealed_vectors_v2.py",
        "format_version": BOUND_SEAL_FORMAT_VERSION,
        "suite": suite_json(),
        "info_labels": INFO_LABELS,
        "cases": positives,
        "negatives": negatives,
    }


def _open_as_named(box: SealedBox, key: X25519PrivateKey, negative: Mapping[str, Any]) -> bytes:
    return open_box(box, key, binding_from_json(negative["kind"], negative["binding"]))


def committed_ciphertexts(text: str) -> dict[str, str]:
    document = json.loads(text)
    found = {c["name"]: c["sealed"]["ciphertext"] for c in document["cases"]}
    found.update(
        {n["name"]: n["sealed"]["ciphertext"] for n in document["negatives"]
         if n["name"].endswith("/" + _DOWNGRADE)}
    )
    return found


def check(path: Path = VECTOR_FILE) -> bool:
    """Whether ``path`` is exactly what the generator makes around its own ciphertexts."""
    text = path.read_text(encoding="utf-8")
    return render(build(committed_ciphertexts(text))) == text


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv, __doc__, VECTOR_FILE, build, check)


if __name__ == "__main__":
    raise SystemExit(main())
