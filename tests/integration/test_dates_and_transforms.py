"""Dates of birth and masking transforms over real gRPC on SQLite and PostgreSQL.

Registration takes a date of birth only as YYYY-MM-DD naming a real day. A value a transform
cannot apply to (here: a date stored before that rule, in a form ``year_only`` cannot read)
withholds that field and says so, in the answer and the log; the request still succeeds, and
a break-glass justification is stored only with its log record and review item.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
import pytest

from gateway.api.v1 import common_pb2
from gateway.broker.case_entries import seal_entry
from gateway.broker.casefile import JUSTIFICATION_FIELD
from gateway.broker.log_events import RecordKind
from gateway.cli.demo_data import GOAL, REASON, SUBJECT
from gateway.crypto.envelope import WrappedKey, unwrap_data_key
from gateway.store.cases import CaseRepository
from tests.integration.harness import Harness
from tests.integration.helpers import register

DOB = "subject.date_of_birth"


@pytest.mark.parametrize(
    "text",
    ["19840307", "1984-W10-3", "1984-067", "1984-02-30", "1984-3-7", "84-03-07",
     "1984-03-07T00:00", " 1984-03-07", "\u0661\u0669\u0668\u0664-03-07", "1984-13",
     "1984-00", "0000"],
)
# A partial date (YYYY, YYYY-MM) is a real date now, and an empty one is no error: the BSN
# identifies the subject (persons need no date of birth).
async def test_only_a_real_yyyy_mm_dd_date_of_birth_is_accepted(
    harness: Harness, text: str
) -> None:
    subject = common_pb2.SubjectIdentity()
    subject.CopyFrom(SUBJECT)
    subject.date_of_birth = text
    async with harness.client("police") as police:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await police.register_case(subject, "code_rood", reason=REASON, goal=GOAL)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "subject.date_of_birth" in (caught.value.details() or "")


async def _store_date_of_birth(harness: Harness, case_id: str, text: str) -> None:
    """A newer date-of-birth entry holding ``text``, as a case registered before the
    gateway took only YYYY-MM-DD may hold."""
    engine = harness.gateway.engine
    keystore = harness.gateway.keystore
    assert keystore is not None
    snap = await harness.gateway.snapshots.read(case_id)
    assert snap is not None
    key = unwrap_data_key(WrappedKey.from_bytes(snap.case.wrapped_data_key), keystore, case_id)
    # The subject's identity entries carry the person's id (the case's one person).
    person_id = snap.persons[0].person_id
    entry = seal_entry(key, case_id, DOB, text, "police", datetime.now(UTC), person_id)
    await asyncio.to_thread(CaseRepository(engine).add_entries, case_id, [entry])


async def test_a_date_year_only_cannot_read_is_withheld_and_the_break_glass_is_logged(
    harness: Harness,
) -> None:
    async with harness.client("police") as police:
        case_id = await register(police, ("zvh", "municipality"))
    await _store_date_of_birth(harness, case_id, "19840307")
    async with harness.client("municipality") as municipality:
        answer = await municipality.request_disclosure(
            case_id, "acute_safety", "registration", justification="Acute threat tonight."
        )
    outcome = answer.outcomes[DOB]
    assert outcome.outcome == common_pb2.OUTCOME_WITHHELD
    assert outcome.availability == common_pb2.AVAILABILITY_TRANSFORM_FAILED
    assert DOB not in answer.values
    assert "19840307" not in str(answer.values) and "1984" not in str(answer.values)
    # The other fields are answered as the policy says.
    assert answer.values

    records = harness.gateway.log.list_records(
        case_id=case_id, kinds=[RecordKind.DISCLOSURE], limit=10
    )
    assert len(records) == 1
    event = records[0].event
    logged = {f.field: f for f in event.fields}[DOB]
    assert (logged.outcome, logged.transform, logged.availability) == (
        "withheld", None, "transform_failed"
    )
    assert event.break_glass
    # The justification is in the case file and named by the record; the review waits.
    snap = await harness.gateway.snapshots.read(case_id)
    assert snap is not None
    justifications = [e.entry_id for e in snap.entries if e.field == JUSTIFICATION_FIELD]
    assert justifications == [event.justification_ref]
    async with harness.client("zvh", role="privacy_officer") as officer:
        reviews = await officer.list_break_glass_reviews()
    assert [r.disclosure.seq for r in reviews.reviews] == [records[0].seq]


async def test_every_stored_justification_has_its_record_even_when_a_transform_fails(
    harness: Harness,
) -> None:
    async with harness.client("police") as police:
        case_id = await register(police, ("zvh", "municipality"))
    await _store_date_of_birth(harness, case_id, "1984-W10-3")
    async with harness.client("municipality") as municipality:
        for _ in range(2):
            await municipality.request_disclosure(
                case_id, "acute_safety", "registration", justification="Acute threat."
            )
    snap = await harness.gateway.snapshots.read(case_id)
    assert snap is not None
    stored = {e.entry_id for e in snap.entries if e.field == JUSTIFICATION_FIELD}
    named = {
        r.event.justification_ref
        for r in harness.gateway.log.list_records(case_id=case_id, limit=100)
        if r.event.justification_ref
    }
    assert stored and stored <= named
