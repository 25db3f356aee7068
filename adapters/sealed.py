"""Opening a sealed answer on the partner side: a disclosure's record, a triage answer.

A client that sent a request nonce (the client library sends a fresh one with every request)
opens the answer only as format version 2, bound to that nonce and to the case it asked
about: an answer to another request, or one of version 1 (bound to nothing of the request's),
is refused like any box that does not open. See docs/sealed-answers.md, "Format version 2".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.api.v1 import common_pb2, exchange_pb2
from gateway.crypto.errors import SealOpenError
from gateway.crypto.sealing import (
    SealBinding,
    SealedBox,
    TriageBinding,
    open_sealed,
    open_sealed_triage,
)
from gateway.formats.sealed_content import sealed_box


def open_disclosure(
    response: exchange_pb2.DisclosureResponse,
    private_key: X25519PrivateKey,
    *,
    recipient_id: str,
    purpose: str,
    case_id: str = "",
    request_nonce: bytes = b"",
) -> common_pb2.DisclosedRecord:
    """Open the sealed record of a disclosure answer; raises SealOpenError if it was not
    sealed to this key, or for another disclosure, recipient or purpose, or was altered.

    With ``request_nonce`` (the nonce sent in the request) and ``case_id`` (the case asked
    about) only a version 2 answer bound to both opens; without them only version 1."""
    s = response.sealed
    box = SealedBox(
        version=s.format_version,
        suite=s.suite,
        recipient_key_id=s.recipient_key_id,
        ciphertext=s.ciphertext,
    )
    if not response.disclosure_id:
        raise SealOpenError("sealed box could not be opened")
    binding = SealBinding(
        disclosure_id=response.disclosure_id,
        recipient_id=recipient_id,
        purpose=purpose,
        case_id=case_id,
        request_nonce=request_nonce,
    )
    record = common_pb2.DisclosedRecord()
    record.ParseFromString(open_sealed(box, private_key, binding))
    if (
        record.disclosure_id != response.disclosure_id
        or record.recipient_id != recipient_id
        or (case_id and record.case_id != case_id)
    ):
        # The binding already guarantees this; checking the inner copy costs nothing.
        raise ValueError("sealed record does not belong to this disclosure")
    return record


def open_triage(
    response: exchange_pb2.TriageResponse,
    private_key: X25519PrivateKey,
    *,
    recipient_id: str,
    purpose: str,
    case_id: str = "",
    request_nonce: bytes = b"",
) -> exchange_pb2.TriageAnswer:
    """Open the sealed answer of a triage question; raises SealOpenError if the response has
    none, or it was not sealed to this key, or for another triage id, recipient or purpose,
    or was altered. ``case_id`` and ``request_nonce`` as for :func:`open_disclosure`."""
    if not response.HasField("sealed") or not response.triage_id:
        # An answer without a seal is refused, not read from the clear fields: a relay that
        # dropped the seal must not be able to pass off an answer of its own.
        raise SealOpenError("sealed box could not be opened")
    binding = TriageBinding(
        triage_id=response.triage_id,
        recipient_id=recipient_id,
        purpose=purpose,
        case_id=case_id,
        request_nonce=request_nonce,
    )
    answer = exchange_pb2.TriageAnswer()
    answer.ParseFromString(open_sealed_triage(sealed_box(response.sealed), private_key, binding))
    if answer.triage_id != response.triage_id or answer.recipient_id != recipient_id:
        raise ValueError("sealed triage answer does not belong to this question")
    return answer


@dataclass(frozen=True)
class OpenedTriage:
    """A triage answer with its sealed part opened; reads like the response it came in."""

    response: exchange_pb2.TriageResponse
    answer: exchange_pb2.TriageAnswer

    @property
    def triage_id(self) -> str:
        return self.response.triage_id

    @property
    def hits(self) -> Sequence[exchange_pb2.TriageHit]:
        return self.answer.hits

    @property
    def known_anywhere(self) -> bool:
        return self.answer.known_anywhere

    @property
    def incomplete(self) -> bool:
        return self.response.incomplete

    @property
    def outcome(self) -> common_pb2.Outcome:
        return self.response.outcome

    @property
    def policy_version(self) -> str:
        return self.response.policy_version

    @property
    def log_seq(self) -> int:
        return self.response.log_seq
