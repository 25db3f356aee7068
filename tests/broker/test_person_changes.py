"""Adding, removing and identifying persons of a case, against in-memory fakes.

Until the ZVH takes a case on at intake, the registrant completes its own registration;
after that only the holders of the regie change who the case is about. Every change is one
record under the person's own pseudonym; a refusal one under the case's.
"""

from __future__ import annotations

import pytest

from gateway.broker.case_reading import CaseReading
from gateway.broker.disclosure import DisclosureInput
from gateway.broker.errors import Refused
from gateway.broker.log_events import PERSON_ID_TYPE, RecordKind
from gateway.broker.persons import PersonInput
from tests.broker.conftest import World, caller, join, register_family, take_on, trace, zvh_director

VICTIM_BSN = "111222333"


async def test_the_registrant_adds_a_person_before_intake(world: World) -> None:
    case_id, _ = await register_family(world)
    before = len(world.log.records)

    ref, seq = await world.persons.add(
        caller("police"), trace(), case_id, PersonInput("child", name="Tim", date_of_birth="2015")
    )

    added = world.store.people[case_id][-1]
    assert (added.person_id, added.role_in_case) == (ref.person_id, "child")
    (record,) = world.log.records[before:]
    assert record.seq == seq and record.event.kind == RecordKind.PERSON_ADDED
    assert record.event.subject_pseudonym == added.pseudonym
    assert record.event.subject_id_type == PERSON_ID_TYPE
    assert dict(record.event.detail)["person_role"] == "child"
    assert "Tim" not in repr(record)
    # The identity is in the case file, encrypted and bound to the person.
    snap = await CaseReading(world.ctx).snapshot(case_id)
    identity = CaseReading(world.ctx).person_identity(snap, added)
    assert (identity.subject.name, identity.subject.date_of_birth) == ("Tim", "2015")


async def test_after_intake_the_registrant_may_no_longer_change_persons(world: World) -> None:
    case_id, ids = await register_family(world)
    take_on(world, case_id)
    people = list(world.store.people[case_id])

    with pytest.raises(Refused) as refused:
        await world.persons.remove(caller("police"), trace(), case_id, ids[2])

    assert refused.value.code == "not_regisseur"
    (refusal,) = world.log.of_kind(RecordKind.REFUSAL)
    assert refusal.refusal_code == "not_regisseur" and refused.value.log_seq is not None
    assert refusal.subject_pseudonym == world.store.cases[case_id].subject_pseudonym
    assert world.store.people[case_id] == people


async def test_a_partner_outside_the_case_may_not_add_a_person(world: World) -> None:
    case_id, _ = await register_family(world)

    with pytest.raises(Refused) as refused:
        await world.persons.add(
            caller("housing"), trace(), case_id, PersonInput("child", name="Tim",
                                                             date_of_birth="2015")
        )

    assert refused.value.code == "not_participant"
    assert [e.refusal_code for e in world.log.of_kind(RecordKind.REFUSAL)] == ["not_participant"]
    assert len(world.store.people[case_id]) == 3


async def test_a_removed_person_is_no_longer_disclosed_about(world: World) -> None:
    case_id, (perpetrator, victim, child) = await register_family(world)
    take_on(world, case_id)

    seq = await world.persons.remove(zvh_director(), trace(), case_id, child)

    record = world.log.records[seq - 1]
    assert record.event.kind == RecordKind.PERSON_REMOVED
    removed = next(p for p in world.store.people[case_id] if p.person_id == child)
    assert record.event.subject_pseudonym == removed.pseudonym and not removed.current
    join(world, case_id, "om")
    result = await world.disclosures.request(
        caller("om"), trace(), DisclosureInput(case_id, "analysis_and_plan", "case_meeting")
    )
    assert {p for p, _ in result.persons} == {perpetrator, victim}
    assert {f.person_id for f in result.fields} == {"", perpetrator, victim}


async def test_a_bsn_learnt_later_keeps_the_persons_pseudonym(world: World) -> None:
    case_id, (_, victim, _) = await register_family(world)
    take_on(world, case_id)
    first = next(p for p in world.store.people[case_id] if p.person_id == victim)

    seq = await world.persons.identify(zvh_director(), trace(), case_id, victim, VICTIM_BSN)

    person = next(p for p in world.store.people[case_id] if p.person_id == victim)
    assert person.pseudonym == first.pseudonym and person.bsn_pseudonym is not None
    record = world.log.records[seq - 1]
    assert record.event.kind == RecordKind.PERSON_IDENTIFIED
    assert record.event.subject_pseudonym == first.pseudonym
    # Still keyed on the person id: the records about her before and after stay one series.
    assert record.event.subject_id_type == PERSON_ID_TYPE
    assert VICTIM_BSN not in repr(world.log.records)
    # Her identity now holds the BSN (the sources of types that may hold it get it).
    snap = await CaseReading(world.ctx).snapshot(case_id)
    assert CaseReading(world.ctx).person_identity(snap, person).subject.bsn == VICTIM_BSN
