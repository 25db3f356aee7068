"""The signed-source-answer vectors (tests/vectors/signed-source-answer-v2.json): checked by the
gateway's own code, and by an independent implementation (node:crypto signatures, @hpke/*
HPKE; tests/vectors/verify_signed_answers.mjs) in both directions: Node verifies and opens the
committed answers, and signs and seals fresh ones the gateway must accept.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.crypto.errors import SealOpenError
from gateway.crypto.source_answers import SourceAnswerBinding
from gateway.crypto.submissions import SealedSubmission
from tests.crypto.test_sealed_answer_node import (  # noqa: F401 (a fixture)
    RUN_TIMEOUT_S,
    node_modules,
)
from tests.crypto.vector_generators import VECTOR_DIR, load_generator

VECTOR_FILE = VECTOR_DIR / "signed-source-answer-v2.json"
VECTORS: dict[str, Any] = json.loads(VECTOR_FILE.read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = VECTORS["cases"]
NEGATIVES: list[dict[str, Any]] = VECTORS["negatives"]
SCRIPT = VECTOR_DIR / "verify_signed_answers.mjs"


def _generator() -> ModuleType:
    return load_generator("make_signed_answer_vectors")


GENERATOR = _generator()


def _box(sealed: dict[str, Any]) -> SealedSubmission:
    return SealedSubmission(
        version=sealed["format_version"],
        suite=sealed["suite"],
        gateway_key_id=sealed["gateway_key_id"],
        ciphertext=bytes.fromhex(sealed["ciphertext"]),
        signer_key_id=sealed["signer_key_id"],
        signature=bytes.fromhex(sealed["signature"]),
    )


def _gateway() -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(bytes.fromhex(VECTORS["gateway"]["private_key"]))


def _accept(case: dict[str, Any], sealed: dict[str, Any], binding: dict[str, Any]) -> bytes:
    signer = GENERATOR.signer_key(case["name"], case["signer"]["algorithm"])
    accepted: bytes = GENERATOR.accepts(
        _box(sealed), SourceAnswerBinding(**binding), case["signer"]["algorithm"],
        signer.public_key(), _gateway(),
    )
    return accepted


def test_the_file_is_exactly_what_the_generator_makes() -> None:
    assert "TEST FIXTURE" in VECTORS["WARNING"]
    assert GENERATOR.check(VECTOR_FILE)


def test_both_algorithms_and_a_refusal_of_each_part_are_covered() -> None:
    assert {c["signer"]["algorithm"] for c in CASES} == {"EdDSA", "ES256"}
    names = {n["name"] for n in NEGATIVES}
    for case in CASES:
        for kind in ("other-request-id", "other-reference", "other-source-id",
                     "another-partners-key", "flipped-ciphertext", "unsigned"):
            assert f"{case['name']}/{kind}" in names


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_gateway_accepts_each_case(case: dict[str, Any]) -> None:
    assert _accept(case, case["sealed"], case["binding"]) == bytes.fromhex(case["plaintext"])


@pytest.mark.parametrize("negative", NEGATIVES, ids=[n["name"] for n in NEGATIVES])
def test_the_gateway_refuses_each_negative(negative: dict[str, Any]) -> None:
    case = next(c for c in CASES if c["name"] == negative["case"])
    with pytest.raises(SealOpenError):
        _accept(case, negative["sealed"], negative["binding"])


@pytest.fixture(scope="module")
def node_report(node_modules: tuple[str, Path]) -> dict[str, Any]:  # noqa: F811
    node, modules = node_modules
    done = subprocess.run(
        [node, str(SCRIPT), "--modules", str(modules), "--vectors", str(VECTOR_FILE)],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )
    assert done.stdout, f"the node check printed nothing: {done.stderr[-2000:]}"
    report: dict[str, Any] = json.loads(done.stdout)
    report["returncode"] = done.returncode
    return report


def test_node_verifies_and_opens_every_case(node_report: dict[str, Any]) -> None:
    assert node_report["header_ok"]
    results = {r["name"]: r for r in node_report["cases"]}
    assert set(results) == {c["name"] for c in CASES}
    for name, r in results.items():
        assert r["key_id_ok"] and r["statement_ok"] and r["info_ok"], name
        assert r["accepted"] and r["plaintext_ok"], (name, r["error"])
    assert node_report["ok"] and node_report["returncode"] == 0


def test_node_refuses_every_negative_where_the_file_says(node_report: dict[str, Any]) -> None:
    results = {r["name"]: r for r in node_report["negatives"]}
    assert set(results) == {n["name"] for n in NEGATIVES}
    for negative in NEGATIVES:
        r = results[negative["name"]]
        assert r["statement_ok"] and r["refused"], negative["name"]
        assert r["stage"] == negative["refused_by"], negative["name"]


def test_the_gateway_accepts_answers_node_signed_and_sealed(node_report: dict[str, Any]) -> None:
    by_case = {c["name"]: c for c in CASES}
    fresh = node_report["sealed"]
    assert [s["case"] for s in fresh] == [c["name"] for c in CASES]
    for s in fresh:
        case = by_case[s["case"]]
        assert s["sealed"]["ciphertext"] != case["sealed"]["ciphertext"]
        assert _accept(case, s["sealed"], case["binding"]) == bytes.fromhex(case["plaintext"])
        # Bound like any answer: for another request it does not verify.
        other = {**case["binding"], "request_id": case["binding"]["request_id"] + "x"}
        with pytest.raises(SealOpenError):
            _accept(case, s["sealed"], other)
