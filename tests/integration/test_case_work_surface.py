"""The partner's work surface over real gRPC, on SQLite and PostgreSQL: ListCases shows a
partner exactly its cases, GetCase the state of one, WatchCaseEvents what happens to them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from gateway.api.v1 import cases_pb2, cases_pb2_grpc
from gateway.cli.demo_data import REASON, SUBJECT
from gateway.core import CompiledPolicy
from gateway.server.limit_settings import LimitSettings
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import accept, register

WAIT_S = 10.0


async def next_kinds(
    stream: AsyncIterator[cases_pb2.CaseEvent], count: int
) -> list[tuple[str, str]]:
    """The (case id, kind) of the next ``count`` events."""
    got: list[tuple[str, str]] = []
    async with asyncio.timeout(WAIT_S):
        async for event in stream:
            got.append((event.case_id, event.kind))
            if len(got) == count:
                return got
    raise AssertionError(f"the stream ended after {got}")


async def test_list_cases_shows_a_partner_exactly_its_cases(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    municipality = harness.client("municipality")
    housing = harness.client("housing", "chain_partner")
    mine = [await register(police, approach="code_rood") for _ in range(3)]
    theirs = (await municipality.register_case(SUBJECT, "", reason=REASON)).case_id
    shared = (
        await municipality.register_case(SUBJECT, "", reason=REASON, invitees=["police"])
    ).case_id

    listed = [c.case_id for c in await police.cases.all_cases(page_size=2)]
    assert listed == [shared, *reversed(mine)]  # newest registration first, over two pages
    assert theirs not in listed
    assert [c.case_id for c in await municipality.cases.all_cases()] == [shared, theirs]
    assert await housing.cases.all_cases() == []
    # The ZVH takes part in every case.
    assert {c.case_id for c in await director.cases.all_cases()} == {*mine, theirs, shared}

    await accept(director, mine[0])
    await director.change_phase(mine[0], "registration", "triage")
    in_triage = await police.cases.all_cases(phase="triage")
    assert [c.case_id for c in in_triage] == [mine[0]]
    assert [c.case_id for c in await director.cases.all_cases(assigned_to_me=True)] == [mine[0]]
    # The municipality holds the casusregie of the cases it registered.
    assigned = await municipality.cases.all_cases(assigned_to_me=True)
    assert [c.case_id for c in assigned] == [shared, theirs]
    assert all(c.assigned_to_me for c in assigned)
    assert [c.case_id for c in await police.cases.all_cases(approach="general")] == [shared]

    for bad in (dict(page_size=500), dict(page_token="not-a-token"), dict(phase="nowhere")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await police.cases.list_cases(**bad)  # type: ignore[arg-type]
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_get_case_shows_participants_regie_and_persons(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police, ("zvh", "ggz"), approach="code_rood")
    await accept(director, case_id)
    detail = await police.cases.get_case(case_id)
    assert list(detail.participants) == ["police", "ggz", "zvh"]
    assert detail.case.phase == "registration"
    assert detail.case.approach == "code_rood"
    assert detail.case.intake == cases_pb2.INTAKE_ACCEPTED
    assert detail.case.procesregie.partner_id == "zvh"
    assert detail.case.casusregie.partner_id == "police"
    assert detail.case.registered_by == "police"
    assert detail.case.assigned_to_me
    # The one person the registration named, by id and role only.
    [person] = detail.persons
    assert person.role_in_case == "subject" and person.person_id.startswith("p_")


async def test_the_event_stream_delivers_invitations_and_phase_changes(
    harness: Harness,
) -> None:
    police, director, ggz = harness.client("police"), harness.client("zvh"), harness.client("ggz")
    case_id = await register(police)
    police_stream = police.cases.watch_events()
    ggz_stream = ggz.cases.watch_events()
    await asyncio.sleep(0.2)  # the streams are open and waiting

    await accept(director, case_id)
    await director.invite(case_id, "ggz")
    await director.change_phase(case_id, "registration", "triage")
    assert await next_kinds(police_stream, 3) == [
        (case_id, "intake_decided"),
        (case_id, "invited"),
        (case_id, "phase_changed"),
    ]
    # ggz hears only of what happened once it took part.
    assert await next_kinds(ggz_stream, 2) == [(case_id, "invited"), (case_id, "phase_changed")]

    # A stream opened later with a cursor resumes after it; without, it replays everything.
    replay = director.cases.watch_events(case_id=case_id)
    kinds = await next_kinds(replay, 4)
    assert kinds == [
        (case_id, "invited"),  # the ZVH was added at registration
        (case_id, "intake_decided"),
        (case_id, "invited"),
        (case_id, "phase_changed"),
    ]
    replay.cancel()  # type: ignore[attr-defined]
    police_stream.cancel()  # type: ignore[attr-defined]
    ggz_stream.cancel()  # type: ignore[attr-defined]

    # Only for a case the partner takes part in.
    housing = harness.client("housing", "chain_partner")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await next_kinds(housing.cases.watch_events(case_id=case_id), 1)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_event_streams_are_capped_per_partner_and_end_at_shutdown(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    limits = LimitSettings(max_case_watchers_per_partner=2)
    async with running_harness(
        db_url, dev_keys, shipped_policy, config_changes={"limits": limits}
    ) as harness:
        police, municipality = harness.client("police"), harness.client("municipality")
        first, second = police.cases.watch_events(), police.cases.watch_events()
        reg = await municipality.register_case(SUBJECT, "", reason=REASON, invitees=["police"])
        assert await next_kinds(first, 1) == [(reg.case_id, "invited")]
        assert await next_kinds(second, 1) == [(reg.case_id, "invited")]
        # A third stream of the same partner is turned away; another partner's is not.
        with pytest.raises(grpc.aio.AioRpcError) as third:
            await next_kinds(police.cases.watch_events(), 1)
        assert third.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        other = municipality.cases.watch_events()
        await asyncio.sleep(0.2)

        async def drain(stream: AsyncIterator[cases_pb2.CaseEvent]) -> int:
            return len([event async for event in stream])

        endings = [asyncio.create_task(drain(s)) for s in (first, second, other)]
        await asyncio.sleep(0.2)
    # The gateway stopped: every stream ended cleanly (OK), with nothing more to say.
    async with asyncio.timeout(WAIT_S):
        assert await asyncio.gather(*endings) == [0, 0, 0]


async def test_an_event_stream_ends_when_its_token_expires(harness: Harness) -> None:
    """The stream ends with OK once its token has expired: the partner reconnects with a fresh
    token, so a withdrawn partner or key stops hearing of its cases."""
    async with harness.channel("police") as channel:
        stub = cases_pb2_grpc.CaseServiceStub(channel)  # type: ignore[no-untyped-call]
        token = harness.token("police", lifetime_s=2)
        stream = stub.WatchCaseEvents(
            cases_pb2.WatchCaseEventsRequest(),
            metadata=(("authorization", f"Bearer {token}"),),
        )
        async with asyncio.timeout(WAIT_S):
            assert [event async for event in stream] == []
        assert await stream.code() == grpc.StatusCode.OK


async def test_a_stream_on_one_replica_hears_of_changes_made_on_another(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    """Events are read from the shared database, so a change made through one gateway reaches
    a stream open on another (within the poll interval)."""
    async with (
        running_harness(db_url, dev_keys, shipped_policy) as one,
        running_harness(db_url, dev_keys, shipped_policy) as other,
    ):
        police = other.client("police")
        stream = police.cases.watch_events()
        case_id = await register(one.client("police"))
        director = one.client("zvh")
        await accept(director, case_id)
        await director.invite(case_id, "ggz")
        assert await next_kinds(stream, 2) == [
            (case_id, "intake_decided"),
            (case_id, "invited"),
        ]
        stream.cancel()  # type: ignore[attr-defined]
