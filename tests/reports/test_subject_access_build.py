"""Building the access report from log records: what it lists, what a hold covers, proofs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.broker.log_events import SUBJECT_ID_TYPE, LogRecord, RecordKind
from gateway.core import CompiledPolicy
from gateway.reports.subject_access import Prover, SubjectAccessReport, build_report, covers
from gateway.store.audit_event import encode_event
from gateway.store.audit_proofs import InclusionProofData
from gateway.store.checkpoints import CheckpointSigner
from gateway.store.holds import Hold
from gateway.store.merkle import (
    inclusion_proof,
    leaf_hash,
    leaves_subtree,
    root_of,
    verify_inclusion,
)
from tests.reports.conftest import SUBJECT_A, SUBJECT_B, T0, entry, hold, record

NOW = T0 + timedelta(days=1)


def no_proof(seq: int) -> InclusionProofData | None:
    return None


def build(
    policy: CompiledPolicy,
    records: list[LogRecord],
    holds: Sequence[Hold] = (),
    prove: Prover = no_proof,
) -> SubjectAccessReport:
    return build_report(
        subject_pseudonym=SUBJECT_A,
        subject_id_type=SUBJECT_ID_TYPE,
        records=records,
        holds=list(holds),
        policy=policy,
        prove=prove,
        now=NOW,
    )


def test_a_hold_covers_what_its_partner_received_or_supplied() -> None:
    police = hold("police")
    received = record(1, partner_id="police").event
    supplied = record(2, fields=(entry("police.incidents", "police", "masked"),)).event
    withheld_only = record(
        3,
        fields=(
            entry("mun.debts", "municipality"),
            entry("police.incidents", "police", "withheld"),
        ),
    ).event
    unrelated = record(4).event
    assert covers(police, "police", received)
    assert covers(police, "police", supplied)
    assert not covers(police, "police", withheld_only), "nothing of the police's left"
    assert not covers(police, "police", unrelated)
    # Scope: its subject, and its case when it names one.
    assert not covers(hold("police", subject=SUBJECT_B), "police", received)
    assert covers(hold("police", case_id="c_1"), "police", supplied)
    assert not covers(hold("police", case_id="c_2"), "police", supplied)
    # A partner gone from the policy still holds back what it received.
    assert covers(police, None, received) and not covers(police, None, supplied)


def test_a_hold_lasts_until_its_end_or_lift() -> None:
    h = hold(until=T0 + timedelta(days=2))
    # A replica whose clock runs behind the placing one still honours the hold.
    assert h.active_at(T0 - timedelta(seconds=1))
    assert h.active_at(T0) and h.active_at(T0 + timedelta(days=2) - timedelta(microseconds=1))
    assert not h.active_at(T0 + timedelta(days=2))
    lifted = hold(until=T0 + timedelta(days=2), lifted_at=T0 + timedelta(hours=1))
    assert lifted.active_at(T0 + timedelta(minutes=59))
    assert not lifted.active_at(T0 + timedelta(hours=1))


def test_only_disclosures_and_triage_answers_that_went_out_are_listed(
    policy: CompiledPolicy,
) -> None:
    records = [
        record(1),
        record(
            2,
            kind=RecordKind.TRIAGE,
            purpose="triage",
            fields=(entry("triage.role", "police", "masked", "index"),),
        ),
        record(3, kind=RecordKind.REFUSAL, status="refused", refusal_code="not_participant"),
        record(4, status="incomplete"),
        record(5, status="error"),
        record(6, kind=RecordKind.REGISTRATION, fields=()),
        record(7, subject_pseudonym=SUBJECT_B),
    ]
    report = build(policy, records)
    assert [e.seq for e in report.entries] == [1, 2, 4]
    assert not report.withheld_under_exception and report.checkpoints == ()


def test_an_entry_names_grounds_fields_and_people_from_the_policy(policy: CompiledPolicy) -> None:
    report = build(policy, [record(1), record(2, partner_id="gone", role="nobody")])
    first, second = report.entries
    assert first.recipient.display_name == "Gemeente"
    assert first.recipient.partner_type == "municipality"
    assert first.purpose.description and first.role.description
    assert [g.id for g in first.legal_grounds] == [
        "wgs-joint-processing",
        "wgs-supply-to-participant",
    ]
    assert all(g.title for g in first.legal_grounds)
    # Withheld fields did not leave: they are not listed.
    assert [(f.field, f.outcome) for f in first.fields] == [("mun.debts", "disclosed")]
    assert first.fields[0].description and first.fields[0].category.description
    assert first.fields[0].source.description.startswith("Gemeente")
    assert (second.recipient.display_name, second.role.description) == ("gone", "")


def test_held_entries_are_left_out_and_counted_for_the_log_only(policy: CompiledPolicy) -> None:
    records = [
        record(1, partner_id="police"),
        record(2, fields=(entry("police.weapon_flag", "police"),)),
        record(3),
        record(4, partner_id="police", case_id="c_2"),
    ]
    case_hold = build(policy, records, [hold("police", case_id="c_1")])
    assert [e.seq for e in case_hold.entries] == [3, 4]
    assert case_hold.withheld_under_exception and case_hold.entries_withheld == 2
    everywhere = build(policy, records, [hold("police")])
    assert [e.seq for e in everywhere.entries] == [3]
    ended = [
        hold("police", until=NOW),
        hold("police", lifted_at=NOW - timedelta(hours=1)),
        hold("police", subject=SUBJECT_B),
        hold("municipality", case_id="c_9"),
    ]
    none_held = build(policy, records, ended)
    assert [e.seq for e in none_held.entries] == [1, 2, 3, 4]
    assert not none_held.withheld_under_exception and none_held.entries_withheld == 0


def test_proofs_lead_to_the_signed_root_and_checkpoints_are_listed_once(
    policy: CompiledPolicy,
) -> None:
    records = [record(seq) for seq in range(1, 6)]
    leaves = [leaf_hash(encode_event(r.event).encode("utf-8")) for r in records]
    signer = CheckpointSigner(Ed25519PrivateKey.generate(), "zvh.example/log")
    checkpoint = signer.sign(len(leaves), root_of(leaves), NOW)

    def prove(seq: int) -> InclusionProofData | None:
        if seq == 5:
            return None  # not yet under a checkpoint
        body = encode_event(records[seq - 1].event)
        path = inclusion_proof(seq - 1, len(leaves), leaves_subtree(leaves))
        return InclusionProofData(seq, seq - 1, len(leaves), body, path, checkpoint)

    report = build(policy, records, prove=prove)
    assert len(report.checkpoints) == 1
    listed = report.checkpoints[0]
    assert (listed.tree_size, listed.root_hash) == (5, checkpoint.root_hash.hex())
    assert listed.note == checkpoint.note
    for e in report.entries[:4]:
        assert e.proof is not None
        assert verify_inclusion(
            bytes.fromhex(e.proof.leaf_hash),
            e.proof.leaf_index,
            e.proof.tree_size,
            [bytes.fromhex(p) for p in e.proof.path],
            checkpoint.root_hash,
        )
    assert report.entries[4].proof is None
    # A tampered body gives another leaf, which the path does not lead from.
    forged = replace(records[0].event, partner_id="om")
    forged_leaf = leaf_hash(encode_event(forged).encode("utf-8"))
    assert report.entries[0].proof is not None
    assert not verify_inclusion(
        forged_leaf,
        0,
        5,
        [bytes.fromhex(p) for p in report.entries[0].proof.path],
        checkpoint.root_hash,
    )
