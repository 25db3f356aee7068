"""Calls for holds and access reports over real gRPC, and a scenario of two subjects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from jsonschema import Draft202012Validator

from gateway.api.v1 import (
    accountability_pb2,
    accountability_pb2_grpc,
    common_pb2,
    exchange_pb2,
    exchange_pb2_grpc,
)
from gateway.broker.free_texts import FreeTexts, SealedText
from gateway.broker.log_events import FieldOutcome, LogRecord
from gateway.cli.demo_data import SUBJECT
from gateway.crypto.free_text import TextKind
from gateway.crypto.keystore import Keystore
from gateway.crypto.pseudonym import subject_pseudonym
from gateway.store.audit_log import AuditLog
from gateway.store.checkpoints import open_checkpoint
from gateway.store.holds import Hold
from gateway.store.merkle import leaf_hash, verify_inclusion
from gateway.store.text_keys import TextKeyStore
from tests.integration.harness import ROLES, Harness
from tests.integration.helpers import accept, register

# A second subject; valid BSN (passes the eleven test), invented like the first.
OTHER = common_pb2.SubjectIdentity(
    bsn="123456782",
    name="Piet Jansen",
    date_of_birth="1979-05-05",
    address="Beukenlaan 3",
    postcode="7522 CD",
)
REPORTED = {"disclosure", "triage"}
ROOT = Path(__file__).resolve().parents[2]
REPORT_SCHEMA = Draft202012Validator(
    json.loads((ROOT / "docs/schema/subject-access-report.schema.json").read_text("utf-8"))
)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@asynccontextmanager
async def channel(harness: Harness, partner: str) -> AsyncIterator[grpc.aio.Channel]:
    """A channel presenting ``partner``'s certificate (tokens are bound to it)."""
    async with harness.channel(partner) as ch:
        yield ch


async def place_hold(
    harness: Harness,
    partner: str,
    *,
    bsn: str = SUBJECT.bsn,
    until: str,
    reason: str,
    case_id: str = "",
    person_id: str = "",
) -> exchange_pb2.PlaceHoldResponse:
    client = harness.client(partner, role=ROLES.get(partner, "chain_partner"))
    try:
        async with channel(harness, partner) as ch:
            stub = exchange_pb2_grpc.ExchangeServiceStub(ch)  # type: ignore[no-untyped-call]
            request = exchange_pb2.PlaceHoldRequest(
                bsn=bsn, case_id=case_id, reason=reason, until=until, person_id=person_id
            )
            response: exchange_pb2.PlaceHoldResponse = await stub.PlaceConfidentialityHold(
                request, metadata=client.metadata(), timeout=10
            )
            return response
    finally:
        await client.close()


async def lift_hold(harness: Harness, partner: str, hold_id: str) -> int:
    client = harness.client(partner, role=ROLES.get(partner, "chain_partner"))
    try:
        async with channel(harness, partner) as ch:
            stub = exchange_pb2_grpc.ExchangeServiceStub(ch)  # type: ignore[no-untyped-call]
            response: exchange_pb2.LiftHoldResponse = await stub.LiftConfidentialityHold(
                exchange_pb2.LiftHoldRequest(hold_id=hold_id),
                metadata=client.metadata(),
                timeout=10,
            )
            return int(response.record_seq)
    finally:
        await client.close()


async def access_report(
    harness: Harness,
    bsn: str = SUBJECT.bsn,
    *,
    fmt: str = "",
    language: str = "",
    role: str = "privacy_officer",
    case_id: str = "",
    person_id: str = "",
) -> accountability_pb2.SubjectAccessReportResponse:
    """The report of the subject named by ``bsn``, or by ``case_id`` and ``person_id``
    (pass ``bsn=""`` then)."""
    client = harness.client("zvh", role=role)
    try:
        async with channel(harness, "zvh") as ch:
            stub = accountability_pb2_grpc.AccountabilityServiceStub(ch)  # type: ignore[no-untyped-call]
            response: accountability_pb2.SubjectAccessReportResponse = (
                await stub.SubjectAccessReport(
                    accountability_pb2.SubjectAccessReportRequest(
                        bsn=bsn,
                        format=fmt,
                        language=language,
                        case_id=case_id,
                        person_id=person_id,
                    ),
                    metadata=client.metadata(),
                    timeout=30,
                )
            )
            return response
    finally:
        await client.close()


def report_json(response: accountability_pb2.SubjectAccessReportResponse) -> dict[str, Any]:
    assert response.media_type == "application/json"
    document: dict[str, Any] = json.loads(response.document.decode("utf-8"))
    return document


def listed_seqs(document: dict[str, Any]) -> list[int]:
    return [int(d["seq"]) for d in document["disclosures"]]


def pseudonym_of(harness: Harness, bsn: str) -> str:
    return subject_pseudonym(Keystore.open(harness.keys).pseudonym_key, bsn)


def hold_reason(harness: Harness, hold: Hold) -> str | None:
    """A stored hold's reason, opened with the serving gateway's keys as the product does."""
    keystore = harness.gateway.keystore
    assert keystore is not None
    texts = FreeTexts(TextKeyStore(harness.gateway.engine), keystore, lambda: datetime.now(UTC))
    sealed = SealedText(hold.reason_key_id, hold.reason_ciphertext)
    return texts.open(sealed, kind=TextKind.HOLD_REASON, row_id=hold.hold_id)


def reported_records(harness: Harness, bsn: str) -> list[LogRecord]:
    """What the report must list, read straight from the log: the subject's disclosure and
    triage records that went out."""
    records = harness.gateway.log.list_records(
        subject_pseudonym=pseudonym_of(harness, bsn), limit=10_000
    )
    return [
        r for r in records if r.event.kind in REPORTED and r.event.status in ("ok", "incomplete")
    ]


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Where ``document`` departs from docs/schema/subject-access-report.schema.json."""
    return [f"{list(e.absolute_path)}: {e.message}" for e in REPORT_SCHEMA.iter_errors(document)]


def check_proofs(document: dict[str, Any], log: AuditLog, keys: Path) -> None:
    """Every entry's proof leads from its own record to a root the gateway signed."""
    public_key = Keystore.open(keys).signing_key.public_key()
    notes = {c["tree_size"]: c for c in document["checkpoints"]}
    assert len(notes) == len(document["checkpoints"]), "a checkpoint is listed once"
    hashes = {r.seq: r.record_hash for r in log.list_records(limit=10_000)}
    for entry in document["disclosures"]:
        proof = entry["proof"]
        assert proof is not None, entry["seq"]
        listed = notes[proof["tree_size"]]
        checkpoint = open_checkpoint(listed["note"], [public_key])  # raises if not signed
        assert checkpoint.root_hash.hex() == listed["root_hash"]
        assert checkpoint.tree_size == proof["tree_size"]
        assert proof["leaf_index"] == entry["seq"] - 1
        leaf = bytes.fromhex(proof["leaf_hash"])
        path = [bytes.fromhex(h) for h in proof["path"]]
        assert verify_inclusion(
            leaf, proof["leaf_index"], proof["tree_size"], path, checkpoint.root_hash
        )
        # The leaf is this very record, and its record hash is the log's.
        body = log.prove_inclusion(entry["seq"]).body
        assert leaf_hash(body.encode("utf-8")) == leaf
        assert entry["record_hash"] == hashes[entry["seq"]]
        # A proof for another record does not check against this leaf.
        if proof["tree_size"] > 1:
            other_index = (proof["leaf_index"] + 1) % proof["tree_size"]
            assert not verify_inclusion(
                leaf, other_index, proof["tree_size"], path, checkpoint.root_hash
            )


def covered_by(
    records: Collection[LogRecord], *, partner: str, partner_type: str, case_id: str = ""
) -> set[int]:
    """Seqs a hold of ``partner`` covers, worked out independently of the gateway's code."""
    found = set()
    for r in records:
        e = r.event
        if case_id and e.case_id != case_id:
            continue
        supplied = any(
            f.source == partner_type and f.outcome != FieldOutcome.WITHHELD for f in e.fields
        )
        if e.partner_id == partner or supplied:
            found.add(r.seq)
    return found


@dataclass
class Scenario:
    case_a1: str
    case_a2: str
    case_b: str
    # Seqs of the subject A disclosures that a police hold on case A1 does not cover.
    uncovered_in_a1: set[int]
    refusal_seq: int


async def two_subjects(harness: Harness) -> Scenario:
    """Subject A in two cases, subject B in one, with disclosures, a triage answer and a
    refusal; the disclosures are chosen so a police hold covers some entries as recipient,
    some as source, and not others."""
    police, director = harness.client("police"), harness.client("zvh")
    ggz, municipality = harness.client("ggz"), harness.client("municipality")
    housing = harness.client("housing", role="chain_partner")
    try:
        case_a1 = await register(police, ("zvh", "ggz", "municipality"))
        await accept(director, case_a1)
        await director.change_phase(case_a1, "registration", "triage")
        # The procesregisseur asks whether the subject is known; every source answers.
        await director.triage(case_a1)
        await director.change_phase(case_a1, "triage", "case_meeting")
        await police.request_disclosure(case_a1, "analysis_and_plan", "case_meeting")
        partial = await municipality.request_disclosure(
            case_a1, "analysis_and_plan", "case_meeting", fields=("mun.debts", "subject.name")
        )
        await ggz.request_disclosure(case_a1, "analysis_and_plan", "case_meeting")
        with_refusal = harness.gateway.log.list_records(case_id=case_a1, limit=1000)
        try:
            await housing.request_disclosure(case_a1, "analysis_and_plan", "case_meeting")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.PERMISSION_DENIED
        refusal = [
            r
            for r in harness.gateway.log.list_records(case_id=case_a1, limit=1000)
            if r.event.kind == "refusal" and r.seq > with_refusal[-1].seq
        ]
        case_a2 = await register(police, ("zvh",))
        await police.request_disclosure(case_a2, "assess_and_accept", "registration")
        reg_b = await police.register_case(OTHER, "code_rood", reason="worries", invitees=["zvh"])
        await police.request_disclosure(reg_b.case_id, "assess_and_accept", "registration")
        return Scenario(case_a1, case_a2, reg_b.case_id, {partial.response.log_seq}, refusal[0].seq)
    finally:
        for client in (police, director, ggz, municipality, housing):
            await client.close()
