"""Building accountability events from decisions. An event names fields, categories,
outcomes and transforms; it never carries a value."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.log_events import SUBJECT_ID_TYPE, AuditEvent, FieldEntry, RecordKind
from gateway.core import Decision, Effect, FieldDecision, Purpose

OUTCOME_OF_EFFECT = {
    Effect.DISCLOSE: "disclosed",
    Effect.MASK: "masked",
    Effect.WITHHOLD: "withheld",
}


def field_entries(
    decisions: Iterable[FieldDecision], availability: Mapping[str, str]
) -> tuple[FieldEntry, ...]:
    return tuple(
        FieldEntry(
            field=d.field,
            category=d.category,
            outcome=OUTCOME_OF_EFFECT[d.effect],
            transform=d.transform,
            source=d.source,
            availability=availability.get(d.field, "not_requested"),
        )
        for d in decisions
    )


def event(
    kind: RecordKind,
    *,
    principal: Principal,
    trace: TraceContext,
    at: datetime,
    case_id: str,
    subject_pseudonym: str,
    phase: str,
    policy_version: str,
    status: str = "ok",
    purpose: Purpose | None = None,
    purpose_id: str = "",
    legal_basis: str = "",
    refusal_code: str = "",
    disclosure_id: str = "",
    justification_ref: str = "",
    fields: tuple[FieldEntry, ...] = (),
    started_at: datetime | None = None,
    detail: tuple[tuple[str, str], ...] = (),
    subject_id_type: str = "",
) -> AuditEvent:
    """An event at ``at``; with ``started_at`` it spans from then until ``at``.

    ``subject_id_type`` says what ``subject_pseudonym`` is keyed on; empty: a BSN."""
    return AuditEvent(
        kind=kind,
        occurred_at=started_at or at,
        ended_at=at,
        name=trace.operation,
        parent_span_id=trace.parent_span_id,
        subject_id_type=(subject_id_type or SUBJECT_ID_TYPE) if subject_pseudonym else "",
        detail=detail,
        trace_id=trace.trace_id,
        span_id=trace.span_id,
        partner_id=principal.partner_id,
        role=principal.role,
        user_ref=principal.user_ref,
        purpose=purpose.id if purpose else purpose_id,
        legal_basis=legal_basis,
        processing_activity=purpose.processing_activity if purpose else "",
        phase=phase,
        case_id=case_id,
        subject_pseudonym=subject_pseudonym,
        status=status,
        refusal_code=refusal_code,
        disclosure_id=disclosure_id,
        policy_version=policy_version,
        break_glass=bool(purpose and purpose.break_glass),
        justification_ref=justification_ref,
        fields=fields,
    )


def decision_event(
    kind: RecordKind,
    decision: Decision,
    *,
    principal: Principal,
    trace: TraceContext,
    at: datetime,
    case_id: str,
    subject_pseudonym: str,
    status: str,
    availability: Mapping[str, str],
    disclosure_id: str = "",
    justification_ref: str = "",
    refusal_code: str | None = None,
    started_at: datetime | None = None,
) -> AuditEvent:
    """The record of a decision; `refusal_code` names a refusal the edge made on top of the
    policy's own (a phase mismatch), otherwise the policy's refusal, if any, is recorded."""
    if refusal_code is None:
        refusal_code = decision.refusal.code.value if decision.refusal else ""
    return event(
        kind,
        principal=principal,
        trace=trace,
        at=at,
        case_id=case_id,
        subject_pseudonym=subject_pseudonym,
        phase=decision.request.phase,
        policy_version=decision.policy_version,
        status=status,
        purpose=decision.purpose,
        legal_basis=decision.legal_basis,
        refusal_code=refusal_code,
        disclosure_id=disclosure_id,
        justification_ref=justification_ref,
        fields=field_entries(decision.fields, availability),
        started_at=started_at,
    )
