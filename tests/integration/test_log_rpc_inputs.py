"""Crafted input to the log's RPCs (proofs, listings, reviews, holds, exports) is refused as
INVALID_ARGUMENT, never failed as INTERNAL: log positions beyond what a database stores, times
an offset pushes past the calendar, and NUL characters PostgreSQL cannot store."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from gateway.api.v1 import accountability_pb2, exchange_pb2
from gateway.broker.log_events import RecordKind
from gateway.cli.demo_data import SUBJECT
from tests.integration.harness import Harness
from tests.integration.helpers import register

BEYOND = 2**63  # the first position no signed 64-bit column holds
LAST = 2**64 - 1
INVALID = grpc.StatusCode.INVALID_ARGUMENT


async def status_of(call: Awaitable[object]) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_log_positions_beyond_a_database_column_are_invalid(harness: Harness) -> None:
    officer = harness.client("zvh", role="privacy_officer")
    await register(harness.client("police"))
    # A token is good for one call: each call carries its own.
    rpc, md = officer._accountability, officer.metadata
    a = accountability_pb2
    calls = {
        "inclusion seq": rpc.ProveInclusion(a.ProveInclusionRequest(seq=BEYOND), metadata=md()),
        "inclusion size": rpc.ProveInclusion(
            a.ProveInclusionRequest(seq=1, tree_size=LAST), metadata=md()
        ),
        "consistency": rpc.ProveConsistency(
            a.ProveConsistencyRequest(old_size=1, new_size=BEYOND), metadata=md()
        ),
        "list": rpc.ListDisclosures(a.ListDisclosuresRequest(after_seq=LAST), metadata=md()),
        "reviews": rpc.ListBreakGlassReviews(
            a.ListBreakGlassReviewsRequest(after_seq=BEYOND), metadata=md()
        ),
        "close": rpc.CloseBreakGlassReview(
            a.CloseBreakGlassReviewRequest(
                disclosure_seq=LAST, verdict="justified", comment="checked"
            ),
            metadata=md(),
        ),
        "list with NUL": rpc.ListDisclosures(
            a.ListDisclosuresRequest(partner_id="police\x00"), metadata=md()
        ),
    }
    codes = {name: await status_of(call) for name, call in calls.items()}
    assert codes == dict.fromkeys(calls, INVALID)


async def _export(harness: Harness, **request: object) -> grpc.StatusCode:
    police = harness.client("police")
    call = police._exchange.ExportDisclosures(
        exchange_pb2.ExportDisclosuresRequest(**request),  # type: ignore[arg-type]
        metadata=police.metadata(),
    )

    async def drain() -> None:
        async for _ in call:
            pass

    return await status_of(drain())


@pytest.mark.parametrize(
    "request_fields",
    [
        {"after_seq": BEYOND},
        {"since": "0001-01-01T00:00:00+01:00"},
        {"until": "9999-12-31T23:59:59-01:00"},
    ],
)
async def test_exports_refuse_crafted_positions_and_times(
    harness: Harness, request_fields: dict[str, object]
) -> None:
    assert await _export(harness, **request_fields) == INVALID
    assert not harness.gateway.log.list_records(kinds=[RecordKind.LOG_EXPORT])


async def test_holds_refuse_crafted_times_and_nul_before_anything_is_recorded(
    harness: Harness,
) -> None:
    police = harness.client("police")
    rpc, md = police._exchange, police.metadata
    head = harness.gateway.log.head().last_seq
    in_a_year = (datetime.now(UTC) + timedelta(days=365)).date().isoformat()
    valid = {"bsn": SUBJECT.bsn, "reason": "lopend onderzoek", "until": in_a_year}
    for change in (
        {"until": "0001-01-01T00:00:00+01:00"},
        {"until": "9999-12-31T23:59:59-23:59"},
        {"reason": "lopend\x00onderzoek"},
        {"case_id": "case\x00"},
    ):
        request = exchange_pb2.PlaceHoldRequest(**{**valid, **change})
        assert await status_of(rpc.PlaceConfidentialityHold(request, metadata=md())) == INVALID
    lift = exchange_pb2.LiftHoldRequest(hold_id="h_\x00")
    assert await status_of(rpc.LiftConfidentialityHold(lift, metadata=md())) == INVALID
    # No hold record was written for a hold that could not be stored.
    assert harness.gateway.log.head().last_seq == head


async def test_case_rpcs_refuse_a_nul_in_the_case_id_as_invalid(harness: Harness) -> None:
    police = harness.client("police")
    case_id = await register(police)
    rpc, md = police._exchange, police.metadata
    e = exchange_pb2
    crafted = case_id + "\x00"
    calls = {
        "disclosure": rpc.RequestDisclosure(
            e.DisclosureRequest(case_id=crafted, purpose="assess_and_accept", phase="registration"),
            metadata=md(),
        ),
        "triage": rpc.Triage(e.TriageRequest(case_id=crafted, purpose="triage"), metadata=md()),
        "invite": rpc.InvitePartner(
            e.InvitePartnerRequest(case_id=crafted, partner_id="ggz"), metadata=md()
        ),
        "add": rpc.AddToCaseFile(
            e.AddToCaseFileRequest(case_id=crafted, field="case.notes", text="x"), metadata=md()
        ),
        "phase": rpc.ChangePhase(
            e.ChangePhaseRequest(case_id=crafted, from_phase="registration", to_phase="triage"),
            metadata=md(),
        ),
    }
    codes = {name: await status_of(call) for name, call in calls.items()}
    assert codes == dict.fromkeys(calls, INVALID)
    # Nothing half-written: the case still answers and the log verifies.
    assert (await police.request_disclosure(case_id, "assess_and_accept", "registration")).values
    assert harness.gateway.log.verify().ok
