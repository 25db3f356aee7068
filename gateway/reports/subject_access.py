"""The data subject access report (AVG art. 15): every disclosure about one subject.

Built from the accountability log, never from case data: an entry names the recipient, its
role, the purpose, the legal grounds, the register entry, the case and the fields that left
(disclosed or masked, with the mask), never a value. Withheld fields are not listed: nothing
of them left the gateway. Refusals are not disclosures and are left out.

Disclosures under a confidentiality hold in force are left out too; the report then says
that information is withheld under a legal exception, without saying how much or for whom.
A hold covers a disclosure about its subject (and its case, when it names one) that the
holding partner received, or that holds a disclosed or masked field its partner type
supplied.

One person may stand in the log under several pseudonyms (one per case where the BSN was not
known when the person was added; see ``gateway.store.persons``): the report covers all of
them, merged by seq, and only them, so a family member's report never lists another member's
records even where they share a disclosure. A hold is stored on one pseudonym and reaches the
pseudonyms linked to it (``hold_reach``), worked out when the report is made.

Every entry carries an RFC 9162 inclusion proof from ``prove`` (None where no checkpoint
covers the record yet); the checkpoints the proofs lead to are listed once each.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.broker.log_events import AuditEvent, EventStatus, FieldOutcome, LogRecord, RecordKind
from gateway.core import CompiledPolicy, UnknownField, UnknownPartner
from gateway.store.audit_proofs import InclusionProofData
from gateway.store.holds import Hold
from gateway.store.merkle import leaf_hash

# Kinds and statuses of the records the report lists.
REPORTED_KINDS = (RecordKind.DISCLOSURE, RecordKind.TRIAGE)
REPORTED_STATUSES = frozenset({EventStatus.OK.value, EventStatus.INCOMPLETE.value})
# The log joins a purpose's ground ids with this.
GROUND_SEPARATOR = ", "

Prover = Callable[[int], InclusionProofData | None]


class _Described(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def description(self) -> str: ...


@dataclass(frozen=True)
class Named:
    """An id of the policy with its description in the policy in force ("" if unknown)."""

    id: str
    description: str


@dataclass(frozen=True)
class Recipient:
    partner_id: str
    display_name: str
    partner_type: str


@dataclass(frozen=True)
class LegalGround:
    id: str
    title: str
    description: str


@dataclass(frozen=True)
class ReportedField:
    field: str
    description: str
    category: Named
    outcome: str
    transform: str | None
    source: Named
    availability: str


@dataclass(frozen=True)
class ProofView:
    leaf_index: int
    tree_size: int
    leaf_hash: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class CheckpointView:
    tree_size: int
    root_hash: str
    origin: str
    key_id: str
    created_at: datetime
    note: str


@dataclass(frozen=True)
class CaseRole:
    """The subject's role in one case (a role id of the policy; "" where not known)."""

    case_id: str
    role: str


@dataclass(frozen=True)
class ReportEntry:
    seq: int
    kind: str
    started_at: datetime
    ended_at: datetime
    recipient: Recipient
    role: Named
    purpose: Named
    legal_grounds: tuple[LegalGround, ...]
    processing_activity: str
    case_id: str
    # The subject's role in that case, "" where not known (a case from before persons).
    role_in_case: str
    break_glass: bool
    status: str
    fields: tuple[ReportedField, ...]
    policy_version: str
    record_hash: str
    proof: ProofView | None


@dataclass(frozen=True)
class LogKey:
    """The public key that signs the log's checkpoints: its pin and PEM."""

    key_id: str
    pem: str


@dataclass(frozen=True)
class SubjectAccessReport:
    # The pseudonym the request named (a BSN's, or the named person's).
    subject_pseudonym: str
    subject_id_type: str
    generated_at: datetime
    policy_version: str
    entries: tuple[ReportEntry, ...]
    checkpoints: tuple[CheckpointView, ...]
    withheld_under_exception: bool
    # How many entries a hold kept out: for the log record of the report only, never shown
    # to the subject (the report says that, not how much, is withheld).
    entries_withheld: int = 0
    log_key: LogKey | None = None
    # Seq of the log record of this report, once written (the first, where the report is
    # recorded once per pseudonym).
    record_seq: int | None = None
    # Every pseudonym the report covers, ``subject_pseudonym`` first.
    subject_pseudonyms: tuple[str, ...] = ()
    # The subject's role in each case where the case file knows it, by case id.
    cases: tuple[CaseRole, ...] = ()


def is_reported(record: LogRecord) -> bool:
    """A disclosure or triage answer that went out (refusals and errors did not)."""
    e = record.event
    return e.kind in REPORTED_KINDS and e.status in REPORTED_STATUSES


def covers(
    hold: Hold,
    holder_type: str | None,
    event: AuditEvent,
    reach: Collection[str] | None = None,
) -> bool:
    """Whether ``hold`` (placed by a partner of ``holder_type``) covers the record ``event``.

    ``reach`` is the pseudonyms the hold reaches (default: its own only)."""
    if event.subject_pseudonym not in (reach if reach is not None else {hold.subject_pseudonym}):
        return False
    if hold.case_id and event.case_id != hold.case_id:
        return False
    if event.partner_id == hold.placed_by:
        return True
    return holder_type is not None and any(
        f.source == holder_type and f.outcome != FieldOutcome.WITHHELD for f in event.fields
    )


def build_report(
    *,
    subject_pseudonym: str,
    subject_id_type: str,
    records: Iterable[LogRecord],
    holds: Sequence[Hold],
    policy: CompiledPolicy,
    prove: Prover,
    now: datetime,
    log_key: LogKey | None = None,
    pseudonyms: Sequence[str] = (),
    cases: Sequence[CaseRole] = (),
    hold_reach: Mapping[str, Collection[str]] | None = None,
) -> SubjectAccessReport:
    """The report on ``records`` (the subject's log records, any kind) under ``holds``.

    The subject stands in the log under ``pseudonyms`` (default: ``subject_pseudonym``
    only); records under any other pseudonym are left out. ``hold_reach`` maps a hold's
    pseudonym to the pseudonyms it reaches (default: itself only). ``holds`` are those in
    force at ``now``; a hold reaching none of the subject's pseudonyms, or no longer in
    force, is ignored all the same. ``cases`` gives the subject's role per case.
    """
    own = tuple(dict.fromkeys((subject_pseudonym, *pseudonyms)))
    reach = hold_reach or {}
    live = [
        (h, _partner_type(policy, h.placed_by), frozenset(_reach(reach, h)))
        for h in holds
        if h.active_at(now) and not frozenset(_reach(reach, h)).isdisjoint(own)
    ]
    roles: dict[str, str] = {}
    for case in cases:
        roles.setdefault(case.case_id, case.role)
    entries: list[ReportEntry] = []
    checkpoints: dict[int, CheckpointView] = {}
    withheld = 0
    seen: set[int] = set()
    for record in sorted(records, key=lambda r: r.seq):
        if record.seq in seen:
            continue
        seen.add(record.seq)
        if record.event.subject_pseudonym not in own or not is_reported(record):
            continue
        if any(covers(h, t, record.event, r) for h, t, r in live):
            withheld += 1
            continue
        proof = prove(record.seq)
        if proof is not None:
            checkpoints.setdefault(proof.tree_size, _checkpoint_view(proof))
        entries.append(_entry(policy, record, proof, roles.get(record.event.case_id, "")))
    return SubjectAccessReport(
        subject_pseudonym=subject_pseudonym,
        subject_id_type=subject_id_type,
        generated_at=now,
        policy_version=policy.version,
        entries=tuple(entries),
        checkpoints=tuple(checkpoints[size] for size in sorted(checkpoints)),
        withheld_under_exception=withheld > 0,
        entries_withheld=withheld,
        log_key=log_key,
        subject_pseudonyms=own,
        cases=tuple(cases),
    )


def _reach(reach: Mapping[str, Collection[str]], hold: Hold) -> Collection[str]:
    return reach.get(hold.subject_pseudonym, (hold.subject_pseudonym,))


def _partner_type(policy: CompiledPolicy, partner_id: str) -> str | None:
    try:
        return policy.partner(partner_id).type
    except UnknownPartner:
        # A partner gone from the policy still holds back what it received.
        return None


def _entry(
    policy: CompiledPolicy, record: LogRecord, proof: InclusionProofData | None, role: str
) -> ReportEntry:
    e = record.event
    assert e.ended_at is not None  # set by AuditEvent
    return ReportEntry(
        seq=record.seq,
        kind=e.kind.value,
        started_at=e.occurred_at,
        ended_at=e.ended_at,
        recipient=_recipient(policy, e.partner_id),
        role=Named(e.role, _described(policy.policy.roles, e.role)),
        purpose=Named(e.purpose, _purpose_description(policy, e.purpose)),
        legal_grounds=_grounds(policy, e.legal_basis),
        processing_activity=e.processing_activity,
        case_id=e.case_id,
        role_in_case=role,
        break_glass=e.break_glass,
        status=e.status,
        fields=tuple(
            _field(policy, f.field, f.category, f.outcome, f.transform, f.source, f.availability)
            for f in e.fields
            if f.outcome != FieldOutcome.WITHHELD
        ),
        policy_version=e.policy_version,
        record_hash=record.record_hash,
        proof=None if proof is None else _proof_view(proof),
    )


def _recipient(policy: CompiledPolicy, partner_id: str) -> Recipient:
    try:
        partner = policy.partner(partner_id)
    except UnknownPartner:
        return Recipient(partner_id, partner_id, "")
    return Recipient(partner_id, partner.display_name, partner.type)


def _described(specs: Iterable[_Described], ident: str) -> str:
    return next((spec.description for spec in specs if spec.id == ident), "")


def _purpose_description(policy: CompiledPolicy, purpose_id: str) -> str:
    purpose = policy.purposes.get(purpose_id)
    return purpose.description if purpose is not None else ""


def _grounds(policy: CompiledPolicy, logged: str) -> tuple[LegalGround, ...]:
    known = {g.id: g for g in policy.policy.legal_bases}
    grounds: list[LegalGround] = []
    for ident in (part.strip() for part in logged.split(GROUND_SEPARATOR.strip())):
        if not ident:
            continue
        spec = known.get(ident)
        grounds.append(
            LegalGround(ident, spec.title, spec.description)
            if spec is not None
            else LegalGround(ident, "", "")
        )
    return tuple(grounds)


def _field(
    policy: CompiledPolicy,
    field: str,
    category: str,
    outcome: str,
    transform: str | None,
    source: str,
    availability: str,
) -> ReportedField:
    try:
        description = policy.field(field).description
    except UnknownField:
        description = ""
    return ReportedField(
        field=field,
        description=description,
        category=Named(category, _described(policy.policy.categories, category)),
        outcome=outcome,
        transform=transform,
        source=Named(source, _source_description(policy, source)),
        availability=availability,
    )


def _source_description(policy: CompiledPolicy, source: str) -> str:
    # Sources are partner types, or the ZVH's own case file ("zvh", a partner type too).
    return _described(policy.policy.partner_types, source)


def _proof_view(proof: InclusionProofData) -> ProofView:
    return ProofView(
        leaf_index=proof.leaf_index,
        tree_size=proof.tree_size,
        leaf_hash=leaf_hash(proof.body.encode("utf-8")).hex(),
        path=tuple(node.hex() for node in proof.path),
    )


def _checkpoint_view(proof: InclusionProofData) -> CheckpointView:
    c = proof.checkpoint
    return CheckpointView(
        tree_size=c.tree_size,
        root_hash=c.root_hash.hex(),
        origin=c.origin,
        key_id=c.key_id,
        created_at=c.created_at,
        note=c.note,
    )
