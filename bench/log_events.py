"""Accountability events shaped like a gateway disclosure, for the log benchmarks.

Each event is what the gateway writes for one RequestDisclosure: by default twelve field
decisions of a case record (disclosed, masked with a transform, withheld; available, not
held, not asked), random trace, span and disclosure ids, a keyed subject pseudonym of 64 hex
digits and a content-hash policy version, as ``gateway.broker.records.event`` builds them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from gateway.broker.log_events import SUBJECT_ID_TYPE, AuditEvent, FieldEntry, RecordKind

FIELD_COUNT = 12
# Cases (each about one subject) the events are spread over. The log's indexes lead with
# case, subject and partner, so how many cases a batch touches decides how many index pages
# a commit writes.
DEFAULT_CASES = 1000
_T0 = datetime(2026, 3, 2, 9, 30, 0, 123456, tzinfo=UTC)
_PARTNERS = (
    ("police", "case_director", "analysis_and_plan"),
    ("ggz", "chain_partner", "analysis_and_plan"),
    ("probation", "chain_partner", "coordinate_interventions"),
    ("veilig-thuis", "chain_partner", "analysis_and_plan"),
    ("zvh", "process_director", "analysis_and_plan"),
)
# (field, category, outcome, transform, source, availability): a case record's decisions.
_FIELDS = (
    ("subject.name", "identifying", "masked", "initials", "municipality", "available"),
    ("subject.bsn", "identifying", "withheld", None, "municipality", "not_requested"),
    ("subject.date_of_birth", "identifying", "masked", "year_only", "municipality", "available"),
    ("subject.address", "contact", "withheld", None, "municipality", "not_requested"),
    ("police.incidents", "criminal_history", "disclosed", None, "police", "available"),
    ("police.open_cases", "criminal_history", "disclosed", None, "police", "available"),
    ("police.weapon_flag", "risk_assessment", "disclosed", None, "police", "not_held"),
    ("om.prosecutions", "criminal_history", "masked", "presence", "om", "available"),
    ("probation.supervision", "supervision", "disclosed", None, "probation", "available"),
    ("ggz.treatment_status", "health", "masked", "presence", "ggz", "available"),
    ("ggz.diagnosis", "health", "withheld", None, "ggz", "not_requested"),
    ("veilig_thuis.reports", "domestic_violence", "disclosed", None, "veilig_thuis", "available"),
)
assert len(_FIELDS) == FIELD_COUNT


def fields_of(count: int) -> tuple[FieldEntry, ...]:
    """``count`` field decisions: the twelve above, then again under numbered names (the
    shipped policy's whole record is 50 fields, about 8 KB of body)."""
    entries = []
    for i in range(count):
        field, *rest = _FIELDS[i % FIELD_COUNT]
        name = field if i < FIELD_COUNT else f"{field}_{i // FIELD_COUNT}"
        entries.append(FieldEntry(name, *rest))
    return tuple(entries)


def _hex(n: int) -> str:
    return os.urandom(n).hex()


def disclosure_event(
    n: int, cases: int = DEFAULT_CASES, fields: tuple[FieldEntry, ...] = ()
) -> AuditEvent:
    """The ``n``-th disclosure: ids are random; partner and case cycle, one subject a case."""
    partner, role, purpose = _PARTNERS[n % len(_PARTNERS)]
    case = n % cases
    started = _T0 + timedelta(milliseconds=n)
    return AuditEvent(
        kind=RecordKind.DISCLOSURE,
        occurred_at=started,
        ended_at=started + timedelta(microseconds=2300),
        name="ExchangeService/RequestDisclosure",
        parent_span_id=_hex(8),
        subject_id_type=SUBJECT_ID_TYPE,
        trace_id=_hex(16),
        span_id=_hex(8),
        partner_id=partner,
        role=role,
        user_ref=f"{partner}-user-{n % 40}",
        purpose=purpose,
        legal_basis="wgs_art_2_3",
        processing_activity="zvh_case_meeting",
        phase="case_meeting",
        case_id=f"c_{case:032x}",
        subject_pseudonym=f"{case * 7919:064x}",
        status="ok",
        refusal_code="",
        disclosure_id="d_" + _hex(16),
        policy_version="sha256:" + "5f" * 32,
        break_glass=False,
        justification_ref="",
        fields=fields or fields_of(FIELD_COUNT),
    )


def event_pool(
    size: int, cases: int = DEFAULT_CASES, field_count: int = FIELD_COUNT
) -> list[AuditEvent]:
    """Distinct events about ``cases`` cases, built before the clock starts: the gateway
    builds its event in the request, so the log benchmark leaves that cost out."""
    fields = fields_of(field_count)
    return [disclosure_event(n, cases, fields) for n in range(size)]
