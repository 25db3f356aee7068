"""The plaintext of a sealed triage answer: a TriageAnswer (proto/ketenpoort/v1/exchange.proto)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.api.v1 import exchange_pb2


class _Hit(Protocol):
    @property
    def partner_type(self) -> str: ...
    @property
    def answered(self) -> bool: ...
    @property
    def known(self) -> bool: ...
    @property
    def role(self) -> str: ...


def encode_triage_answer(
    *,
    triage_id: str,
    recipient_id: str,
    purpose: str,
    hits: Sequence[_Hit],
    known_anywhere: bool,
) -> bytes:
    answer = exchange_pb2.TriageAnswer(
        triage_id=triage_id,
        recipient_id=recipient_id,
        purpose=purpose,
        hits=[
            exchange_pb2.TriageHit(
                partner_type=h.partner_type,
                known=h.known,
                role=h.role,
                answered=h.answered,
                # Hits of the older single-subject shape carry no person.
                person_id=getattr(h, "person_id", ""),
            )
            for h in hits
        ],
        known_anywhere=known_anywhere,
    )
    return answer.SerializeToString(deterministic=True)
