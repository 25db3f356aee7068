"""The regie rules as the case-file use cases apply them, against in-memory fakes.

Inviting a partner and moving a case's phase are the procesregisseur's: a caller with the
``process_director`` claim who holds the case's procesregie. Anyone else is refused, and the
refusal is in the log before the error leaves.
"""

from __future__ import annotations

import pytest

from gateway.broker.caller import Principal
from gateway.broker.errors import Refused
from gateway.broker.log_events import RecordKind
from tests.broker.conftest import World, caller, register_family, take_on, trace, zvh_director


async def test_the_procesregisseur_invites_a_partner(world: World) -> None:
    case_id, _ = await register_family(world)
    take_on(world, case_id)
    before = len(world.log.records)

    view = await world.casefile.invite(zvh_director(), trace(), case_id, "probation")

    assert "probation" in view.participants
    assert world.store.cases[case_id].participants == view.participants
    (record,) = world.log.records[before:]
    assert record.event.kind == RecordKind.INVITATION
    assert record.event.partner_id == "zvh" and view.log_seq == record.seq


@pytest.mark.parametrize(
    "who",
    [
        # The registrant, a chain partner of the case.
        caller("police"),
        # The police claiming the process director's role: the claim counts only with the regie.
        caller("police", "process_director"),
        # A process director of the ZVH who does not hold this case's procesregie.
        caller("zvh", "process_director", "zvh-pr-2"),
    ],
    ids=["chain-partner", "claim-without-regie", "other-zvh-director"],
)
async def test_an_invitation_by_anyone_else_is_refused_and_logged(
    world: World, who: Principal
) -> None:
    case_id, _ = await register_family(world)
    take_on(world, case_id)
    participants = world.store.cases[case_id].participants
    before = len(world.log.records)

    with pytest.raises(Refused) as refused:
        await world.casefile.invite(who, trace(), case_id, "probation")

    assert refused.value.code == "not_procesregisseur"
    (record,) = world.log.records[before:]
    assert record.event.kind == RecordKind.REFUSAL
    assert record.event.refusal_code == "not_procesregisseur"
    assert record.event.partner_id == who.partner_id
    assert refused.value.log_seq == record.seq
    # A refusal names the case, not a person of it.
    assert record.event.subject_pseudonym == world.store.cases[case_id].subject_pseudonym
    assert world.store.cases[case_id].participants == participants


async def test_a_partner_outside_the_case_is_refused_before_the_regie_is_asked(
    world: World,
) -> None:
    case_id, _ = await register_family(world)
    take_on(world, case_id)

    with pytest.raises(Refused) as refused:
        await world.casefile.invite(caller("housing"), trace(), case_id, "probation")

    assert refused.value.code == "not_participant"
    assert [e.refusal_code for e in world.log.of_kind(RecordKind.REFUSAL)] == ["not_participant"]


async def test_only_the_procesregisseur_moves_the_phase(world: World) -> None:
    case_id, _ = await register_family(world)
    take_on(world, case_id, phase="triage")

    with pytest.raises(Refused):
        await world.casefile.change_phase(caller("police"), trace(), case_id, "triage", "plan")
    assert world.store.cases[case_id].phase == "triage"

    view = await world.casefile.change_phase(zvh_director(), trace(), case_id, "triage", "plan")

    assert view.phase == world.store.cases[case_id].phase == "plan"
    assert [e.kind for e in world.log.events[-2:]] == [RecordKind.REFUSAL, RecordKind.PHASE_CHANGE]
