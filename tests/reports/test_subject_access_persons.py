"""The access report of one person of several: merged over the person's pseudonyms, nobody
else's records, the person's role per case, and holds reaching exactly the pseudonyms linked
to the one they are stored on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from gateway.broker.log_events import FieldEntry, LogRecord
from gateway.core import CompiledPolicy
from gateway.reports.subject_access import CaseRole, SubjectAccessReport, build_report
from gateway.reports.subject_access_html import render_html
from gateway.reports.subject_access_json import report_document
from gateway.store.holds import Hold
from tests.reports.conftest import SUBJECT_A, SUBJECT_B, T0, entry, hold, record
from tests.reports.test_subject_access_render import SCHEMA

NOW = T0 + timedelta(days=1)
# Person A stands under two pseudonyms: its own from before its BSN was known, and the BSN's.
A_LATER = "ps_" + "a1" * 16
CHILD = "ps_" + "c" * 32
POLICE_FIELD: tuple[FieldEntry, ...] = (entry("police.incidents", "police"),)


def build(
    policy: CompiledPolicy,
    records: Sequence[LogRecord],
    holds: Sequence[Hold] = (),
    reach: Mapping[str, frozenset[str]] | None = None,
) -> SubjectAccessReport:
    return build_report(
        subject_pseudonym=SUBJECT_A,
        subject_id_type="urn:ketenpoort:subject-id:hmac-sha256-person",
        records=records,
        holds=holds,
        policy=policy,
        prove=lambda seq: None,
        now=NOW,
        pseudonyms=(SUBJECT_A, A_LATER),
        cases=(CaseRole("c_1", "child"), CaseRole("c_2", "subject")),
        hold_reach=reach,
    )


def family_records() -> list[LogRecord]:
    """One disclosure (d_1) to the police about A and its sibling, then more about A."""
    return [
        record(1, disclosure_id="d_1", partner_id="police"),
        record(2, disclosure_id="d_1", partner_id="police", subject_pseudonym=CHILD),
        record(3, case_id="c_2", subject_pseudonym=A_LATER),
        record(4, subject_pseudonym=SUBJECT_B),
        record(5, fields=POLICE_FIELD),
    ]


def test_the_report_merges_the_persons_pseudonyms_and_leaves_out_the_others(
    policy: CompiledPolicy,
) -> None:
    records = family_records()
    # Given in any order, twice over (one record read under two pseudonyms): once, by seq.
    report = build(policy, [*reversed(records), records[2]])
    assert [e.seq for e in report.entries] == [1, 3, 5]
    assert [e.role_in_case for e in report.entries] == ["child", "subject", "child"]
    assert report.subject_pseudonyms == (SUBJECT_A, A_LATER)
    assert report.cases == (CaseRole("c_1", "child"), CaseRole("c_2", "subject"))


def test_a_hold_on_the_sibling_leaves_this_report_alone(policy: CompiledPolicy) -> None:
    report = build(policy, family_records(), [hold("police", subject=CHILD)])
    assert [e.seq for e in report.entries] == [1, 3, 5]
    assert not report.withheld_under_exception


def test_a_hold_reaches_the_pseudonyms_linked_to_its_own(policy: CompiledPolicy) -> None:
    on_later = hold("police", subject=A_LATER)
    # Stored on the BSN's pseudonym, it reaches the earlier one only through the link.
    assert [e.seq for e in build(policy, family_records(), [on_later]).entries] == [1, 3, 5]
    linked = {A_LATER: frozenset({A_LATER, SUBJECT_A})}
    report = build(policy, family_records(), [on_later], linked)
    assert [e.seq for e in report.entries] == [3]
    assert report.entries_withheld == 2 and report.withheld_under_exception
    # A hold on the earlier pseudonym, limited to case c_1, leaves the other case listed.
    in_case = build(policy, family_records(), [hold("police", case_id="c_1")])
    assert [e.seq for e in in_case.entries] == [3]


def test_the_documents_name_roles_and_every_pseudonym(policy: CompiledPolicy) -> None:
    report = build(policy, family_records())
    document = report_document(report, "en")
    assert [e.message for e in SCHEMA.iter_errors(document)] == []
    assert document["subject"] == {
        "pseudonym": SUBJECT_A,
        "pseudonyms": [SUBJECT_A, A_LATER],
        "id_type": "urn:ketenpoort:subject-id:hmac-sha256-person",
        "cases": [{"case_id": "c_1", "role": "child"}, {"case_id": "c_2", "role": "subject"}],
    }
    assert [d["role_in_case"] for d in document["disclosures"]] == ["child", "subject", "child"]
    page = render_html(report, "nl")
    assert "Uw rol in dat dossier" in page and "<code>child</code>" in page
    assert f"{SUBJECT_A}, {A_LATER}" in page
