"""The partner exchange over real gRPC on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import grpc
import pytest

from gateway.api.v1 import common_pb2, exchange_pb2
from gateway.cli.demo_data import SOURCE_RECORDS, SUBJECT
from gateway.core import AccessRequest, Effect
from tests.integration.harness import Harness
from tests.integration.helpers import accept, register, to_case_meeting


async def test_register_invite_note_and_phase(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    reg = await police.register_case(
        SUBJECT, "general", reason="acute danger", invitees=["zvh", "veilig-thuis"]
    )
    assert reg.case_id.startswith("c_")
    assert reg.phase == "registration"
    assert reg.participants[0] == "police"
    assert set(reg.participants) == {"police", "zvh", "veilig-thuis"}

    await accept(director, reg.case_id)
    invited = await director.invite(reg.case_id, "ggz")
    assert "ggz" in invited.participants

    entry = await director.add_to_case_file(reg.case_id, "case.notes", "first meeting planned")
    assert entry.startswith("e_")

    assert await director.change_phase(reg.case_id, "registration", "triage") == "triage"
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await director.change_phase(reg.case_id, "registration", "triage")
    assert stale.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    with pytest.raises(grpc.aio.AioRpcError) as not_director:
        await police.change_phase(reg.case_id, "triage", "case_meeting")
    assert not_director.value.code() == grpc.StatusCode.PERMISSION_DENIED
    refusals = [
        r.event
        for r in harness.gateway.log.list_records(case_id=reg.case_id)
        if r.event.kind == "refusal"
    ]
    assert [(e.partner_id, e.refusal_code) for e in refusals] == [("police", "not_procesregisseur")]


async def test_registration_input_is_validated(harness: Harness) -> None:
    police = harness.client("police")
    bad_bsn = common_pb2.SubjectIdentity(bsn="123456789", name="X", date_of_birth="1990-01-01")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await police.register_case(bad_bsn, "code_rood", reason="r")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "123456789" not in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await police.register_case(SUBJECT, "code_rood", reason="r", invitees=["nobody"])
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_disclosure_follows_the_policy_field_by_field(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await to_case_meeting(director, case_id)
    answer = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")

    expected = harness.policy.decide(
        AccessRequest("police", "case_director", "analysis_and_plan", "case_meeting", True)
    )
    outcomes = {f.field: f for f in answer.response.fields}
    assert set(outcomes) == {d.field for d in expected.fields}
    for d in expected.fields:
        assert outcomes[d.field].rule_id == (d.rule_id or "")
        released = d.effect is not Effect.WITHHOLD
        assert (d.field in {f.field for f in answer.record.fields}) is released
    assert answer.values["subject.name"] == SUBJECT.name
    assert answer.record.recipient_id == "police"
    assert answer.response.policy_version == harness.policy.version
    assert answer.response.log_seq > 0


async def test_source_is_never_asked_for_a_withheld_field(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police, ("zvh", "municipality"))
    await to_case_meeting(director, case_id)
    municipality = harness.client("municipality")
    answer = await municipality.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    decision = harness.policy.decide(
        AccessRequest("municipality", "chain_partner", "analysis_and_plan", "case_meeting", True)
    )
    withheld = {d.field for d in decision.fields if d.effect is Effect.WITHHOLD}
    assert withheld, "the shipped policy withholds fields from the municipality"
    for partner, running in harness.sources.items():
        asked = {f for s in running.servicer.seen for f in s.fields}
        assert not asked & withheld, f"{partner} was asked for withheld fields"
        for seen in running.servicer.seen:
            assert seen.disclosure_id == answer.response.disclosure_id
            assert seen.recipient_id == "municipality"


async def test_withheld_values_appear_nowhere_in_the_answer(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police, ("zvh", "municipality"))
    await to_case_meeting(director, case_id)
    municipality = harness.client("municipality")
    raw = await municipality.request_disclosure_raw(
        exchange_pb2.DisclosureRequest(
            case_id=case_id, purpose="analysis_and_plan", phase="case_meeting"
        )
    )
    opened = await municipality.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    withheld = [f.field for f in opened.response.fields if f.outcome == common_pb2.OUTCOME_WITHHELD]
    plaintext = opened.record.SerializeToString()
    wire = raw.SerializeToString() + opened.response.SerializeToString()
    checked = 0
    for field in withheld:
        for record in SOURCE_RECORDS.values():
            # Short values ("yes", "2") also stand for masked forms of other fields.
            if field in record.fields and len(record.fields[field]) >= 8:
                value = record.fields[field].encode()
                assert value not in plaintext and value not in wire
                checked += 1
    assert checked >= 2, "the municipality is refused the care fields"


async def test_source_down_gives_incomplete_answer_and_record(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police, ("zvh", "ggz"))
    await to_case_meeting(director, case_id)
    complete = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    assert not complete.response.incomplete

    await harness.sources["probation"].stop(None)
    answer = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    assert answer.response.incomplete
    assert list(answer.response.unavailable_sources) == ["probation"]
    down_released = [
        f
        for f in answer.response.fields
        if f.source == "probation" and f.outcome != common_pb2.OUTCOME_WITHHELD
    ]
    assert down_released, "police receive probation fields in a case meeting"
    for f in down_released:
        assert f.availability == common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE
        assert f.field not in answer.values
    others = [
        f
        for f in answer.response.fields
        if f.source == "police" and f.outcome != common_pb2.OUTCOME_WITHHELD
    ]
    assert others and all(f.availability == common_pb2.AVAILABILITY_AVAILABLE for f in others)

    records = harness.gateway.log.list_records(case_id=case_id, limit=100)
    record = next(r for r in records if r.event.disclosure_id == answer.response.disclosure_id)
    assert record.event.status == "incomplete"
    unavailable = {f.field for f in record.event.fields if f.availability == "source_unavailable"}
    assert unavailable == {f.field for f in down_released}


async def test_non_participant_is_refused_and_the_refusal_logged(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await to_case_meeting(director, case_id)
    ggz = harness.client("ggz")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ggz.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    refusals = [
        r
        for r in harness.gateway.log.list_records(case_id=case_id, limit=100)
        if r.event.kind == "refusal"
    ]
    assert len(refusals) == 1
    assert refusals[0].event.partner_id == "ggz"
    assert refusals[0].event.refusal_code == "not_participant"
    assert refusals[0].event.status == "refused"
    assert not any(s.servicer.seen for s in harness.sources.values())


async def test_unknown_case_purpose_and_field(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await police.request_disclosure("c_" + "0" * 32, "analysis_and_plan", "case_meeting")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    case_id = await register(police)
    await to_case_meeting(director, case_id)
    with pytest.raises(grpc.aio.AioRpcError) as purpose:
        await police.request_disclosure(case_id, "curiosity", "case_meeting")
    assert purpose.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "curiosity" in (purpose.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as field:
        await police.request_disclosure(
            case_id, "analysis_and_plan", "case_meeting", fields=["police.shoe_size"]
        )
    assert field.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    kinds = [
        r.event.refusal_code
        for r in harness.gateway.log.list_records(case_id=case_id)
        if r.event.kind == "refusal"
    ]
    assert kinds == ["unknown_purpose", "unknown_field"]


async def test_break_glass_needs_a_justification_and_is_flagged(harness: Harness) -> None:
    police = harness.client("police")
    case_id = await register(police, ("zvh", "veilig-thuis"))
    vt = harness.client("veilig-thuis")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await vt.request_disclosure(case_id, "acute_safety", "registration")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    answer = await vt.request_disclosure(
        case_id, "acute_safety", "registration", justification="Kinderen vannacht in gevaar"
    )
    record = next(
        r
        for r in harness.gateway.log.list_records(case_id=case_id)
        if r.event.disclosure_id == answer.response.disclosure_id
    )
    assert record.event.break_glass
    assert record.event.justification_ref.startswith("e_")
    assert "vannacht" not in str(record.event)


async def test_triage_hit_no_hit(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await accept(director, case_id)
    await director.change_phase(case_id, "registration", "triage")
    answer = await director.triage(case_id)
    hits = {h.partner_type: h for h in answer.hits}
    for partner_type in SOURCE_RECORDS:
        assert hits[partner_type].answered and hits[partner_type].known
    assert answer.log_seq > 0
    assert answer.known_anywhere and not answer.incomplete
    # A partner outside the case learns nothing about its persons, not even hit/no-hit; a
    # participant other than the procesregisseur does not ask either. Both are on record.
    asked_before = {p: s.servicer.lookups for p, s in harness.sources.items()}
    with pytest.raises(grpc.aio.AioRpcError) as outside:
        await harness.client("municipality").triage(case_id)
    assert outside.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "ggz" not in (outside.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as inside:
        await police.triage(case_id)
    assert inside.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The refusal code travels with the status, so a client can act on it.
    assert dict(outside.value.trailing_metadata() or ())["ketenpoort-reason"] == (
        "not_participant"
    )
    assert dict(inside.value.trailing_metadata() or ())["ketenpoort-reason"] == (
        "not_procesregisseur"
    )
    assert {p: s.servicer.lookups for p, s in harness.sources.items()} == asked_before
    refusals = [r.event for r in harness.gateway.log.list_records(case_id=case_id)
                if r.event.kind == "refusal" and r.event.purpose == "triage"]
    assert [(e.partner_id, e.refusal_code) for e in refusals] == [
        ("municipality", "not_participant"), ("police", "not_procesregisseur")
    ]
