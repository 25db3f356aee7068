"""The subject access report (AVG art. 15) and confidentiality holds, over real gRPC.

Two subjects with disclosures, a triage answer and a refusal; the report must list exactly
subject A's disclosures (compared with the log), none of B's, each with an inclusion proof
that checks against the signed checkpoint. Holds hide exactly what they cover while they
last; the gateway runs on a clock the test moves forward.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.broker.log_events import RecordKind
from gateway.cli.demo_data import SUBJECT
from gateway.core import CompiledPolicy
from gateway.reports.subject_access_text import WITHHELD_STATEMENT
from gateway.store.holds import HoldStore
from tests.integration.access_helpers import (
    OTHER,
    Clock,
    access_report,
    check_proofs,
    covered_by,
    hold_reason,
    lift_hold,
    listed_seqs,
    place_hold,
    pseudonym_of,
    report_json,
    reported_records,
    rfc3339,
    schema_errors,
    two_subjects,
)
from tests.integration.harness import Harness, running_harness

REASON = "Lopend opsporingsonderzoek; inzage zou het onderzoek schaden."


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


@pytest.fixture
async def gateway_on_clock(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy, clock: Clock
) -> AsyncIterator[Harness]:
    async with running_harness(db_url, dev_keys, shipped_policy, clock=clock) as harness:
        yield harness


async def test_the_report_lists_exactly_the_subjects_disclosures(
    gateway_on_clock: Harness,
) -> None:
    harness = gateway_on_clock
    scenario = await two_subjects(harness)
    expected = [r.seq for r in reported_records(harness, SUBJECT.bsn)]
    kinds = {r.event.kind for r in reported_records(harness, SUBJECT.bsn)}
    assert kinds == {RecordKind.DISCLOSURE, RecordKind.TRIAGE}

    response = await access_report(harness)
    document = report_json(response)
    assert schema_errors(document) == []
    assert document["schema"] == "ketenpoort-subject-access/1"
    assert listed_seqs(document) == expected
    assert response.disclosures_listed == len(expected)
    assert scenario.refusal_seq not in listed_seqs(document)
    assert {d["case_id"] for d in document["disclosures"]} == {scenario.case_a1, scenario.case_a2}
    assert document["withheld_under_exception"] is False and document["statement"] is None
    assert document["subject"]["pseudonym"] == pseudonym_of(harness, SUBJECT.bsn)

    first = document["disclosures"][0]
    record = next(r for r in reported_records(harness, SUBJECT.bsn) if r.seq == first["seq"])
    assert first["recipient"]["partner_id"] == record.event.partner_id
    assert first["purpose"]["id"] == record.event.purpose and first["purpose"]["description"]
    assert [g["id"] for g in first["legal_bases"]] == record.event.legal_basis.split(", ")
    assert all(g["title"] for g in first["legal_bases"])
    assert first["processing_activity"] == record.event.processing_activity
    released = [f.field for f in record.event.fields if f.outcome != "withheld"]
    assert [f["field"] for f in first["fields"]] == released
    check_proofs(document, harness.gateway.log, harness.keys)

    other = report_json(await access_report(harness, OTHER.bsn))
    assert {d["case_id"] for d in other["disclosures"]} == {scenario.case_b}
    assert listed_seqs(other) == [r.seq for r in reported_records(harness, OTHER.bsn)]

    # Making the report is itself recorded: who, about whom (pseudonym), counts; no BSN.
    made = harness.gateway.log.list_records(kinds=[RecordKind.SUBJECT_ACCESS])
    assert [r.seq for r in made][0] == response.record_seq
    mine = made[0].event
    assert mine.subject_pseudonym == document["subject"]["pseudonym"]
    assert (mine.partner_id, mine.role) == ("zvh", "privacy_officer")
    assert dict(mine.detail)["listed"] == str(len(expected))
    assert dict(mine.detail)["withheld"] == "0"
    for r in harness.gateway.log.list_records(limit=10_000):
        body = json.dumps(r.event.detail) + r.event.subject_pseudonym + r.event.user_ref
        assert SUBJECT.bsn not in body and OTHER.bsn not in body


async def test_a_hold_hides_what_it_covers_until_lifted_or_ended(
    gateway_on_clock: Harness, clock: Clock
) -> None:
    harness = gateway_on_clock
    scenario = await two_subjects(harness)
    records = reported_records(harness, SUBJECT.bsn)
    everything = [r.seq for r in records]

    case_hold = await place_hold(
        harness,
        "police",
        case_id=scenario.case_a1,
        reason=REASON,
        until=rfc3339(clock.now + timedelta(days=30)),
    )
    hidden = covered_by(records, partner="police", partner_type="police", case_id=scenario.case_a1)
    as_source = {r.seq for r in records if r.seq in hidden and r.event.partner_id != "police"}
    assert as_source, "the scenario has entries the police supplied fields to"
    assert scenario.uncovered_in_a1 and not scenario.uncovered_in_a1 & hidden
    response = await access_report(harness)
    document = report_json(response)
    assert schema_errors(document) == []
    assert listed_seqs(document) == [s for s in everything if s not in hidden]
    assert response.withheld_under_exception and document["withheld_under_exception"]
    # One fixed statement, whoever holds what: it names no partner and no number.
    assert document["statement"] == WITHHELD_STATEMENT
    page = (await access_report(harness, fmt="html", language="nl")).document.decode()
    assert WITHHELD_STATEMENT["nl"] in page

    # The table keeps the hold and the seq of its log record; the log keeps no reason.
    row = HoldStore(harness.gateway.engine).get(case_hold.hold_id)
    assert row is not None and row.record_seq == case_hold.record_seq
    assert row.case_id == scenario.case_a1 and REASON.encode() not in row.reason_ciphertext
    assert hold_reason(harness, row) == REASON
    (placed,) = harness.gateway.log.list_records(kinds=[RecordKind.HOLD_PLACED])
    assert placed.seq == case_hold.record_seq
    detail = dict(placed.event.detail)
    assert set(detail) == {"case_scope", "hold_id", "reason_hmac", "until"}
    assert detail["hold_id"] == case_hold.hold_id and detail["case_scope"] == "case"
    assert detail["reason_hmac"].startswith("hmac-sha256:")
    assert placed.event.subject_pseudonym == pseudonym_of(harness, SUBJECT.bsn)

    lift_seq = await lift_hold(harness, "police", case_hold.hold_id)
    (lifted,) = harness.gateway.log.list_records(kinds=[RecordKind.HOLD_LIFTED])
    assert lifted.seq == lift_seq and dict(lifted.event.detail)["hold_id"] == case_hold.hold_id
    after_lift = report_json(await access_report(harness))
    assert listed_seqs(after_lift) == everything
    assert after_lift["statement"] is None

    # A date: the hold ends as that day begins (UTC), so within two days.
    in_two_days = (clock.now + timedelta(days=2)).date().isoformat()
    all_cases = await place_hold(harness, "police", reason=REASON, until=in_two_days)
    hidden_all = covered_by(records, partner="police", partner_type="police")
    assert hidden_all > hidden, "the hold on every case also covers case A2"
    held = report_json(await access_report(harness))
    assert listed_seqs(held) == [s for s in everything if s not in hidden_all]

    clock.advance(days=3)
    ended = report_json(await access_report(harness))
    assert listed_seqs(ended) == everything and ended["statement"] is None
    row = HoldStore(harness.gateway.engine).get(all_cases.hold_id)
    assert row is not None and row.case_id == "" and row.lifted_at is None
    # No case key to share: the reason has a key of its own.
    assert row.reason_key_id == f"hold_reason/hold/{all_cases.hold_id}"
    assert hold_reason(harness, row) == REASON
    for r in harness.gateway.log.list_records(limit=10_000):
        assert REASON not in json.dumps(r.event.detail)
