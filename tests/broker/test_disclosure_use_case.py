"""The disclosure use case against in-memory fakes and the shipped policy.

A Code Rood case about a family, registered by the police and taken on by the ZVH; the
probation service asks for the case meeting. The shipped policy releases a person's police
antecedents to probation only for the alleged perpetrator
(no-antecedents-of-victims-and-children-for-justice in policies/rules/persons.yaml).
"""

from __future__ import annotations

import pytest

from gateway.broker.disclosure import DisclosureInput, DisclosureResult
from gateway.broker.errors import Refused
from gateway.broker.log_events import AuditEvent, LogRecord, RecordKind
from gateway.core import Effect
from tests.broker.conftest import (
    PERPETRATOR_BSN,
    World,
    caller,
    join,
    register_family,
    take_on,
    trace,
)


async def ask(world: World, partner_id: str, case_id: str) -> DisclosureResult:
    """``partner_id`` asks for everything the policy releases for the case meeting."""
    return await world.disclosures.request(
        caller(partner_id), trace(), DisclosureInput(case_id, "analysis_and_plan", "case_meeting")
    )


async def test_fields_about_a_person_are_decided_by_their_role(world: World) -> None:
    case_id, (perpetrator, victim, child) = await register_family(world)
    take_on(world, case_id)
    join(world, case_id, "probation")

    result = await ask(world, "probation", case_id)

    effect = {(f.person_id, f.decision.field): f.decision.effect for f in result.fields}
    assert effect[(perpetrator, "police.antecedents_summary")] is Effect.DISCLOSE
    assert effect[(victim, "police.antecedents_summary")] is Effect.WITHHOLD
    assert effect[(child, "police.antecedents_summary")] is Effect.WITHHOLD
    # Case-level fields are decided once, for no person.
    assert {f.person_id for f in result.fields if f.decision.field.startswith("case.")} == {""}
    assert result.persons == (
        (perpetrator, "alleged_perpetrator"), (victim, "victim"), (child, "child")
    )
    available = {(f.person_id, f.decision.field) for f in result.fields
                 if f.availability == "available"}
    assert (perpetrator, "police.incidents") in available
    assert (victim, "police.incidents") not in available


async def test_a_withheld_field_is_never_fetched(world: World) -> None:
    case_id, _ = await register_family(world)
    take_on(world, case_id)
    join(world, case_id, "probation")

    result = await ask(world, "probation", case_id)

    released = {
        (f.person_id, f.decision.field) for f in result.fields
        if f.decision.effect is not Effect.WITHHOLD and f.decision.field.startswith("police.")
    }
    persons = {p.person_id: p for p in world.store.people[case_id]}
    fetched = world.police_source.fetches
    # Asked once per person it can be asked about (the described child has no identifier),
    # each time for exactly the fields released about that person.
    assert sorted(f.subject.name for f in fetched) == ["Anna de Vries", "Jan de Vries"]
    by_name = {f.subject.name: set(f.fields) for f in fetched}
    for person_id in persons:
        wanted = {field for p, field in released if p == person_id}
        name = {"alleged_perpetrator": "Jan de Vries", "victim": "Anna de Vries"}.get(
            persons[person_id].role_in_case
        )
        if name is not None:
            assert by_name[name] == wanted
    assert "police.antecedents_summary" in by_name["Jan de Vries"]
    assert "police.antecedents_summary" not in by_name["Anna de Vries"]
    # The source got the BSN of the person known by one, the others by name.
    assert {f.subject.bsn for f in fetched} == {PERPETRATOR_BSN, ""}


async def test_one_record_per_person_no_value(world: World) -> None:
    case_id, ids = await register_family(world)
    take_on(world, case_id)
    join(world, case_id, "probation")
    before = len(world.log.records)

    result = await ask(world, "probation", case_id)

    records = world.log.records[before:]
    assert [r.event.kind for r in records] == [RecordKind.DISCLOSURE] * 3
    assert result.log_seq == records[0].seq
    assert {r.event.disclosure_id for r in records} == {result.disclosure_id}
    persons = {p.person_id: p for p in world.store.people[case_id]}
    assert [r.event.subject_pseudonym for r in records] == [persons[i].pseudonym for i in ids]
    assert [dict(r.event.detail)["person_role"] for r in records] == [
        "alleged_perpetrator", "victim", "child"
    ]
    # Each record holds that person's field entries and the case-level ones, once each.
    for record, person_id in zip(records, ids, strict=True):
        mine = [(f.person_id, f.decision.field) for f in result.fields
                if f.person_id in ("", person_id)]
        assert len(record.event.fields) == len(mine)
    # Names and decisions, never a value.
    logged = repr(records)
    assert "2 incidents" not in logged and "Jan de Vries" not in logged
    assert PERPETRATOR_BSN not in logged


async def test_a_refusal_is_logged_before_it_is_raised(world: World) -> None:
    case_id, _ = await register_family(world)
    take_on(world, case_id)
    before = len(world.log.records)

    with pytest.raises(Refused) as refused:
        # The housing corporation does not take part in the case.
        await ask(world, "housing", case_id)

    (record,) = world.log.records[before:]
    assert record.event.kind == RecordKind.REFUSAL
    assert record.event.refusal_code == refused.value.code
    assert refused.value.log_seq == record.seq
    assert record.event.subject_pseudonym == world.store.cases[case_id].subject_pseudonym
    assert world.police_source.fetches == []


class LogAway(Exception):
    pass


async def test_no_refusal_leaves_without_its_record(world: World) -> None:
    case_id, _ = await register_family(world)
    take_on(world, case_id)

    async def fail(events: object) -> list[LogRecord]:
        raise LogAway

    async def fail_one(event: AuditEvent) -> LogRecord:
        raise LogAway

    world.log.append_many = fail  # type: ignore[method-assign]
    world.log.append = fail_one  # type: ignore[method-assign]
    with pytest.raises(LogAway):
        await ask(world, "housing", case_id)


async def test_a_field_the_source_could_not_supply_is_unavailable_alone(world: World) -> None:
    case_id, (perpetrator, _victim, _child) = await register_family(world)
    take_on(world, case_id)
    join(world, case_id, "probation")
    before = await ask(world, "probation", case_id)
    assert "police" not in before.unavailable_sources
    # The source answers, but the part of its system holding antecedents is down just now.
    world.police_source.down = frozenset({"police.antecedents_summary"})

    result = await ask(world, "probation", case_id)

    availability = {(f.person_id, f.decision.field): f.availability for f in result.fields}
    assert availability[(perpetrator, "police.antecedents_summary")] == "source_unavailable"
    assert availability[(perpetrator, "police.incidents")] == "available"
    # As for a source that is down: the answer says it is incomplete, and why.
    assert result.incomplete and "police" in result.unavailable_sources
