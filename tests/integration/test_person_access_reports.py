"""Access reports and confidentiality holds per person, over real gRPC, on SQLite and
PostgreSQL: a family case where each member's report lists that member's records only, a
person without a BSN found by case and person id, a BSN learnt later that still finds the
earlier records, and a hold on one child that keeps only that child's records out of only
that child's report.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.broker.log_events import SUBJECT_ID_TYPE, LogRecord, RecordKind
from gateway.broker.subjects import PERSON_ID_TYPE
from gateway.cli.main import main
from gateway.core import CompiledPolicy
from gateway.reports.subject_access_text import WITHHELD_STATEMENT
from gateway.server.config import shipped_policy_dir
from gateway.store.audit_log import AuditLog
from gateway.store.db import create_engine_for
from gateway.store.holds import HoldStore
from tests.integration.access_helpers import (
    Clock,
    access_report,
    check_proofs,
    lift_hold,
    listed_seqs,
    place_hold,
    report_json,
    rfc3339,
    schema_errors,
)
from tests.integration.family_case import CHILD_BSN, FATHER_BSN, Family, family_case
from tests.integration.harness import Harness, running_harness

REASON = "Lopend opsporingsonderzoek naar mishandeling; inzage zou het onderzoek schaden."


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


@pytest.fixture
async def gateway(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy, clock: Clock
) -> AsyncIterator[Harness]:
    async with running_harness(db_url, dev_keys, shipped_policy, clock=clock) as harness:
        yield harness


async def report_of(harness: Harness, family: Family, person_id: str) -> dict[str, Any]:
    response = await access_report(harness, "", case_id=family.case_id, person_id=person_id)
    document = report_json(response)
    assert schema_errors(document) == []
    assert document["record_seq"] == response.record_seq
    return document


def report_records(harness: Harness) -> list[LogRecord]:
    return harness.gateway.log.list_records(kinds=[RecordKind.SUBJECT_ACCESS], limit=1000)


async def refused_with(code: grpc.StatusCode, call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == code, err.value.details()
    return err.value.details() or ""


async def test_each_family_member_gets_exactly_their_own_records(gateway: Harness) -> None:
    family = await family_case(gateway)
    s = family.seqs

    child1 = await report_of(gateway, family, family.child1.person_id)
    # d1 went to the police about both children: child1's report has child1's record only.
    assert listed_seqs(child1) == [s["d1_child1"], s["d3_child1"], s["d4_child1"]]
    assert child1["subject"] == {
        "pseudonym": family.child1.pseudonym,
        "pseudonyms": [family.child1.pseudonym],
        "id_type": PERSON_ID_TYPE,
        "cases": [{"case_id": family.case_id, "role": "child"}],
    }
    assert {d["role_in_case"] for d in child1["disclosures"]} == {"child"}
    # Withheld fields are not listed; the police's field that left is.
    (d3,) = [d for d in child1["disclosures"] if d["seq"] == s["d3_child1"]]
    assert [f["field"] for f in d3["fields"]] == ["police.incidents"]
    check_proofs(child1, gateway.gateway.log, gateway.keys)

    mother = await report_of(gateway, family, family.mother.person_id)
    assert listed_seqs(mother) == [s["d2_mother"]]

    by_bsn = report_json(await access_report(gateway, FATHER_BSN))
    by_person = await report_of(gateway, family, family.father.person_id)
    assert listed_seqs(by_bsn) == listed_seqs(by_person) == [s["d2_father"]]
    assert by_bsn["subject"]["id_type"] == by_person["subject"]["id_type"] == SUBJECT_ID_TYPE
    assert by_bsn["subject"]["cases"] == [
        {"case_id": family.case_id, "role": "alleged_perpetrator"}
    ]

    # Each report is recorded on the person's own pseudonym; a person report names its case.
    made = report_records(gateway)
    assert [(r.event.subject_pseudonym, r.event.case_id) for r in made] == [
        (family.child1.pseudonym, family.case_id),
        (family.mother.pseudonym, family.case_id),
        (family.father.pseudonym, ""),
        (family.father.pseudonym, family.case_id),
    ]
    assert dict(made[0].event.detail)["named_by"] == "person"
    assert dict(made[2].event.detail)["named_by"] == "bsn"
    assert made[0].seq == child1["record_seq"]
    for r in gateway.gateway.log.list_records(limit=10_000):
        text = json.dumps(r.event.detail) + r.event.subject_pseudonym + r.event.case_id
        assert FATHER_BSN not in text and CHILD_BSN not in text


async def test_a_bsn_learnt_later_still_finds_the_earlier_records(gateway: Harness) -> None:
    family = await family_case(gateway)
    s = family.seqs
    expected = [s["d1_child2"], s["d5_child2"]]
    roles = [
        {"case_id": family.case_id, "role": "child"},
        {"case_id": family.later_case_id, "role": "subject"},
    ]

    before = len(report_records(gateway))
    response = await access_report(gateway, CHILD_BSN)
    by_bsn = report_json(response)
    assert schema_errors(by_bsn) == []
    assert listed_seqs(by_bsn) == expected, "merged in seq order over both pseudonyms"
    assert by_bsn["subject"]["pseudonyms"] == [
        family.child2_later.pseudonym,
        family.child2.pseudonym,
    ]
    assert sorted(by_bsn["subject"]["cases"], key=lambda c: c["role"]) == roles
    assert [d["role_in_case"] for d in by_bsn["disclosures"]] == ["child", "subject"]
    check_proofs(by_bsn, gateway.gateway.log, gateway.keys)
    # One record per pseudonym the report covers; the response names the first.
    made = report_records(gateway)[before:]
    assert [r.event.subject_pseudonym for r in made] == by_bsn["subject"]["pseudonyms"]
    assert made[0].seq == response.record_seq == by_bsn["record_seq"]
    assert {dict(r.event.detail)["pseudonyms"] for r in made} == {"2"}
    assert {dict(r.event.detail)["listed"] for r in made} == {"2"}

    # Named by the person of the first case, the same person and the same records.
    by_person = await report_of(gateway, family, family.child2.person_id)
    assert listed_seqs(by_person) == expected
    assert by_person["subject"]["pseudonym"] == family.child2.pseudonym
    assert by_person["subject"]["id_type"] == PERSON_ID_TYPE
    # The other child is still on its own.
    child1 = await report_of(gateway, family, family.child1.person_id)
    assert not set(listed_seqs(child1)) & set(expected)


async def test_a_hold_on_one_child_keeps_only_that_childs_records_out(
    gateway: Harness, clock: Clock
) -> None:
    family = await family_case(gateway)
    s = family.seqs
    until = rfc3339(clock.now + timedelta(days=30))
    placed = await place_hold(
        gateway,
        "police",
        bsn="",
        case_id=family.case_id,
        person_id=family.child1.person_id,
        reason=REASON,
        until=until,
    )
    # Kept on child1's pseudonym, limited to the case; logged with that pseudonym only.
    row = HoldStore(gateway.gateway.engine).get(placed.hold_id)
    assert row is not None
    assert (row.subject_pseudonym, row.case_id) == (family.child1.pseudonym, family.case_id)
    (record,) = gateway.gateway.log.list_records(kinds=[RecordKind.HOLD_PLACED])
    assert record.seq == placed.record_seq
    assert record.event.subject_pseudonym == family.child1.pseudonym
    assert record.event.case_id == family.case_id and record.event.phase == "case_meeting"
    assert set(dict(record.event.detail)) == {"case_scope", "hold_id", "reason_hmac", "until"}
    assert dict(record.event.detail)["case_scope"] == "case"

    # The police received d1 and supplied d3's field: both out; d4 stays.
    child1 = await report_of(gateway, family, family.child1.person_id)
    assert listed_seqs(child1) == [s["d4_child1"]]
    assert child1["withheld_under_exception"] and child1["statement"] == WITHHELD_STATEMENT
    assert dict(report_records(gateway)[-1].event.detail)["withheld"] == "2"
    # The other child got the same d1 from the police: not held, still listed.
    child2 = await report_of(gateway, family, family.child2.person_id)
    assert listed_seqs(child2) == [s["d1_child2"], s["d5_child2"]]
    assert child2["withheld_under_exception"] is False
    father = report_json(await access_report(gateway, FATHER_BSN))
    assert listed_seqs(father) == [s["d2_father"]] and father["statement"] is None

    await lift_hold(gateway, "police", placed.hold_id)
    child1 = await report_of(gateway, family, family.child1.person_id)
    assert listed_seqs(child1) == [s["d1_child1"], s["d3_child1"], s["d4_child1"]]


async def test_a_hold_by_bsn_reaches_the_pseudonym_from_before_the_bsn_was_known(
    gateway: Harness, clock: Clock
) -> None:
    family = await family_case(gateway)
    s = family.seqs
    until = rfc3339(clock.now + timedelta(days=30))
    # The BSN is in the first case only through child2, whose BSN was learnt later.
    placed = await place_hold(
        gateway, "police", bsn=CHILD_BSN, case_id=family.case_id, reason=REASON, until=until
    )
    row = HoldStore(gateway.gateway.engine).get(placed.hold_id)
    assert row is not None and row.subject_pseudonym == family.child2_later.pseudonym
    # d1 (to the police, under child2's first pseudonym) is held; d5 (later case) is not.
    for document in (
        report_json(await access_report(gateway, CHILD_BSN)),
        await report_of(gateway, family, family.child2.person_id),
    ):
        assert listed_seqs(document) == [s["d5_child2"]]
        assert document["withheld_under_exception"]
    child1 = await report_of(gateway, family, family.child1.person_id)
    assert s["d1_child1"] in listed_seqs(child1) and not child1["withheld_under_exception"]


async def test_naming_the_subject_badly_is_refused(gateway: Harness, clock: Clock) -> None:
    family = await family_case(gateway)
    invalid, missing = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    before = len(report_records(gateway))
    child = family.child1.person_id

    both = await refused_with(
        invalid, access_report(gateway, CHILD_BSN, case_id=family.case_id, person_id=child)
    )
    assert "not both" in both and CHILD_BSN not in both
    await refused_with(invalid, access_report(gateway, "", case_id=family.case_id))
    await refused_with(invalid, access_report(gateway, "", person_id=child))
    await refused_with(invalid, access_report(gateway, ""))
    await refused_with(
        invalid, access_report(gateway, "", case_id=family.case_id, person_id="p" * 65)
    )
    unknown_person = await refused_with(
        missing, access_report(gateway, "", case_id=family.case_id, person_id="p_nobody")
    )
    unknown_case = await refused_with(
        missing, access_report(gateway, "", case_id="c_nothere", person_id=child)
    )
    assert unknown_person == unknown_case, "the answer does not tell the two apart"
    # Not a privacy officer: refused as today.
    await refused_with(
        grpc.StatusCode.PERMISSION_DENIED,
        access_report(
            gateway, "", case_id=family.case_id, person_id=child, role="process_director"
        ),
    )
    assert len(report_records(gateway)) == before, "no report was made"

    until = rfc3339(clock.now + timedelta(days=30))
    hold_args = {"reason": REASON, "until": until}
    await refused_with(
        invalid,
        place_hold(gateway, "police", case_id=family.case_id, person_id=child, **hold_args),
    )  # the default BSN as well as a person
    await refused_with(invalid, place_hold(gateway, "police", bsn="", person_id=child, **hold_args))
    held_missing = await refused_with(
        missing,
        place_hold(
            gateway, "police", bsn="", case_id=family.case_id, person_id="p_nobody", **hold_args
        ),
    )
    assert held_missing == unknown_person
    # A BSN limited to a case where nobody has it.
    await refused_with(
        missing,
        place_hold(gateway, "police", bsn=FATHER_BSN, case_id=family.later_case_id, **hold_args),
    )
    # A partner that may not place holds is refused on record, naming the person's pseudonym.
    await refused_with(
        grpc.StatusCode.PERMISSION_DENIED,
        place_hold(
            gateway, "municipality", bsn="", case_id=family.case_id, person_id=child, **hold_args
        ),
    )
    refusals = [
        (r.event.partner_id, r.event.refusal_code, r.event.subject_pseudonym)
        for r in gateway.gateway.log.list_records(kinds=[RecordKind.REFUSAL])
        if r.event.refusal_code == "holds_not_allowed"
    ]
    assert refusals == [("municipality", "holds_not_allowed", family.child1.pseudonym)]
    assert not gateway.gateway.log.list_records(kinds=[RecordKind.HOLD_PLACED])


async def test_the_command_reports_on_a_person_of_a_case(
    tmp_path: Path,
    dev_keys: Path,
    shipped_policy: CompiledPolicy,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    async with running_harness(url, dev_keys, shipped_policy) as harness:
        family = await family_case(harness)
    s = family.seqs
    source = ["--database", url, "--keys", str(dev_keys), "--policy", str(shipped_policy_dir())]
    out = tmp_path / "report.json"
    person = ["--case", family.case_id, "--person", family.child1.person_id]
    assert main(["audit", "report", *person, *source, "-o", str(out)]) == 0
    document = json.loads(out.read_text("utf-8"))
    assert schema_errors(document) == []
    assert listed_seqs(document) == [s["d1_child1"], s["d3_child1"], s["d4_child1"]]
    assert document["subject"]["cases"] == [{"case_id": family.case_id, "role": "child"}]
    # --bsn is --subject by another name; the BSN learnt later finds both pseudonyms.
    assert main(["audit", "report", "--bsn", CHILD_BSN, *source, "-o", str(out)]) == 0
    assert listed_seqs(json.loads(out.read_text("utf-8"))) == [s["d1_child2"], s["d5_child2"]]

    capsys.readouterr()
    no_case = ["--person", family.child1.person_id]
    assert main(["audit", "report", *no_case, *source]) == 2
    assert "--case and --person" in capsys.readouterr().err
    for wrong in (["--case", family.case_id], ["--subject", CHILD_BSN, *person]):
        with pytest.raises(SystemExit) as refused:
            main(["audit", "report", *wrong, *source])
        assert refused.value.code == 2
    unknown = ["--case", family.case_id, "--person", "p_nobody"]
    assert main(["audit", "report", *unknown, *source]) == 2
    assert "no such person" in capsys.readouterr().err
    assert main(["audit", "report", "--bsn", CHILD_BSN, "--case", family.case_id, *source]) == 2

    engine = create_engine_for(url)
    try:
        made = AuditLog(engine).list_records(kinds=[RecordKind.SUBJECT_ACCESS])
    finally:
        engine.dispose()
    assert [r.event.subject_pseudonym for r in made] == [
        family.child1.pseudonym,
        family.child2_later.pseudonym,
        family.child2.pseudonym,
    ]
    assert made[0].seq == document["record_seq"] and made[0].event.case_id == family.case_id
