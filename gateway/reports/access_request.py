"""Answering an access request (AVG art. 15): read the subject's records and the holds in
force, prove each record against a signed checkpoint, build and render the report, and
record that a report was made.

The subject is named in one of two ways (``gateway.broker.subjects``): by BSN, which only at
the door becomes the keyed pseudonym the log is indexed by and goes nowhere else, and reaches
the person in every case; or, for a person without a BSN, by case id and person id. Either
way the report covers every pseudonym the person stands under, merged by seq, and nobody
else's records: the report of one member of a family lists none of another member's.

The report is recorded (kind ``subject_access``) before it is handed out, once per pseudonym
it covers: a log record carries exactly one person's pseudonym, and a search of the log by
any of the person's pseudonyms must find that a report was made. The records hold the counts
of the whole report and ``pseudonyms`` (how many records the report made); the report names
the seq of the first. Used by the gRPC accountability service (``produce``) and by
``ketenpoort audit report`` (``produce_sync``).
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
from gateway.broker.log_events import AuditEvent, LogRecord, RecordKind, detail_of
from gateway.broker.records import event
from gateway.broker.subjects import Subject, Subjects, check_person_ids
from gateway.core import CompiledPolicy
from gateway.crypto.keyids import key_pin
from gateway.reports import subject_access_html, subject_access_json
from gateway.reports.subject_access import (
    REPORTED_KINDS,
    CaseRole,
    LogKey,
    SubjectAccessReport,
    build_report,
    is_reported,
)
from gateway.reports.subject_access_text import LANGUAGES
from gateway.store.audit_log import MAX_LIST_LIMIT, AuditLog
from gateway.store.audit_proofs import InclusionProofData, ProofUnavailable
from gateway.store.checkpoints import CheckpointError, open_checkpoint
from gateway.store.holds import HoldStore
from gateway.store.persons import PersonDirectory

FORMATS = ("json", "html")
DEFAULT_FORMAT = "json"
DEFAULT_LANGUAGE = "nl"


@dataclass(frozen=True)
class ReportRequest:
    """Whose report: ``bsn``, or ``case_id`` and ``person_id`` together (never both ways)."""

    bsn: str = ""
    format: str = DEFAULT_FORMAT
    language: str = DEFAULT_LANGUAGE
    case_id: str = ""
    person_id: str = ""

    @property
    def by_person(self) -> bool:
        return bool(self.case_id or self.person_id)


@dataclass(frozen=True)
class ProducedReport:
    document: bytes
    media_type: str
    disclosures_listed: int
    withheld_under_exception: bool
    record_seq: int


def person_records(log: AuditLog, pseudonyms: Sequence[str]) -> list[LogRecord]:
    """Every disclosure and triage record under any of ``pseudonyms``, merged by seq."""
    merged = {r.seq: r for p in dict.fromkeys(pseudonyms) for r in subject_records(log, p)}
    return [merged[seq] for seq in sorted(merged)]


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
    which partner types a hold's partner belongs to); ``persons`` reads the case persons
    that link a BSN and a person's pseudonyms."""

    def __init__(
        self,
        log: AuditLog,
        holds: HoldStore,
        policy: Callable[[], CompiledPolicy],
        pseudonym_key: bytes,
        clock: Callable[[], datetime],
        persons: PersonDirectory,
    ) -> None:
        self._log = log
        self._holds = holds
        self._policy = policy
        self._subjects = Subjects(persons, pseudonym_key)
        self._clock = clock

    def check(self, request: ReportRequest) -> None:
        """Refuse a malformed request before anything is read: exactly one way of naming
        the subject, a known format and language."""
        if request.format not in FORMATS:
            raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}")
        if request.language not in LANGUAGES:
            raise InvalidRequest(f"language must be one of {', '.join(LANGUAGES)}")
        if request.bsn and request.by_person:
            raise InvalidRequest("name the subject by bsn or by case_id and person_id, not both")
        if request.by_person:
            check_person_ids(request.case_id, request.person_id)
        elif not request.bsn:
            raise InvalidRequest("name the subject by bsn, or by case_id and person_id")
        else:
            self._subjects.bsn_pseudonym(request.bsn)

    def subject(self, request: ReportRequest) -> Subject:
        """The subject of a checked request (blocking: reads the case persons); NOT_FOUND
        for a person the case does not have."""
        if request.by_person:
            return self._subjects.by_person(request.case_id, request.person_id)
        return self._subjects.by_bsn_pseudonym(self._subjects.bsn_pseudonym(request.bsn))

    def prepare(self, subject: Subject) -> SubjectAccessReport:
        """The report as of now (blocking: reads the log and the holds, signs a checkpoint)."""
        now = self._clock()
        policy = self._policy()
        records = [r for r in person_records(self._log, subject.pseudonyms) if is_reported(r)]
        holds = self._holds.active_for_any(subject.pseudonyms, now)
        reach = self._subjects.reach({h.subject_pseudonym for h in holds})
        proofs = proofs_of(self._log, [r.seq for r in records])
        trusted = self._log.trusted_keys
        return build_report(
            subject_pseudonym=subject.pseudonym,
            subject_id_type=subject.id_type,
            records=records,
            holds=holds,
            policy=policy,
            prove=proofs.get,
            now=now,
            log_key=log_key_of(trusted[0] if trusted else None),
            pseudonyms=subject.pseudonyms,
            cases=[CaseRole(p.case_id, p.role_in_case) for p in subject.persons],
            hold_reach=reach,
        )

    def report_events(
        self,
        report: SubjectAccessReport,
        subject: Subject,
        request: ReportRequest,
        who: Principal,
        trace: TraceContext,
    ) -> list[AuditEvent]:
        """The records of a report, one per pseudonym it covers: who made it, about whom
        (the pseudonym), how the subject was named, and the report's counts."""
        at = self._clock()
        return [
            event(
                RecordKind.SUBJECT_ACCESS,
                principal=who,
                trace=trace,
                at=at,
                started_at=report.generated_at,
                case_id=subject.case_id,
                subject_pseudonym=pseudonym,
                phase="",
                policy_version=report.policy_version,
                detail=detail_of(
                    listed=len(report.entries),
                    withheld=report.entries_withheld,
                    proofs=sum(e.proof is not None for e in report.entries),
                    format=request.format,
                    language=request.language,
                    named_by=subject.named_by,
                    pseudonyms=len(subject.pseudonyms),
                ),
            )
            for pseudonym in subject.pseudonyms
        ]

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
        self.check(request)
        subject = await asyncio.to_thread(self.subject, request)
        report = await asyncio.to_thread(self.prepare, subject)
        events = self.report_events(report, subject, request, who, trace)
        # Queued together, in order: the first record's seq is the lowest.
        records = await asyncio.gather(*(self._log.append(e) for e in events))
        return self.finish(report, request, min(r.seq for r in records))

    def produce_sync(
        self, who: Principal, trace: TraceContext, request: ReportRequest
    ) -> ProducedReport:
        self.check(request)
        subject = self.subject(request)
        report = self.prepare(subject)
        records = self._log.append_sync(self.report_events(report, subject, request, who, trace))
        return self.finish(report, request, min(r.seq for r in records))
