"""The plaintext of a sealed answer: a DisclosedRecord (proto/ketenpoort/v1/common.proto)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.api.v1 import common_pb2
from gateway.core import Effect

OUTCOME = {
    Effect.DISCLOSE: common_pb2.OUTCOME_DISCLOSED,
    Effect.MASK: common_pb2.OUTCOME_MASKED,
    Effect.WITHHOLD: common_pb2.OUTCOME_WITHHELD,
}
AVAILABILITY = {
    "available": common_pb2.AVAILABILITY_AVAILABLE,
    "not_held": common_pb2.AVAILABILITY_NOT_HELD,
    "source_unavailable": common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE,
    "not_requested": common_pb2.AVAILABILITY_NOT_REQUESTED,
    "transform_failed": common_pb2.AVAILABILITY_TRANSFORM_FAILED,
    "not_asked": common_pb2.AVAILABILITY_NOT_ASKED,
}


@dataclass(frozen=True)
class ReleasedValue:
    field: str
    effect: Effect
    transform: str | None
    value: str
    availability: str
    # The person of the case the value is about; "" for a case-level field.
    person_id: str = ""


def encode_record(
    *,
    disclosure_id: str,
    case_id: str,
    recipient_id: str,
    purpose: str,
    phase: str,
    issued_at: str,
    policy_version: str,
    values: Sequence[ReleasedValue],
    persons: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The serialised DisclosedRecord; ``persons`` as (person id, role in the case)."""
    record = common_pb2.DisclosedRecord(
        disclosure_id=disclosure_id,
        case_id=case_id,
        recipient_id=recipient_id,
        purpose=purpose,
        phase=phase,
        issued_at=issued_at,
        policy_version=policy_version,
        fields=[
            common_pb2.DisclosedField(
                field=v.field,
                outcome=OUTCOME[v.effect],
                transform=v.transform or "",
                value=v.value,
                availability=AVAILABILITY[v.availability],
                person_id=v.person_id,
            )
            for v in values
        ],
        persons=[
            common_pb2.CasePersonRef(person_id=person_id, role_in_case=role)
            for person_id, role in persons
        ],
    )
    return record.SerializeToString(deterministic=True)
