"""Break-glass access to a case lasts at most the purpose's max_duration_minutes.

The window opens with the case's first justified break-glass use; after it, the break-glass
purpose is refused (and the refusal logged) while regular purposes go on as before. The
gateway runs on a clock the test moves forward.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from gateway.core import CompiledPolicy
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import accept, register

PURPOSE = "acute_safety"
JUSTIFICATION = "Threat of violence tonight; children at home."
ESCALATION = "He is back at the address despite the restraining order."


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


@pytest.fixture
async def gateway_on_clock(tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy,
                           clock: Clock) -> AsyncIterator[Harness]:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    async with running_harness(url, dev_keys, shipped_policy, clock=clock) as harness:
        yield harness


async def test_break_glass_closes_after_its_maximum_duration(
        gateway_on_clock: Harness, clock: Clock) -> None:
    harness = gateway_on_clock
    limit = harness.policy.purpose(PURPOSE).max_duration_minutes
    assert limit is not None
    police = harness.client("police")
    case_id = await register(police, ("zvh", "veilig-thuis"))
    vt = harness.client("veilig-thuis")

    first = await vt.request_disclosure(case_id, PURPOSE, "registration",
                                        justification=JUSTIFICATION)
    assert first.values
    # The window belongs to the case: another responder's later use does not reopen it.
    clock.advance(limit - 1)
    again = await police.request_disclosure(case_id, PURPOSE, "registration",
                                            justification=JUSTIFICATION)
    assert again.values

    clock.advance(1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await police.request_disclosure(case_id, PURPOSE, "registration",
                                        justification=JUSTIFICATION)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "is open for" in (err.value.details() or "")

    refusals = [r.event for r in harness.gateway.log.list_records(case_id=case_id)
                if r.event.kind == "refusal"]
    assert [e.refusal_code for e in refusals] == ["break_glass_expired"]
    assert refusals[0].partner_id == "police" and refusals[0].purpose == PURPOSE
    assert JUSTIFICATION not in str(refusals[0])


async def test_a_case_without_break_glass_use_has_no_window_yet(
        gateway_on_clock: Harness, clock: Clock) -> None:
    harness = gateway_on_clock
    limit = harness.policy.purpose(PURPOSE).max_duration_minutes
    assert limit is not None
    police = harness.client("police")
    case_id = await register(police, ("zvh",))
    # Time since registration does not count: the window opens with the first use.
    clock.advance(limit * 3)
    answer = await police.request_disclosure(case_id, PURPOSE, "registration",
                                             justification=JUSTIFICATION)
    assert answer.values


async def test_an_escalation_reopens_the_window_for_one_more_period(
        gateway_on_clock: Harness, clock: Clock) -> None:
    harness = gateway_on_clock
    limit = harness.policy.purpose(PURPOSE).max_duration_minutes
    assert limit is not None
    police, director = harness.client("police"), harness.client("zvh")
    vt = harness.client("veilig-thuis")
    case_id = await register(police, ("zvh", "veilig-thuis"), approach="code_rood")
    await accept(director, case_id)
    await vt.request_disclosure(case_id, PURPOSE, "registration", justification=JUSTIFICATION)
    clock.advance(limit)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await vt.request_disclosure(case_id, PURPOSE, "registration",
                                    justification=JUSTIFICATION)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # Only the procesregisseur escalates; the police's case-director claim does not suffice.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await police.cases.escalate(case_id, ESCALATION)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    escalated = await director.cases.escalate(case_id, ESCALATION)

    # A new acute moment: the next justified use opens the window again, for one period.
    clock.advance(5)
    reopened = await vt.request_disclosure(case_id, PURPOSE, "registration",
                                           justification=JUSTIFICATION)
    assert reopened.values and reopened.response.log_seq > escalated.log_seq
    clock.advance(limit)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await vt.request_disclosure(case_id, PURPOSE, "registration",
                                    justification=JUSTIFICATION)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED

    records = harness.gateway.log.list_records(case_id=case_id)
    [escalation] = [r.event for r in records if r.event.kind == "escalation"]
    assert escalation.partner_id == "zvh" and ESCALATION not in str(escalation)
    # Both openings are break-glass disclosures queued for the privacy officer's review.
    assert sum(1 for r in records if r.event.kind == "disclosure" and r.event.break_glass) == 2


async def test_an_approach_without_break_glass_has_nothing_to_reopen(
        gateway_on_clock: Harness) -> None:
    harness = gateway_on_clock
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police, ("zvh",), approach="verward_gedrag")
    await accept(director, case_id)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await director.cases.escalate(case_id, ESCALATION)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
