"""Generate tests/vectors/signed-source-answer-v2.json: signed source answers (sealed
submissions version 2, docs/sealed-answers.md "Signed source answers") as test vectors.

Each case is a source's answer sealed to a gateway key and signed by the source partner's
token key (Ed25519 or ES256) over the request it answers and the box. The boxes (HPKE draws an
ephemeral key) and the ES256 signatures (ECDSA draws a nonce) differ on every run, so the
committed file is the reference and ``--check`` rebuilds it around its own ciphertexts and
ES256 signatures, recomputing everything else (Ed25519 signatures are deterministic):

    python tests/vectors/make_signed_answer_vectors.py            # write the file
    python tests/vectors/make_signed_answer_vectors.py --check    # verify the committed file

The gateway's and the partners' private keys in the file are TEST FIXTURES, derived from public
labels: never use them for anything else.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf.message import Message

from gateway.api.v1 import source_pb2
from gateway.crypto.errors import SealOpenError
from gateway.crypto.keyids import key_id
from gateway.crypto.memory_provider import MemoryKeyProvider
from gateway.crypto.source_answers import (
    SIGNATURE_LABEL,
    SigningKey,
    SourceAnswerBinding,
    SourceAnswerSigner,
    VerifyingKey,
    signed_answer_payload,
    verify_source_answer,
)
from gateway.crypto.submissions import (
    SIGNED_SUBMISSION_FORMAT_VERSION,
    SUBMISSION_SUITE_NAME,
    GatewayPublicKey,
    SealedSubmission,
    SubmissionBinding,
    open_submission,
    seal_submission,
    submission_info,
)

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # loaded by path (the tests): vector_files sits beside this file
    sys.path.insert(0, _HERE)
from vector_files import render, run  # noqa: E402

VECTOR_FILE = Path(__file__).resolve().parent / "signed-source-answer-v2.json"
WARNING = (
    "TEST FIXTURE. The private keys in this file are published on purpose and derived from "
    "public labels: never use them, or anything sealed to or signed by them, outside tests."
)
_LABEL = "ketenpoort signed-source-answer-v2 TEST FIXTURE key: "
_P256_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)


def _digest(label: str) -> bytes:
    return hashlib.sha256((_LABEL + label).encode("utf-8")).digest()


def gateway_key() -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(_digest("gateway"))


def signer_key(label: str, algorithm: str) -> SigningKey:
    if algorithm == "EdDSA":
        return Ed25519PrivateKey.from_private_bytes(_digest(label))
    scalar = int.from_bytes(_digest(label), "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    algorithm: str
    binding: SourceAnswerBinding
    content: Message


CASES: tuple[Case, ...] = (
    Case(
        "lookup-ed25519",
        "A triage lookup answer of the police's source, signed with Ed25519.",
        "EdDSA",
        SourceAnswerBinding(
            "SourceService/LookupSubject", "ketenpoort", "police",
            "l_0f1e2d3c4b5a69788796a5b4c3d2e1f0", "t_7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29",
        ),
        source_pb2.LookupSubjectContent(known=True, role="suspect"),
    ),
    Case(
        "fetch-es256",
        "A fetch answer of ggz's source with non-ASCII values, signed with ES256 (r || s).",
        "ES256",
        SourceAnswerBinding(
            "SourceService/FetchFields", "ketenpoort", "ggz-’s-Hertogenbosch",
            "f_00112233445566778899aabbccddeeff", "d_één-€-🔒-0002",
        ),
        source_pb2.FetchFieldsContent(
            values={"ggz.care_involved": "ja", "ggz.treatment_summary": "Behandeling – GGZ Oost"}
        ),
    ),
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jwk(key: VerifyingKey) -> dict[str, str]:
    if isinstance(key, ec.EllipticCurvePublicKey):
        numbers = key.public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": _b64url(numbers.x.to_bytes(32, "big")),
                "y": _b64url(numbers.y.to_bytes(32, "big"))}
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}


def _private_hex(key: SigningKey) -> str:
    if isinstance(key, Ed25519PrivateKey):
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
        return raw.hex()
    return key.private_numbers().private_value.to_bytes(32, "big").hex()


def _binding_json(binding: SourceAnswerBinding) -> dict[str, str]:
    return dataclasses.asdict(binding)


def _sealed_json(box: SealedSubmission) -> dict[str, Any]:
    return {
        "format_version": box.version,
        "suite": box.suite,
        "gateway_key_id": box.gateway_key_id,
        "ciphertext": box.ciphertext.hex(),
        "signer_key_id": box.signer_key_id,
        "signature": box.signature.hex(),
    }


def _box(data: Mapping[str, Any]) -> SealedSubmission:
    return SealedSubmission(
        version=data["format_version"],
        suite=data["suite"],
        gateway_key_id=data["gateway_key_id"],
        ciphertext=bytes.fromhex(data["ciphertext"]),
        signer_key_id=data["signer_key_id"],
        signature=bytes.fromhex(data["signature"]),
    )


def accepts(box: SealedSubmission, binding: SourceAnswerBinding, algorithm: str,
            key: VerifyingKey, gateway: X25519PrivateKey) -> bytes:
    """What the gateway does with a source answer: verify, then open (SealOpenError)."""
    verify_source_answer(box, binding, algorithm, key)
    ring = MemoryKeyProvider(hpke_keys=[gateway]).hpke_keys()
    submission = SubmissionBinding(binding.operation, binding.source_id, binding.request_id)
    return open_submission(box, ring, submission, version=SIGNED_SUBMISSION_FORMAT_VERSION)


def _negatives(case: Case, box: SealedSubmission, signer: SigningKey) -> list[dict[str, Any]]:
    b = case.binding
    other_signer = signer_key(case.name + "/another-partner", case.algorithm)
    flipped = bytearray(box.ciphertext)
    flipped[40] ^= 0x01
    attempts: list[tuple[str, str, SealedSubmission, SourceAnswerBinding]] = [
        (f"other-{name.replace('_', '-')}", f"Checked for another {name}.", box,
         dataclasses.replace(b, **{name: getattr(b, name) + "x"}))
        for name in ("operation", "gateway_id", "source_id", "request_id", "reference")
    ]
    attempts += [
        ("flipped-ciphertext", "A ciphertext byte flipped after signing.",
         dataclasses.replace(box, ciphertext=bytes(flipped)), b),
        ("other-gateway-key-id", "The box relabelled to another gateway key id.",
         dataclasses.replace(box, gateway_key_id=box.gateway_key_id + "x"), b),
        ("another-partners-key",
         "Signed by another partner's key under this partner's kid: the registered key of "
         "that kid does not verify it.",
         SourceAnswerSigner(other_signer, box.signer_key_id).sign(
             dataclasses.replace(box, signer_key_id="", signature=b""), b), b),
        ("truncated-signature", "The signature without its last byte.",
         dataclasses.replace(box, signature=box.signature[:-1]), b),
        ("unsigned", "The same box as version 1, without a signature: refused where signed "
         "answers are required.",
         dataclasses.replace(box, version=1, signer_key_id="", signature=b""), b),
    ]
    return [
        {
            "name": f"{case.name}/{suffix}",
            "case": case.name,
            "description": description,
            # Where a gateway first refuses it: the format checks (version 2, a signature), or
            # the signature itself.
            "refused_by": (
                "format" if attempt.version != SIGNED_SUBMISSION_FORMAT_VERSION
                or not attempt.signature else "signature"
            ),
            "binding": _binding_json(binding),
            "statement": signed_answer_payload(binding, attempt.gateway_key_id,
                                               attempt.signer_key_id, attempt.ciphertext).hex(),
            "sealed": _sealed_json(attempt),
        }
        for suffix, description, attempt, binding in attempts
    ]


def build(committed: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The vector document; ``committed`` (case name -> committed ``sealed`` and negatives'
    signatures) reuses what was drawn at random."""
    gateway = gateway_key()
    gateway_public = GatewayPublicKey(key_id(gateway.public_key()), gateway.public_key())
    cases: list[dict[str, Any]] = []
    negatives: list[dict[str, Any]] = []
    for case in CASES:
        signer = signer_key(case.name, case.algorithm)
        public: VerifyingKey = signer.public_key()
        kid = key_id(public)
        plaintext = case.content.SerializeToString(deterministic=True)
        submission = SubmissionBinding(case.binding.operation, case.binding.source_id,
                                       case.binding.request_id)
        if committed is None:
            box = SourceAnswerSigner(signer, kid).sign(
                seal_submission(plaintext, gateway_public, submission,
                                version=SIGNED_SUBMISSION_FORMAT_VERSION),
                case.binding,
            )
        else:
            box = _box(committed[case.name]["sealed"])
            if case.algorithm == "EdDSA":  # deterministic: recomputed, not taken
                box = SourceAnswerSigner(signer, kid).sign(box, case.binding)
        if accepts(box, case.binding, case.algorithm, public, gateway) != plaintext:
            raise AssertionError(f"{case.name}: the signed answer does not open to its content")
        case_negatives = _negatives(case, box, signer)
        if committed is not None and case.algorithm == "ES256":
            # ECDSA signatures are randomised: the committed one of the re-signed negative.
            kept = {n["name"]: n for n in committed[case.name]["negatives"]}
            for negative in case_negatives:
                if negative["name"].endswith("/another-partners-key"):
                    negative["sealed"] = kept[negative["name"]]["sealed"]
        for negative in case_negatives:
            try:
                accepts(_box(negative["sealed"]), SourceAnswerBinding(**negative["binding"]),
                        case.algorithm, public, gateway)
            except SealOpenError:
                continue
            raise AssertionError(f"{negative['name']}: accepted, but must be refused")
        negatives.extend(case_negatives)
        cases.append(
            {
                "name": case.name,
                "description": case.description,
                "content_type": case.content.DESCRIPTOR.full_name,
                "signer": {
                    "algorithm": case.algorithm,
                    "kid": kid,
                    "private_key": _private_hex(signer),
                    "public_jwk": _jwk(public),
                },
                "binding": _binding_json(case.binding),
                "info": submission_info(submission, gateway_public.key_id,
                                        SIGNED_SUBMISSION_FORMAT_VERSION).hex(),
                "statement": signed_answer_payload(case.binding, box.gateway_key_id,
                                                   box.signer_key_id, box.ciphertext).hex(),
                "plaintext": plaintext.hex(),
                "sealed": _sealed_json(box),
            }
        )
    return {
        "WARNING": WARNING,
        "description": (
            "Test vectors of signed source answers (sealed submissions version 2, "
            "docs/sealed-answers.md). Every case's signature must verify with the signer's "
            "public key over the statement computed from its binding and box, and the box must "
            "open with the gateway key; every negative must be refused."
        ),
        "generator": "tests/vectors/make_signed_answer_vectors.py",
        "format_version": SIGNED_SUBMISSION_FORMAT_VERSION,
        "suite": SUBMISSION_SUITE_NAME,
        "info_label": "ketenpoort/v1 sealed-submission",
        "signature_label": SIGNATURE_LABEL.decode("ascii"),
        "gateway": {
            "private_key": gateway.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                serialization.NoEncryption()).hex(),
            "key_id": gateway_public.key_id,
        },
        "cases": cases,
        "negatives": negatives,
    }


def committed_parts(text: str) -> dict[str, dict[str, Any]]:
    document = json.loads(text)
    return {
        c["name"]: {
            "sealed": c["sealed"],
            "negatives": [n for n in document["negatives"] if n["case"] == c["name"]],
        }
        for c in document["cases"]
    }


def check(path: Path = VECTOR_FILE) -> bool:
    text = path.read_text(encoding="utf-8")
    return render(build(committed_parts(text))) == text


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv, __doc__, VECTOR_FILE, build, check)


if __name__ == "__main__":
    raise SystemExit(main())
