"""The committed sealed-answer vectors (tests/vectors/sealed-answer-v1.json) against the
gateway's own sealing code and the partner-side opener.

Once committed, the vectors pin the format: a change to ``info``, key ids, the suite or the
plaintext encoding fails here even if sealing and opening still agree with each other.
"""

from __future__ import annotations

import json
import unicodedata
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf import json_format

from adapters.sealed import open_disclosure
from gateway.api.v1 import common_pb2, exchange_pb2
from gateway.crypto import SEAL_FORMAT_VERSION, SEAL_SUITE_NAME, SealOpenError, key_id
from gateway.crypto.sealing import SealBinding, SealedBox, open_sealed, seal_info
from tests.crypto.vector_generators import VECTOR_DIR, load_generator

VECTORS: dict[str, Any] = json.loads(
    (VECTOR_DIR / "sealed-answer-v1.json").read_text(encoding="utf-8")
)
CASES: list[dict[str, Any]] = VECTORS["cases"]
NEGATIVES: list[dict[str, Any]] = VECTORS["negatives"]


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


def _key(vector: dict[str, Any]) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(bytes.fromhex(vector["recipient_private_key"]))


def _binding(vector: dict[str, Any]) -> SealBinding:
    return SealBinding(**vector["binding"])


def _box(vector: dict[str, Any]) -> SealedBox:
    s = vector["sealed"]
    return SealedBox(
        version=s["format_version"],
        suite=s["suite"],
        recipient_key_id=s["recipient_key_id"],
        ciphertext=bytes.fromhex(s["ciphertext"]),
    )


def _response(vector: dict[str, Any]) -> exchange_pb2.DisclosureResponse:
    s = vector["sealed"]
    return exchange_pb2.DisclosureResponse(
        disclosure_id=vector["binding"]["disclosure_id"],
        sealed=common_pb2.SealedRecord(
            format_version=s["format_version"],
            suite=s["suite"],
            recipient_key_id=s["recipient_key_id"],
            ciphertext=bytes.fromhex(s["ciphertext"]),
        ),
    )


def _generator() -> ModuleType:
    return load_generator("make_sealed_vectors")


def test_the_file_says_its_keys_are_test_fixtures() -> None:
    assert next(iter(VECTORS)) == "WARNING"
    assert "TEST FIXTURE" in VECTORS["WARNING"]


def test_the_file_names_the_version_and_suite_the_gateway_seals_with() -> None:
    assert VECTORS["format_version"] == SEAL_FORMAT_VERSION == 1
    assert VECTORS["suite"] == {
        "name": SEAL_SUITE_NAME,
        "mode": "base",
        "kem_id": 0x0020,
        "kdf_id": 0x0001,
        "aead_id": 0x0003,
        "aad": "",
    }
    assert VECTORS["info_label"] == "ketenpoort/v1 sealed-record"


def test_the_cases_cover_non_ascii_bindings_and_empty_records() -> None:
    assert len(CASES) >= 3
    bindings = [c["binding"] for c in CASES]
    for part in ("disclosure_id", "recipient_id", "purpose"):
        assert any(not b[part].isascii() for b in bindings), part
    assert any(c["record"]["fields"] == [] for c in CASES)
    assert any(f["value"] == "" for c in CASES for f in c["record"]["fields"])
    # Stored NFC, so that the NFD negative really differs only in normalisation.
    assert all(unicodedata.is_normalized("NFC", b["purpose"]) for b in bindings)


def test_every_case_has_binding_tamper_and_key_negatives() -> None:
    kinds = ("other-disclosure-id", "other-recipient-id", "other-purpose", "flipped-byte-tag",
             "wrong-key-relabelled", "unknown-format-version")
    names = set(_ids(NEGATIVES))
    for case in CASES:
        for kind in kinds:
            assert f"{case['name']}/{kind}" in names


def test_the_file_is_exactly_what_the_generator_makes() -> None:
    # Rebuilt around the committed ciphertexts: a hand edit, or a change in how the gateway
    # encodes records, info or key ids, shows up as a difference.
    assert _generator().check(VECTOR_DIR / "sealed-answer-v1.json")


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_public_key_and_key_id_follow_from_the_private_key(case: dict[str, Any]) -> None:
    public = _key(case).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw.hex() == case["recipient_public_key"]
    assert key_id(public) == case["recipient_key_id"] == case["sealed"]["recipient_key_id"]


@pytest.mark.parametrize("vector", CASES + NEGATIVES, ids=_ids(CASES + NEGATIVES))
def test_seal_info_reproduces_the_info_bytes(vector: dict[str, Any]) -> None:
    kid = key_id(_key(vector).public_key())
    info = seal_info(_binding(vector), kid, SEAL_FORMAT_VERSION)
    assert info.hex() == vector["info"]


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_open_sealed_opens_each_case_to_its_plaintext(case: dict[str, Any]) -> None:
    assert open_sealed(_box(case), _key(case), _binding(case)) == bytes.fromhex(case["plaintext"])


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_open_disclosure_gives_the_record_described(case: dict[str, Any]) -> None:
    record = open_disclosure(
        _response(case),
        _key(case),
        recipient_id=case["binding"]["recipient_id"],
        purpose=case["binding"]["purpose"],
    )
    assert record.SerializeToString(deterministic=True) == bytes.fromhex(case["plaintext"])
    readable = json_format.MessageToDict(
        record, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    assert readable == case["record"]


@pytest.mark.parametrize("negative", NEGATIVES, ids=_ids(NEGATIVES))
def test_open_sealed_refuses_each_negative(negative: dict[str, Any]) -> None:
    with pytest.raises(SealOpenError):
        open_sealed(_box(negative), _key(negative), _binding(negative))


@pytest.mark.parametrize("negative", NEGATIVES, ids=_ids(NEGATIVES))
def test_open_disclosure_refuses_each_negative(negative: dict[str, Any]) -> None:
    with pytest.raises(SealOpenError):
        open_disclosure(
            _response(negative),
            _key(negative),
            recipient_id=negative["binding"]["recipient_id"],
            purpose=negative["binding"]["purpose"],
        )
