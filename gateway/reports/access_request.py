"""Answering an access request (AVG art. 15): read the subject's records and the holds in
force, prove each record against a signed checkpoint, build and render the report, and
record that a report was made.

The subject is named by BSN only at the door: the BSN becomes the keyed pseudonym the log
is indexed by and goes nowhere else. The record of the report (kind ``subject_access``)
holds the pseudonym and counts, and is written before the report is handed out. Used by the
gRPC accountability service (``produce``) and by ``ketenpoort audit report``
(``produce_sync``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.errors import InvalidRequest
from gateway.broker.records import event
from gateway.core import CompiledPolicy
from gateway.crypto.keyids import key_pin
from gateway.crypto.pseudonym import subject_pseudonym
from gateway.reports import subject_access_html, subject_access_json
from gateway.reports.subject_access import (
    REPORTED_KINDS,
    LogKey,
    SubjectAccessReport,
    build_report,
    is_reported,
)
from gateway.reports.subject_access_text import LANGUAGES
from gateway.store.audit_event import SUBJECT_ID_TYPE, AuditEvent, detail_of
from gateway.store.audit_log import MAX_LIST_LIMIT, AuditLog, LogRecord, RecordKind
from gateway.store.audit_proofs import InclusionProofData, ProofUnavailable
from gateway.store.checkpoints import CheckpointError, open_checkpoint
from gateway.store.holds import HoldStore

FORMATS = ("json", "html")
DEFAULT_FORMAT = "json"
DEFAULT_LANGUAGE = "nl"


@dataclass(frozen=True)
class ReportRequest:
    bsn: str
    format: str = DEFAULT_FORMAT
    language: str = DEFAULT_LANGUAGE


@dataclass(frozen=True)
class ProducedReport:
    document: bytes
    media_type: str
    disclosures_listed: int
    withheld_under_exception: bool
    record_seq: int


def subject_records(log: AuditLog, pseudonym: str) -> list[LogRecord]:
    """Every disclosure and triage record about the subject, by seq."""
    records: list[LogRecord] = []
    after = 0
    while True:
        page = log.list_records(
            subject_pseudonym=pseudonym,
            kinds=REPORTED_KINDS,
            after_seq=after,
            limit=MAX_LIST_LIMIT,
        )
        records.extend(page)
        if len(page) < MAX_LIST_LIMIT:
            return records
        after = page[-1].seq


def proofs_of(log: AuditLog, seqs: Sequence[int]) -> dict[int, InclusionProofData]:
    """Inclusion proofs of ``seqs`` against one signed checkpoint (signed now when none
    covers them yet); none when the log cannot make one. A checkpoint whose signature
    verifies with a key the log trusts names that key; else its key id stays empty."""
    if not seqs:
        return {}
    try:
        proofs = log.inclusion_prover()(seqs)
    except ProofUnavailable:
        return {}
    if not proofs:
        return {}
    checkpoint = proofs[0].checkpoint
    try:
        checkpoint = open_checkpoint(checkpoint.note, log.trusted_keys)
    except CheckpointError:
        # The stored key id is only what the database claims: never shown as the signer.
        checkpoint = replace(checkpoint, key_id="")
    return {p.seq: replace(p, checkpoint=checkpoint) for p in proofs}


def log_key_of(public_key: Ed25519PublicKey | None) -> LogKey | None:
    if public_key is None:
        return None
    pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return LogKey(key_pin(public_key), pem)


def render(report: SubjectAccessReport, fmt: str, language: str) -> tuple[bytes, str]:
    if fmt == "html":
        html = subject_access_html.render_html(report, language)
        return html.encode("utf-8"), subject_access_html.MEDIA_TYPE
    text = subject_access_json.report_json(report, language)
    return text.encode("utf-8"), subject_access_json.MEDIA_TYPE


class SubjectAccessReports:
    """Makes access reports. ``policy`` gives the policy in force (for display names and
    which partner types a hold's partner belongs to)."""

    def __init__(
        self,
        log: AuditLog,
        holds: HoldStore,
        policy: Callable[[], CompiledPolicy],
        pseudonym_key: bytes,
        clock: Callable[[], datetime],
    ) -> None:
        self._log = log
        self._holds = holds
        self._policy = policy
        self._pseudonym_key = pseudonym_key
        self._clock = clock

    def check(self, request: ReportRequest) -> str:
        """The subject's pseudonym, once the request is known to be well formed."""
        if request.format not in FORMATS:
            raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}")
        if request.language not in LANGUAGES:
            raise InvalidRequest(f"language must be one of {', '.join(LANGUAGES)}")
        try:
            return subject_pseudonym(self._pseudonym_key, request.bsn)
        except ValueError:
            # The message never repeats the number.
            raise InvalidRequest(
                "bsn is not a valid BSN (nine digits passing the 11-test)"
            ) from None

    def prepare(self, pseudonym: str) -> SubjectAccessReport:
        """The report as of now (blocking: reads the log and the holds, signs a checkpoint)."""
        now = self._clock()
        policy = self._policy()
        records = [r for r in subject_records(self._log, pseudonym) if is_reported(r)]
        holds = self._holds.active_for(pseudonym, now)
        proofs = proofs_of(self._log, [r.seq for r in records])
        trusted = self._log.trusted_keys
        return build_report(
            subject_pseudonym=pseudonym,
            subject_id_type=SUBJECT_ID_TYPE,
            records=records,
            holds=holds,
            policy=policy,
            prove=proofs.get,
            now=now,
            log_key=log_key_of(trusted[0] if trusted else None),
        )

    def report_event(
        self,
        report: SubjectAccessReport,
        request: ReportRequest,
        who: Principal,
        trace: TraceContext,
    ) -> AuditEvent:
        """The record of a report: who made it, about whom (pseudonym), and counts."""
        return event(
            RecordKind.SUBJECT_ACCESS,
            principal=who,
            trace=trace,
            at=self._clock(),
            started_at=report.generated_at,
            case_id="",
            subject_pseudonym=report.subject_pseudonym,
            phase="",
            policy_version=report.policy_version,
            detail=detail_of(
                listed=len(report.entries),
                withheld=report.entries_withheld,
                proofs=sum(e.proof is not None for e in report.entries),
                format=request.format,
                language=request.language,
            ),
        )

    def finish(
        self, report: SubjectAccessReport, request: ReportRequest, record_seq: int
    ) -> ProducedReport:
        done = replace(report, record_seq=record_seq)
        document, media_type = render(done, request.format, request.language)
        return ProducedReport(
            document=document,
            media_type=media_type,
            disclosures_listed=len(done.entries),
            withheld_under_exception=done.withheld_under_exception,
            record_seq=record_seq,
        )

    async def produce(
        self, who: Principal, trace: TraceContext, request: ReportRequest
    ) -> ProducedReport:
        pseudonym = self.check(request)
        report = await asyncio.to_thread(self.prepare, pseudonym)
        record = await self._log.append(self.report_event(report, request, who, trace))
        return self.finish(report, request, record.seq)

    def produce_sync(
        self, who: Principal, trace: TraceContext, request: ReportRequest
    ) -> ProducedReport:
        pseudonym = self.check(request)
        report = self.prepare(pseudonym)
        (record,) = self._log.append_sync([self.report_event(report, request, who, trace)])
        return self.finish(report, request, record.seq)
