"""Regie and intake over real gRPC, on SQLite and PostgreSQL: the ZVH takes part in every case
and decides its intake; only the procesregisseur invites, changes the phase and the approach;
a regie changes hands (and back) with a record, effective at the next call."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import delete

from adapters.client import PartnerClient
from gateway.api.v1 import cases_pb2
from gateway.broker.log_events import LogRecord, RecordKind
from gateway.cli.demo_data import REASON, SUBJECT
from gateway.store.audit_event import encode_event
from gateway.store.tables import case_participants
from tests.integration.harness import Harness
from tests.integration.helpers import accept, register

SECRET_REASON = "the neighbour told us about the basement in Dorpsstraat 7"


def records(harness: Harness, case_id: str, kind: RecordKind) -> list[LogRecord]:
    return [r for r in harness.gateway.log.list_records(case_id=case_id) if r.event.kind == kind]


async def denied(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, err.value.details()
    return err.value


async def test_the_zvh_takes_part_in_every_case_and_the_approach_is_kept(
    harness: Harness,
) -> None:
    police = harness.client("police")
    reg = await police.register_case(SUBJECT, "", approach="verward_gedrag", reason=REASON)
    assert list(reg.participants) == ["police", "zvh"]
    case = (await police.cases.get_case(reg.case_id)).case
    assert case.approach == "verward_gedrag"
    assert case.intake == cases_pb2.INTAKE_PENDING
    assert case.procesregie.partner_id == ""
    # Police is no municipality and named nobody: the casusregie waits for the procesregisseur.
    assert case.casusregie.partner_id == ""

    # The deprecated case_type still sets the approach; an unknown one is refused.
    old = await police.register_case(SUBJECT, "drang_en_dwang", reason=REASON)
    assert (await police.cases.get_case(old.case_id)).case.approach == "drang_en_dwang"
    for case_type, approach in (("burglary", ""), ("", "nonsense"), ("code_rood", "general")):
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await police.register_case(SUBJECT, case_type, approach=approach, reason=REASON)
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    # A municipality that registers takes the casusregie; a named partner takes it otherwise.
    municipality = harness.client("municipality")
    own = await municipality.register_case(SUBJECT, "", reason=REASON)
    summary = (await municipality.cases.get_case(own.case_id)).case
    assert summary.casusregie.partner_id == "municipality"
    assert summary.approach == "general"
    named = await police.register_case(SUBJECT, "", reason=REASON, casusregie_partner="ggz")
    assert set(named.participants) == {"police", "zvh", "ggz"}
    assert (await police.cases.get_case(named.case_id)).case.casusregie.partner_id == "ggz"


async def test_without_the_procesregie_a_process_director_claim_does_not_invite_or_move(
    harness: Harness,
) -> None:
    police = harness.client("police")
    first = harness.client("zvh", user_ref="director-1")
    other = harness.client("zvh", user_ref="director-2")
    case_id = await register(police)

    # Before the intake nobody holds the procesregie.
    await denied(first.invite(case_id, "ggz"))
    await denied(first.change_phase(case_id, "registration", "triage"))

    await first.cases.decide_intake(case_id, cases_pb2.ACCEPT, SECRET_REASON)
    # Another director of the ZVH, with the same role claim, holds no procesregie here.
    await denied(other.invite(case_id, "ggz"))
    await denied(other.change_phase(case_id, "registration", "triage"))
    await denied(other.cases.change_approach(case_id, "general", "better fit"))
    # A chain partner neither.
    await denied(police.invite(case_id, "ggz"))

    refusals = records(harness, case_id, RecordKind.REFUSAL)
    assert [(r.event.user_ref, r.event.refusal_code) for r in refusals] == [
        ("director-1", "not_procesregisseur"),
        ("director-1", "not_procesregisseur"),
        ("director-2", "not_procesregisseur"),
        ("director-2", "not_procesregisseur"),
        ("director-2", "not_procesregisseur"),
        ("", "not_procesregisseur"),
    ]
    # The holder may.
    assert "ggz" in (await first.invite(case_id, "ggz")).participants
    assert await first.change_phase(case_id, "registration", "triage") == "triage"


async def test_a_transfer_of_the_procesregie_is_logged_and_counts_at_the_next_call(
    harness: Harness,
) -> None:
    police = harness.client("police")
    first = harness.client("zvh", user_ref="director-1")
    second = harness.client("zvh", user_ref="director-2")
    case_id = await register(police)
    await accept(first, case_id)

    moved = await first.cases.transfer_regie(
        case_id, cases_pb2.PROCESREGIE, "zvh", "director-2", reason="holiday cover"
    )
    assert (moved.procesregie.partner_id, moved.procesregie.user) == ("zvh", "director-2")
    [transfer] = records(harness, case_id, RecordKind.REGIE_TRANSFER)
    assert transfer.seq == moved.log_seq
    detail = dict(transfer.event.detail)
    assert (detail["regie"], detail["to_partner"], detail["to_user"]) == (
        "procesregie", "zvh", "director-2"
    )
    assert "holiday" not in encode_event(transfer.event)

    # The very next calls: the old holder is refused, the new one acts.
    await denied(first.change_phase(case_id, "registration", "triage"))
    assert await second.change_phase(case_id, "registration", "triage") == "triage"
    # The procesregie goes to a ZVH partner only.
    with pytest.raises(grpc.aio.AioRpcError) as elsewhere:
        await second.cases.transfer_regie(case_id, cases_pb2.PROCESREGIE, "police")
    assert elsewhere.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    back = await second.cases.return_regie(case_id, cases_pb2.PROCESREGIE)
    assert (back.procesregie.partner_id, back.procesregie.user) == ("zvh", "director-1")
    assert records(harness, case_id, RecordKind.REGIE_RETURN)[0].seq == back.log_seq
    assert await first.change_phase(case_id, "triage", "case_meeting") == "case_meeting"
    # Nobody held it before director-1: there is nothing further to return to.
    with pytest.raises(grpc.aio.AioRpcError) as nothing:
        await first.cases.return_regie(case_id, cases_pb2.PROCESREGIE)
    assert nothing.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_the_casusregie_is_handed_on_by_its_holder_or_the_procesregisseur(
    harness: Harness,
) -> None:
    municipality = harness.client("municipality", role="case_director")
    director = harness.client("zvh")
    police = harness.client("police")  # case_director claim, no casusregie
    reg = await municipality.register_case(SUBJECT, "", reason=REASON, invitees=["police"])
    await accept(director, reg.case_id)

    await denied(police.cases.transfer_regie(reg.case_id, cases_pb2.CASUSREGIE, "police"))
    [refusal] = records(harness, reg.case_id, RecordKind.REFUSAL)
    assert refusal.event.refusal_code == "no_regie"
    # Only to a participant.
    with pytest.raises(grpc.aio.AioRpcError) as outsider:
        await municipality.cases.transfer_regie(reg.case_id, cases_pb2.CASUSREGIE, "ggz")
    assert outsider.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    handed = await municipality.cases.transfer_regie(
        reg.case_id, cases_pb2.CASUSREGIE, "police", "officer-7"
    )
    assert (handed.casusregie.partner_id, handed.casusregie.user) == ("police", "officer-7")
    # Police's claim counts only for the named user; the municipality no longer holds it.
    await denied(municipality.cases.return_regie(reg.case_id, cases_pb2.CASUSREGIE))
    await denied(police.cases.return_regie(reg.case_id, cases_pb2.CASUSREGIE))
    officer = harness.client("police", user_ref="officer-7")
    assert (await officer.cases.get_case(reg.case_id)).case.assigned_to_me
    # The procesregisseur gives it back to the previous holder.
    back = await director.cases.return_regie(reg.case_id, cases_pb2.CASUSREGIE)
    assert back.casusregie.partner_id == "municipality"
    # Returned once more, with no earlier holder, it is unassigned.
    gone = await municipality.cases.return_regie(reg.case_id, cases_pb2.CASUSREGIE)
    assert gone.casusregie.partner_id == ""


async def test_intake_accept_decline_and_advice_only(harness: Harness) -> None:
    police = harness.client("police")
    director = harness.client("zvh", user_ref="director-1")

    accepted = await register(police)
    await denied(police.cases.decide_intake(accepted, cases_pb2.ACCEPT, "mine"))
    answer = await director.cases.decide_intake(accepted, cases_pb2.ACCEPT, SECRET_REASON)
    assert answer.intake == cases_pb2.INTAKE_ACCEPTED
    assert (answer.procesregie.partner_id, answer.procesregie.user) == ("zvh", "director-1")
    [decision] = records(harness, accepted, RecordKind.INTAKE_DECISION)
    assert decision.seq == answer.log_seq
    assert dict(decision.event.detail)["decision"] == "accept"
    # The reason is in the case file, encrypted, and nowhere in the log.
    assert "Dorpsstraat" not in encode_event(decision.event)
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await director.cases.decide_intake(accepted, cases_pb2.DECLINE, "changed my mind")
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    declined = await register(police)
    out = await director.cases.decide_intake(declined, cases_pb2.DECLINE, "not for the ZVH")
    assert (out.intake, out.phase) == (cases_pb2.INTAKE_DECLINED, "closure")
    closed = (await police.cases.get_case(declined)).case
    assert closed.closed_at and closed.procesregie.partner_id == ""

    advice = await register(police)
    kept = await director.cases.decide_intake(advice, cases_pb2.ADVICE_ONLY, "advice first")
    assert (kept.intake, kept.phase) == (cases_pb2.INTAKE_ADVICE_ONLY, "registration")
    assert kept.procesregie.partner_id == ""
    await denied(director.invite(advice, "ggz"))
    # An advice-only case can still be taken on later.
    later = await director.cases.decide_intake(advice, cases_pb2.ACCEPT, "now it is needed")
    assert later.intake == cases_pb2.INTAKE_ACCEPTED

    with pytest.raises(grpc.aio.AioRpcError) as blank:
        await director.cases.decide_intake(await register(police), cases_pb2.ACCEPT, " ")
    assert blank.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_approach_is_changed_by_the_procesregisseur_with_a_reason(
    harness: Harness,
) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await accept(director, case_id)
    changed = await director.cases.change_approach(case_id, "drang_en_dwang", SECRET_REASON)
    assert changed.approach == "drang_en_dwang"
    [record] = records(harness, case_id, RecordKind.APPROACH_CHANGE)
    assert dict(record.event.detail)["to"] == "drang_en_dwang"
    assert "Dorpsstraat" not in encode_event(record.event)
    assert (await police.cases.get_case(case_id)).case.approach == "drang_en_dwang"
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await director.cases.change_approach(case_id, "top_x", "why not")
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_non_participant_sees_no_case(harness: Harness) -> None:
    police, housing = harness.client("police"), harness.client("housing", "chain_partner")
    case_id = await register(police)
    await denied(housing.cases.get_case(case_id))
    assert [r.event.refusal_code for r in records(harness, case_id, RecordKind.REFUSAL)] == [
        "not_participant"
    ]
    await _close(police, housing)


async def _close(*clients: PartnerClient) -> None:
    for client in clients:
        await client.close()



async def test_the_zvh_takes_on_a_case_registered_before_it_was_added_to_every_case(
    harness: Harness,
) -> None:
    """A case from before this release lists no ZVH participant: its process director still
    takes part, accepts it at intake and then invites."""
    police, director = harness.client("police"), harness.client("zvh")
    case_id = (await police.register_case(SUBJECT, "", reason=REASON)).case_id
    with harness.gateway.engine.begin() as conn:
        conn.execute(
            delete(case_participants).where(
                case_participants.c.case_id == case_id, case_participants.c.partner_id == "zvh"
            )
        )
    await accept(director, case_id)
    await director.invite(case_id, "ggz")
    assert [r.event.partner_id for r in records(harness, case_id, RecordKind.INTAKE_DECISION)] == [
        "zvh"
    ]
    # Taking part is not a right of every partner: one never invited is still refused.
    await denied(harness.client("probation").cases.get_case(case_id))
