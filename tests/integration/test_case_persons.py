"""Cases of several persons, over real gRPC with real source systems: per-person decisions,
sources asked per person with only the identifiers their partner type may hold, targeted
triage, and adding, removing and identifying persons with their log records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from adapters.client import PartnerClient
from gateway.api.v1 import common_pb2, exchange_pb2
from gateway.cli.demo_data import GOAL, REASON, SUBJECT
from gateway.core import CompiledPolicy
from gateway.crypto.pseudonym import subject_pseudonym
from gateway.store.cases import CaseRepository
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import accept, to_case_meeting

VICTIM_BSN = "111222333"


def family() -> list[common_pb2.PersonInput]:
    return [
        common_pb2.PersonInput(
            role_in_case="alleged_perpetrator", bsn=SUBJECT.bsn, name=SUBJECT.name,
            date_of_birth=SUBJECT.date_of_birth,
        ),
        # No BSN: found by name and a year of birth only.
        common_pb2.PersonInput(role_in_case="victim", name="Anna de Vries", date_of_birth="1990"),
        common_pb2.PersonInput(role_in_case="child", name="Tim de Vries", date_of_birth="2015-06"),
        # Not identified at all: described.
        common_pb2.PersonInput(
            role_in_case="child", description="Toddler, about two years old, seen at the address"
        ),
    ]


async def register_persons(
    police: PartnerClient, persons: list[common_pb2.PersonInput], request_id: str = ""
) -> exchange_pb2.RegisterCaseResponse:
    return await police.register_case_raw(
        exchange_pb2.RegisterCaseRequest(
            persons=persons, approach="general", reason=REASON, goal=GOAL,
            invitees=["zvh"], request_id=request_id, casusregie_partner="police",
        )
    )


def records_of(harness: Harness, case_id: str, kind: str) -> list:  # type: ignore[type-arg]
    return [r for r in harness.gateway.log.list_records(case_id=case_id, limit=1000)
            if r.event.kind == kind]


async def test_a_family_case_gives_per_person_outcomes_and_one_record_per_person(
    harness: Harness,
) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    registered = await register_persons(police, family())
    case_id = registered.case_id
    assert [p.role_in_case for p in registered.persons] == [
        "alleged_perpetrator", "victim", "child", "child"
    ]
    ids = [p.person_id for p in registered.persons]
    assert len(set(ids)) == 4 and all(i.startswith("p_") for i in ids)
    await to_case_meeting(director, case_id)
    seen_before = len(harness.sources["police"].servicer.seen)

    answer = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")

    outcomes = answer.response.fields
    about = {(f.person_id, f.field) for f in outcomes}
    for person_id in ids:
        assert (person_id, "police.incidents") in about
        assert (person_id, "subject.name") in about
    case_level = [f for f in outcomes if f.field.startswith("case.")]
    assert case_level and all(f.person_id == "" for f in case_level)
    assert [(p.person_id, p.role_in_case) for p in answer.record.persons] == [
        (p.person_id, p.role_in_case) for p in registered.persons
    ]
    # The perpetrator is known to the police source; the others are not.
    values = {(f.person_id, f.field): f.value for f in answer.record.fields
              if f.availability == common_pb2.AVAILABILITY_AVAILABLE}
    assert values[(ids[0], "police.incidents")]
    assert (ids[1], "police.incidents") not in values
    assert values[(ids[1], "subject.name")] == "Anna de Vries"
    # The police source was asked once per identifiable person; never about the described
    # child (nothing to find it by), and the victim without a BSN.
    fetches = harness.sources["police"].servicer.seen[seen_before:]
    assert sorted(f.identifiers for f in fetches) == sorted([
        ("bsn", "name", "date_of_birth"), ("name", "date_of_birth"), ("name", "date_of_birth"),
    ])
    # One record per person, one disclosure id, each under the person's own pseudonym.
    records = [r for r in records_of(harness, case_id, "disclosure")
               if r.event.disclosure_id == answer.response.disclosure_id]
    assert len(records) == 4
    assert answer.response.log_seq == records[0].seq
    assert len({r.event.subject_pseudonym for r in records}) == 4
    roles = [dict(r.event.detail)["person_role"] for r in records]
    assert roles == ["alleged_perpetrator", "victim", "child", "child"]
    # Each record holds the case-level entries and that person's own.
    first = [f.field for f in records[0].event.fields]
    assert first.count("police.incidents") == 1 and "case.reason" in first

    only = await police.request_disclosure_raw(
        exchange_pb2.DisclosureRequest(
            case_id=case_id, purpose="analysis_and_plan", phase="case_meeting",
            person_ids=[ids[1]],
        )
    )
    assert {f.person_id for f in only.fields} == {"", ids[1]}


async def test_persons_without_a_bsn_are_triaged_and_a_partner_not_chosen_is_not_asked(
    harness: Harness,
) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    registered = await register_persons(police, family()[1:])
    case_id = registered.case_id
    victim = registered.persons[0].person_id
    await accept(director, case_id)
    await director.change_phase(case_id, "registration", "triage")
    lookups = {p: s.servicer.lookups for p, s in harness.sources.items()}

    response = await director.triage_raw(case_id, "triage", request_nonce=b"")
    assert response.log_seq
    request = exchange_pb2.TriageRequest(
        case_id=case_id, purpose="triage", partner_types=["police"], person_ids=[victim],
    )
    targeted = await director._exchange.Triage(request, metadata=director.metadata())
    before_targeted = {p: s.servicer.lookups for p, s in harness.sources.items()}
    assert before_targeted["police"] > lookups["police"]

    records = [r for r in records_of(harness, case_id, "triage")
               if r.seq == targeted.log_seq]
    assert len(records) == 1
    assert {f.source for f in records[0].event.fields} == {"police"}
    assert dict(records[0].event.detail)["person_role"] == "victim"
    # The untargeted triage asked the others; the targeted one only the police, once.
    targeted_again = await director._exchange.Triage(request, metadata=director.metadata())
    after = {p: s.servicer.lookups for p, s in harness.sources.items()}
    assert after["police"] == before_targeted["police"] + 1
    assert all(after[p] == before_targeted[p] for p in after if p != "police")
    assert targeted_again.log_seq > targeted.log_seq
    # The described person was never looked up: nothing to find it by.
    assert all(seen != () for s in harness.sources.values() for seen in s.servicer.lookups_seen)


class _NoBsnForPolice(CompiledPolicy):
    """The shipped policy, but the police may not be given a BSN to find a person, and may
    be given its own reference."""

    def identifiers_for(self, partner_type: str) -> frozenset[str]:
        if partner_type == "police":
            return frozenset({"name", "date_of_birth", "reference"})
        return frozenset({"bsn", "name", "date_of_birth"})


@pytest.fixture
async def no_bsn_harness(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[Harness]:
    policy = _NoBsnForPolice(shipped_policy.policy)
    async with running_harness(db_url, dev_keys, policy) as running:
        yield running


async def test_a_source_never_receives_a_bsn_its_partner_type_may_not_hold(
    no_bsn_harness: Harness,
) -> None:
    harness = no_bsn_harness
    police, director = harness.client("police"), harness.client("zvh")
    case_id = (await police.register_case(
        SUBJECT, "general", reason=REASON, goal=GOAL, invitees=["zvh"]
    )).case_id
    await to_case_meeting(director, case_id)
    await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    police_seen = harness.sources["police"].servicer.seen
    probation_seen = harness.sources["probation"].servicer.seen
    assert police_seen and all("bsn" not in f.identifiers for f in police_seen)
    assert probation_seen and all("bsn" in f.identifiers for f in probation_seen)


async def test_add_remove_and_identify_a_person_with_their_records(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    registered = await register_persons(police, family()[1:2])
    case_id = registered.case_id
    victim = registered.persons[0].person_id
    stub = police._exchange
    child = common_pb2.PersonInput(role_in_case="child", name="Tim", date_of_birth="2015")
    added = await stub.AddPerson(
        exchange_pb2.AddPersonRequest(case_id=case_id, person=child, request_id="add-1"),
        metadata=police.metadata(),
    )
    again = await stub.AddPerson(
        exchange_pb2.AddPersonRequest(case_id=case_id, person=child, request_id="add-1"),
        metadata=police.metadata(),
    )
    assert again.person.person_id == added.person.person_id
    repo = CaseRepository(harness.gateway.engine)
    assert len(repo.persons(case_id)) == 2
    removed = await stub.RemovePerson(
        exchange_pb2.RemovePersonRequest(case_id=case_id, person_id=added.person.person_id),
        metadata=police.metadata(),
    )
    persons = {p.person_id: p for p in repo.persons(case_id)}
    child_row = persons[added.person.person_id]
    assert child_row.removed_at is not None and child_row.removed_by == "police"
    (added_record,) = [r for r in records_of(harness, case_id, "person_added")
                       if dict(r.event.detail).get("entry_id") == added.person.person_id]
    (removed_record,) = [r for r in records_of(harness, case_id, "person_removed")]
    assert removed_record.seq == removed.log_seq
    assert removed_record.event.subject_pseudonym == added_record.event.subject_pseudonym

    await to_case_meeting(director, case_id)
    answer = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    assert {p.person_id for p in answer.record.persons} == {victim}
    assert all(f.person_id in ("", victim) for f in answer.response.fields)

    victim_pseudonym = persons[victim].pseudonym
    identified = await stub.IdentifyPerson(
        exchange_pb2.IdentifyPersonRequest(case_id=case_id, person_id=victim, bsn=VICTIM_BSN),
        metadata=police.metadata(),
    )
    row = {p.person_id: p for p in repo.persons(case_id)}[victim]
    key = harness.gateway.keystore.pseudonym_key  # type: ignore[union-attr]
    assert row.pseudonym == victim_pseudonym  # earlier records stay linked
    assert row.bsn_pseudonym == subject_pseudonym(key, VICTIM_BSN)
    assert row.identified_by == "bsn"
    (record,) = records_of(harness, case_id, "person_identified")
    assert record.seq == identified.log_seq
    assert record.event.subject_pseudonym == victim_pseudonym
    # The victim's earlier records are found under the same pseudonym.
    earlier = [r for r in harness.gateway.log.list_records(case_id=case_id, limit=1000)
               if r.event.subject_pseudonym == victim_pseudonym]
    assert {"registration", "disclosure", "person_identified"} <= {
        r.event.kind for r in earlier
    }
    assert VICTIM_BSN not in str([r.event for r in earlier])

    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await stub.IdentifyPerson(
            exchange_pb2.IdentifyPersonRequest(case_id=case_id, person_id=victim, bsn=VICTIM_BSN),
            metadata=police.metadata(),
        )
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    outsider = harness.client("ggz")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await outsider._exchange.RemovePerson(
            exchange_pb2.RemovePersonRequest(case_id=case_id, person_id=victim),
            metadata=outsider.metadata(),
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("persons", "subject", "named"),
    [
        ([common_pb2.PersonInput(role_in_case="victim", name="A", date_of_birth="1990-02-30")],
         None, "persons[0].date_of_birth"),
        ([common_pb2.PersonInput(role_in_case="victim", name="A", date_of_birth="1990"),
          common_pb2.PersonInput(role_in_case="neighbour", name="B", date_of_birth="1990")],
         None, "persons[1].role_in_case"),
        ([common_pb2.PersonInput(role_in_case="victim")], None, "persons[0]"),
        ([common_pb2.PersonInput(role_in_case="victim", bsn="123456789")], None,
         "persons[0].bsn"),
        ([common_pb2.PersonInput(role_in_case="victim", name="A", date_of_birth="1990")],
         SUBJECT, "not both"),
    ],
)
async def test_invalid_persons_are_refused_by_name(
    harness: Harness,
    persons: list[common_pb2.PersonInput],
    subject: common_pb2.SubjectIdentity | None,
    named: str,
) -> None:
    async with harness.client("police") as police:
        request = exchange_pb2.RegisterCaseRequest(
            persons=persons, case_type="general", reason=REASON,
        )
        if subject is not None:
            request.subject.CopyFrom(subject)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await police.register_case_raw(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert named in (caught.value.details() or "")


async def test_the_client_registers_persons_and_adds_one_sealed(
    no_bsn_harness: Harness,
) -> None:
    harness = no_bsn_harness
    async with harness.client("police") as police, harness.client("zvh") as director:
        registered = await police.register_case(
            None, "general", reason=REASON, goal=GOAL, invitees=["zvh"], persons=family()[:2],
        )
        case_id = registered.case_id
        child = common_pb2.PersonInput(role_in_case="child", reference="POL-2026-77")
        added = await police.add_person(case_id, child, request_id="sealed-add-1")
        again = await police.add_person(case_id, child, request_id="sealed-add-1")
        assert again.person.person_id == added.person.person_id
        replays = records_of(harness, case_id, "replay")
        assert replays and replays[-1].event.subject_pseudonym == next(
            r.event.subject_pseudonym for r in records_of(harness, case_id, "person_added")
            if dict(r.event.detail).get("entry_id") == added.person.person_id
        )
        await accept(director, case_id)
        await director.change_phase(case_id, "registration", "triage")
        lookups_before = list(harness.sources["police"].servicer.lookups_seen)
        answer = await director.triage(
            case_id, partner_types=["police"], person_ids=[added.person.person_id]
        )
        # The police's own reference reaches the police source, and nothing else of it.
        assert harness.sources["police"].servicer.lookups_seen[len(lookups_before):] == [
            ("reference",)
        ]
        assert all(h.person_id == added.person.person_id for h in answer.hits)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await director.triage(case_id, partner_types=["bakery"])
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "partner_types[0]" in (caught.value.details() or "")


async def test_a_long_description_is_taken_up_to_its_limit(harness: Harness) -> None:
    text = "Woman of about thirty, speaks little Dutch.\n" + "x" * 1900
    async with harness.client("police") as police:
        ok = await register_persons(
            police, [common_pb2.PersonInput(role_in_case="victim", description=text)]
        )
        assert ok.persons[0].role_in_case == "victim"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await register_persons(
                police, [common_pb2.PersonInput(role_in_case="victim", description="y" * 2001)]
            )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "persons[0].description" in (caught.value.details() or "")
    repo = CaseRepository(harness.gateway.engine)
    (person,) = repo.persons(ok.case_id)
    assert person.identified_by == "unidentified"


async def test_a_case_registered_before_cases_had_persons_is_still_answered(
    harness: Harness,
) -> None:
    # Stored as the gateway stored cases before: the subject's entries are case-level and the
    # case has no person rows.
    from datetime import UTC, datetime

    from gateway.broker.case_entries import seal_entry
    from gateway.broker.ids import new_id
    from gateway.crypto.envelope import DataKey, wrap_data_key

    keystore = harness.gateway.keystore
    assert keystore is not None
    case_id, now, key = new_id("c_"), datetime.now(UTC), DataKey.generate()
    pseudonym = subject_pseudonym(keystore.pseudonym_key, SUBJECT.bsn)
    entries = [
        seal_entry(key, case_id, field, value, "police", now)
        for field, value in (("subject.bsn", SUBJECT.bsn), ("subject.name", SUBJECT.name),
                             ("subject.date_of_birth", SUBJECT.date_of_birth),
                             ("case.reason", REASON))
    ]
    CaseRepository(harness.gateway.engine).create_case(
        case_id=case_id, subject_pseudonym=pseudonym, case_type="code_rood",
        phase="registration", registered_by="police",
        wrapped_data_key=wrap_data_key(key, keystore.current_kek, case_id).to_bytes(),
        entries=entries, invitees=[("zvh", "police")], now=now,
    )
    async with harness.client("police") as police:
        answer = await police.request_disclosure(
            case_id, "acute_safety", "registration", justification="Acute threat tonight."
        )
    assert list(answer.record.persons) == [common_pb2.CasePersonRef(role_in_case="subject")]
    assert answer.values_of("")["case.reason"] == REASON
    assert answer.values_of("").get("police.incidents")
    (record,) = [r for r in records_of(harness, case_id, "disclosure")]
    assert record.event.subject_pseudonym == pseudonym


async def test_a_childs_identity_reaches_child_protection_and_not_the_housing_corporation(
    harness: Harness,
) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    registered = await police.register_case_raw(
        exchange_pb2.RegisterCaseRequest(
            persons=family(), approach="general", reason=REASON, goal=GOAL,
            invitees=["zvh", "rvdk", "housing"],
        )
    )
    case_id = registered.case_id
    perpetrator, _, child, _ = (p.person_id for p in registered.persons)
    await to_case_meeting(director, case_id)
    rvdk = harness.client("rvdk", role="chain_partner")
    housing = harness.client("housing", role="chain_partner")
    try:
        for_rvdk = await rvdk.request_disclosure(
            case_id, "analysis_and_plan", "case_meeting", fields=["subject.name"]
        )
        for_housing = await housing.request_disclosure(
            case_id, "analysis_and_plan", "case_meeting", fields=["subject.name"]
        )
    finally:
        await rvdk.close()
        await housing.close()

    def outcome(answer: object, person_id: str) -> int:
        [found] = [f for f in answer.response.fields  # type: ignore[attr-defined]
                   if f.person_id == person_id and f.field == "subject.name"]
        return int(found.outcome)

    def value(answer: object, person_id: str) -> str | None:
        for f in answer.record.fields:  # type: ignore[attr-defined]
            if f.person_id == person_id and f.field == "subject.name":
                return str(f.value)
        return None

    # The child's name: to child protection ...
    assert outcome(for_rvdk, child) == common_pb2.OUTCOME_DISCLOSED
    assert value(for_rvdk, child) == "Tim de Vries"
    # ... never to the landlord, which still learns its tenant's name.
    assert outcome(for_housing, child) == common_pb2.OUTCOME_WITHHELD
    assert value(for_housing, child) is None
    assert "Tim de Vries" not in for_housing.record.SerializeToString().decode("utf-8", "replace")
    assert outcome(for_housing, perpetrator) != common_pb2.OUTCOME_WITHHELD
