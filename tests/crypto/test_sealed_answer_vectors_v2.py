"""The committed version 2 sealed-answer vectors (tests/vectors/sealed-answer-v2.json) against
the gateway's own sealing code and the partner-side openers.

Version 2 binds an answer to the request's nonce and case id; the vectors pin the ``info``
encoding byte for byte (the nonce as raw bytes, length-prefixed) and hold the negatives this
version exists for: another case, another nonce, a version 1 box of the same answer.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf import json_format

from adapters.sealed import open_disclosure, open_triage
from gateway.api.v1 import common_pb2, exchange_pb2
from gateway.crypto import BOUND_SEAL_FORMAT_VERSION, SEAL_SUITE_NAME, SealOpenError, key_id
from gateway.crypto.sealing import (
    SealBinding,
    SealedBox,
    TriageBinding,
    open_sealed,
    open_sealed_triage,
    seal_info,
    triage_seal_info,
)
from tests.crypto.vector_generators import VECTOR_DIR, load_generator

VECTORS: dict[str, Any] = json.loads(
    (VECTOR_DIR / "sealed-answer-v2.json").read_text(encoding="utf-8")
)
CASES: list[dict[str, Any]] = VECTORS["cases"]
NEGATIVES: list[dict[str, Any]] = VECTORS["negatives"]

Binding = SealBinding | TriageBinding


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


def _key(vector: dict[str, Any]) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(bytes.fromhex(vector["recipient_private_key"]))


def _binding(vector: dict[str, Any]) -> Binding:
    b = vector["binding"]
    common = {
        "recipient_id": b["recipient_id"],
        "purpose": b["purpose"],
        "case_id": b["case_id"],
        "request_nonce": bytes.fromhex(b["request_nonce"]),
    }
    if vector["kind"] == "record":
        return SealBinding(disclosure_id=b["disclosure_id"], **common)
    return TriageBinding(triage_id=b["triage_id"], **common)


def _box(vector: dict[str, Any]) -> SealedBox:
    s = vector["sealed"]
    return SealedBox(s["format_version"], s["suite"], s["recipient_key_id"],
                     bytes.fromhex(s["ciphertext"]))


def _open(vector: dict[str, Any]) -> bytes:
    binding = _binding(vector)
    if isinstance(binding, SealBinding):
        return open_sealed(_box(vector), _key(vector), binding)
    return open_sealed_triage(_box(vector), _key(vector), binding)


def _open_as_client(
    vector: dict[str, Any],
) -> common_pb2.DisclosedRecord | exchange_pb2.TriageAnswer:
    binding = _binding(vector)
    s = vector["sealed"]
    sealed = common_pb2.SealedRecord(
        format_version=s["format_version"], suite=s["suite"],
        recipient_key_id=s["recipient_key_id"], ciphertext=bytes.fromhex(s["ciphertext"]),
    )
    expected: dict[str, Any] = {
        "recipient_id": binding.recipient_id,
        "purpose": binding.purpose,
        "case_id": binding.case_id,
        "request_nonce": binding.request_nonce,
    }
    if isinstance(binding, SealBinding):
        response = exchange_pb2.DisclosureResponse(
            disclosure_id=binding.disclosure_id, sealed=sealed
        )
        return open_disclosure(response, _key(vector), **expected)
    triage = exchange_pb2.TriageResponse(triage_id=binding.triage_id, sealed=sealed)
    return open_triage(triage, _key(vector), **expected)


def _generator() -> ModuleType:
    return load_generator("make_sealed_vectors_v2")


def test_the_file_says_its_keys_are_test_fixtures() -> None:
    assert next(iter(VECTORS)) == "WARNING"
    assert "TEST FIXTURE" in VECTORS["WARNING"]


def test_the_file_names_version_2_its_suite_and_labels() -> None:
    assert VECTORS["format_version"] == BOUND_SEAL_FORMAT_VERSION == 2
    assert VECTORS["suite"]["name"] == SEAL_SUITE_NAME
    assert VECTORS["suite"]["mode"] == "base" and VECTORS["suite"]["aad"] == ""
    assert VECTORS["info_labels"] == {
        "record": "ketenpoort/v2 sealed-record",
        "triage": "ketenpoort/v2 sealed-triage",
    }


def test_the_cases_cover_both_kinds_every_nonce_size_and_non_ascii() -> None:
    assert {c["kind"] for c in CASES} == {"record", "triage"}
    sizes = {len(bytes.fromhex(c["binding"]["request_nonce"])) for c in CASES}
    assert {16, 64} <= sizes
    assert any(not c["binding"]["case_id"].isascii() for c in CASES)


def test_every_case_has_the_request_binding_negatives() -> None:
    kinds = ("other-case-id", "other-nonce", "other-nonce-length", "downgraded-to-version-1",
             "downgraded-to-version-1-relabelled", "labelled-version-1", "other-reference")
    names = set(_ids(NEGATIVES))
    for case in CASES:
        for kind in kinds:
            assert f"{case['name']}/{kind}" in names
    downgrades = [n for n in NEGATIVES if n["name"].endswith("/downgraded-to-version-1")]
    assert downgrades and all(n["sealed"]["format_version"] == 1 for n in downgrades)
    assert all(n["refused_by"] == "format" for n in downgrades)


def test_the_file_is_exactly_what_the_generator_makes() -> None:
    assert _generator().check(VECTOR_DIR / "sealed-answer-v2.json")


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_public_key_and_key_id_follow_from_the_private_key(case: dict[str, Any]) -> None:
    public = _key(case).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw.hex() == case["recipient_public_key"]
    assert key_id(public) == case["recipient_key_id"] == case["sealed"]["recipient_key_id"]


@pytest.mark.parametrize("vector", CASES + NEGATIVES, ids=_ids(CASES + NEGATIVES))
def test_the_info_bytes_are_reproduced(vector: dict[str, Any]) -> None:
    kid = key_id(_key(vector).public_key())
    binding = _binding(vector)
    info = (
        seal_info(binding, kid) if isinstance(binding, SealBinding)
        else triage_seal_info(binding, kid)
    )
    assert info.hex() == vector["info"]


def test_the_info_layout_is_the_documented_one() -> None:
    # docs/sealed-answers.md, "Format version 2": label, then len32-prefixed version,
    # disclosure id, recipient id, purpose, key id, case id and the nonce's raw bytes.
    case = CASES[0]
    b = case["binding"]
    nonce = bytes.fromhex(b["request_nonce"])
    parts = [b"2", b["disclosure_id"].encode(), b["recipient_id"].encode(),
             b["purpose"].encode(), case["recipient_key_id"].encode(), b["case_id"].encode(),
             nonce]
    expected = b"ketenpoort/v2 sealed-record" + b"".join(
        len(p).to_bytes(4, "big") + p for p in parts
    )
    assert bytes.fromhex(case["info"]) == expected


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_each_case_opens_to_its_plaintext(case: dict[str, Any]) -> None:
    assert _open(case) == bytes.fromhex(case["plaintext"])


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_the_client_opener_gives_the_message_described(case: dict[str, Any]) -> None:
    message = _open_as_client(case)
    assert message.SerializeToString(deterministic=True) == bytes.fromhex(case["plaintext"])
    readable = json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    assert readable == case["message"]


@pytest.mark.parametrize("negative", NEGATIVES, ids=_ids(NEGATIVES))
def test_each_negative_is_refused(negative: dict[str, Any]) -> None:
    with pytest.raises(SealOpenError):
        _open(negative)
    with pytest.raises(SealOpenError):
        _open_as_client(negative)
