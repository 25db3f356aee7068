"""Resent registrations and case-file entries over real gRPC, on SQLite and PostgreSQL.

A partner system that sends a call again with the same request id (after a timeout, a lost
answer, a reseal) gets the first call's answer: one case, one entry, and in the log one
registration or case note plus a ``replay`` record naming it. The same id with other content
is refused with ALREADY_EXISTS; ids are the calling partner's own.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select

from adapters.client import PartnerClient
from adapters.submitting import REASON_METADATA_KEY, new_request_id
from gateway.api.v1 import exchange_pb2
from gateway.broker.casefile import Registration, registration_content
from gateway.broker.log_events import LogRecord, RecordKind
from gateway.broker.request_ids import REGISTER_CASE
from gateway.broker.sources import Subject
from gateway.cli.demo_data import GOAL, REASON, SUBJECT
from gateway.core import CompiledPolicy
from gateway.crypto.keystore import Keystore
from gateway.crypto.request_digest import request_digest, request_digest_key
from gateway.store import CaseRepository
from gateway.store.request_ids import RequestClaim
from gateway.store.tables import case_entries, cases, request_ids
from tests.integration.harness import Harness, running_harness

INVITEES = ("zvh", "veilig-thuis")
NOTE = "Huisbezoek: kinderen bang"
REUSED = "request_id_reused"


async def register(client: PartnerClient, request_id: str, reason: str = REASON,
                   **kw: object) -> exchange_pb2.RegisterCaseResponse:
    return await client.register_case(
        SUBJECT, "code_rood", reason=reason, goal=GOAL, invitees=list(INVITEES),
        request_id=request_id, **kw,  # type: ignore[arg-type]
    )


def clear_registration(request_id: str, reason: str = REASON) -> exchange_pb2.RegisterCaseRequest:
    return exchange_pb2.RegisterCaseRequest(
        subject=SUBJECT, case_type="code_rood", reason=reason, goal=GOAL,
        invitees=list(INVITEES), request_id=request_id,
    )


def cases_of(h: Harness, partner: str) -> list[str]:
    with h.gateway.engine.connect() as conn:
        return list(
            conn.execute(select(cases.c.case_id).where(cases.c.registered_by == partner))
            .scalars()
            .all()
        )


def notes_of(h: Harness, case_id: str) -> list[str]:
    with h.gateway.engine.connect() as conn:
        return list(
            conn.execute(
                select(case_entries.c.entry_id).where(
                    case_entries.c.case_id == case_id, case_entries.c.field == "case.notes"
                )
            )
            .scalars()
            .all()
        )


def records(h: Harness, case_id: str, *kinds: RecordKind) -> list[LogRecord]:
    return h.gateway.log.list_records(case_id=case_id, kinds=list(kinds) or None, limit=1000)


def reasons(exc: grpc.aio.AioRpcError) -> list[str]:
    trailing = exc.trailing_metadata()
    assert isinstance(trailing, grpc.aio.Metadata)
    return [str(v) for v in trailing.get_all(REASON_METADATA_KEY)]


def assert_replays_of(replays: list[LogRecord], original: LogRecord, **detail: str) -> None:
    for r in replays:
        assert r.event.kind is RecordKind.REPLAY
        assert dict(r.event.detail) == {"replay_of": str(original.seq), **detail}
        assert r.seq > original.seq
        assert r.event.case_id == original.event.case_id
        assert r.event.subject_pseudonym == original.event.subject_pseudonym
        assert r.event.partner_id == original.event.partner_id


async def test_a_resent_sealed_registration_gets_the_first_case(harness: Harness) -> None:
    police = harness.client("police")
    rid = new_request_id()
    first = await register(police, rid)
    # Sealed anew (another HPKE encapsulation), as a partner's retry does.
    again = await register(police, rid)
    assert again == first
    assert list(first.participants) == ["police", "veilig-thuis", "zvh"]
    assert cases_of(harness, "police") == [first.case_id]

    [registration] = records(harness, first.case_id, RecordKind.REGISTRATION)
    replays = records(harness, first.case_id, RecordKind.REPLAY)
    assert len(replays) == 1
    assert_replays_of(replays, registration)
    assert replays[0].event.name == "ExchangeService/RegisterCase"
    assert harness.gateway.log.verify().ok


async def test_a_resent_clear_registration_gets_the_first_case(harness: Harness) -> None:
    clear = harness.client("police", seal_submissions=False)
    rid = new_request_id()
    request = clear_registration(rid)
    first = await clear.register_case_raw(request)
    second = await clear.register_case_raw(request)
    # The content counts, not its form: the same registration sealed is the same request.
    sealed = await register(harness.client("police"), rid)
    assert first == second == sealed
    assert cases_of(harness, "police") == [first.case_id]
    assert len(records(harness, first.case_id, RecordKind.REGISTRATION)) == 1
    assert len(records(harness, first.case_id, RecordKind.REPLAY)) == 2


async def test_the_same_id_with_other_content_is_refused_and_changes_nothing(
    harness: Harness,
) -> None:
    police = harness.client("police", resend_attempts=1)
    rid = new_request_id()
    first = await register(police, rid)
    log_size = harness.gateway.log.count()

    attempts = [
        register(police, rid, reason="another reason"),  # sealed, other content
        harness.client("police", seal_submissions=False).register_case_raw(
            clear_registration(rid, reason="another reason")
        ),
        police.add_to_case_file(first.case_id, "case.notes", NOTE, request_id=rid),  # other call
    ]
    for attempt in attempts:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await attempt
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert reasons(err.value) == [REUSED]
        assert "another reason" not in (err.value.details() or "")

    assert cases_of(harness, "police") == [first.case_id]
    assert notes_of(harness, first.case_id) == []
    assert harness.gateway.log.count() == log_size  # a refused reuse is no event in the log


async def test_concurrent_duplicates_make_exactly_one_case(harness: Harness) -> None:
    police = harness.client("police", resend_attempts=1)
    rid = new_request_id()
    answers = await asyncio.gather(*(register(police, rid) for _ in range(5)))
    assert all(a == answers[0] for a in answers)
    [case_id] = cases_of(harness, "police")
    assert answers[0].case_id == case_id
    [registration] = records(harness, case_id, RecordKind.REGISTRATION)
    replays = records(harness, case_id, RecordKind.REPLAY)
    assert len(replays) == 4
    assert_replays_of(replays, registration)


async def test_request_ids_are_each_partners_own(harness: Harness) -> None:
    rid = new_request_id()
    police = await register(harness.client("police"), rid)
    municipality = await register(harness.client("municipality"), rid)
    assert police.case_id != municipality.case_id
    assert cases_of(harness, "police") == [police.case_id]
    assert cases_of(harness, "municipality") == [municipality.case_id]
    for answer in (police, municipality):
        assert records(harness, answer.case_id, RecordKind.REPLAY) == []


async def test_a_resent_case_file_entry_is_added_once(harness: Harness) -> None:
    case_id = (await register(harness.client("police"), new_request_id())).case_id
    director = harness.client("zvh", resend_attempts=1)
    rid = new_request_id()
    entry_id = await director.add_to_case_file(case_id, "case.notes", NOTE, request_id=rid)
    again = await asyncio.gather(
        *(director.add_to_case_file(case_id, "case.notes", NOTE, request_id=rid)
          for _ in range(3))
    )
    clear = harness.client("zvh", seal_submissions=False)
    in_clear = await clear.add_to_case_file(case_id, "case.notes", NOTE, request_id=rid)
    assert set(again) == {entry_id} and in_clear == entry_id
    assert notes_of(harness, case_id) == [entry_id]

    [note] = records(harness, case_id, RecordKind.CASE_NOTE)
    assert dict(note.event.detail) == {"entry_id": entry_id}
    replays = records(harness, case_id, RecordKind.REPLAY)
    assert len(replays) == 4
    assert_replays_of(replays, note, entry_id=entry_id)

    for text, field in ((NOTE + ".", "case.notes"), (NOTE, "case.concerns")):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await director.add_to_case_file(case_id, field, text, request_id=rid)
        assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert reasons(err.value) == [REUSED]
    assert notes_of(harness, case_id) == [entry_id]


async def test_without_a_request_id_every_call_counts(harness: Harness) -> None:
    clear = harness.client("police", seal_submissions=False)
    request = clear_registration("")
    first = await clear.register_case_raw(request)
    second = await clear.register_case_raw(request)
    assert first.case_id != second.case_id
    assert sorted(cases_of(harness, "police")) == sorted([first.case_id, second.case_id])
    with harness.gateway.engine.connect() as conn:
        assert conn.execute(select(request_ids)).all() == []


async def test_a_malformed_request_id_is_refused(harness: Harness) -> None:
    clear = harness.client("police", seal_submissions=False, resend_attempts=1)
    for rid in ("r" * 129, "r_\x00", "r_\n"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await clear.register_case_raw(clear_registration(rid))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert cases_of(harness, "police") == []


async def test_the_client_gives_every_call_its_own_request_id(harness: Harness) -> None:
    for sealed in (True, False):
        client = harness.client("police", seal_submissions=sealed)
        first = await client.register_case(SUBJECT, "code_rood", reason=REASON)
        second = await client.register_case(SUBJECT, "code_rood", reason=REASON)
        assert first.case_id != second.case_id
        await client.add_to_case_file(first.case_id, "case.notes", NOTE)
        await client.add_to_case_file(first.case_id, "case.notes", NOTE)
        assert len(notes_of(harness, first.case_id)) == 2
    with harness.gateway.engine.connect() as conn:
        kept = conn.execute(select(request_ids.c.partner_id, request_ids.c.request_id)).all()
    assert len(kept) == 8 and len({r for _, r in kept}) == 8
    assert {p for p, _ in kept} == {"police"}


async def test_a_caller_that_gave_up_gets_its_case_when_it_resends(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    """The caller's deadline passes while the gateway registers: the registration still
    completes with its record, and the resend gets that case instead of a second one."""
    stall = {"armed": False}

    def clock() -> datetime:
        if stall["armed"]:
            stall["armed"] = False
            # Holds the gateway up (the whole event loop) until the caller's deadline passed.
            time.sleep(0.6)
        return datetime.now(UTC)

    async with running_harness(db_url, dev_keys, shipped_policy, clock=clock) as h:
        police = h.client("police", resend_attempts=1)
        rid = new_request_id()
        # Once the start-up work that reads the clock (the first retention run) is done.
        await police.gateway_keys()
        await asyncio.sleep(0.1)
        stall["armed"] = True
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await register(police, rid, timeout=0.2)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        answer = await register(police, rid)
        assert cases_of(h, "police") == [answer.case_id]
        [registration] = records(h, answer.case_id, RecordKind.REGISTRATION)
        assert_replays_of(records(h, answer.case_id, RecordKind.REPLAY), registration)


async def test_a_request_id_is_free_again_after_the_retention_window(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    now = [datetime.now(UTC)]
    async with running_harness(db_url, dev_keys, shipped_policy, clock=lambda: now[0]) as h:
        police = h.client("police")
        rid = new_request_id()
        first = await register(police, rid)
        await register(police, new_request_id())  # an id never used again: pruned later
        now[0] += timedelta(hours=23)
        assert (await register(police, rid)).case_id == first.case_id
        now[0] += timedelta(hours=1, seconds=1)
        second = await register(police, rid)
        assert second.case_id != first.case_id
        assert len(set(cases_of(h, "police"))) == 3  # first, the other one, second
        # The new claim replaced the expired one, and set off a prune of the other.
        with h.gateway.engine.connect() as conn:
            assert conn.execute(select(request_ids.c.case_id)).scalars().all() == [
                second.case_id
            ]


@pytest.mark.slow
async def test_a_first_call_that_never_finished_is_reported_in_progress(
    harness: Harness, dev_keys: Path
) -> None:
    """What a gateway that stopped between committing a case and writing its record leaves
    behind: the resend does not pretend the registration was accounted for."""
    rid = new_request_id()
    subject = Subject(SUBJECT.bsn, SUBJECT.name, SUBJECT.date_of_birth, SUBJECT.address,
                      SUBJECT.postcode)
    content = registration_content(
        Registration(subject, "code_rood", REASON, GOAL, INVITEES)
    )
    key = request_digest_key(Keystore.open(dev_keys).pseudonym_key)
    at = datetime.now(UTC)
    CaseRepository(harness.gateway.engine).create_case_once(
        RequestClaim("police", rid, REGISTER_CASE, request_digest(key, REGISTER_CASE, content),
                     "c_unfinished", "", at, at - timedelta(hours=24)),
        case_id="c_unfinished", subject_pseudonym="ps_x", case_type="code_rood",
        phase="registration", registered_by="police", wrapped_data_key=b"", entries=[],
        invitees=[], now=at,
    )
    police = harness.client("police", resend_attempts=1)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await register(police, rid)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert reasons(err.value) == ["request_in_progress"]
    assert cases_of(harness, "police") == ["c_unfinished"]
    assert records(harness, "c_unfinished") == []

