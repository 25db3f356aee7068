"""The accountability record of calls refused at the edge, before a request was read.

Authentication refusals (``gateway.server.auth_refusals``) and calls turned away by the call
limits (``gateway.server.limit_report``) are refused before any case, purpose or field is
known: their records name the caller, the operation, the refusal and kind-specific detail,
and leave every part of a disclosure empty.
"""

from __future__ import annotations

from datetime import datetime

from gateway.broker.log_events import AuditEvent, EventStatus, RecordKind

__all__ = ["refused_call_event"]


def refused_call_event(
    kind: RecordKind,
    *,
    occurred_at: datetime,
    trace_id: str,
    span_id: str,
    name: str,
    partner_id: str,
    role: str,
    refusal_code: str,
    policy_version: str,
    detail: tuple[tuple[str, str], ...],
    ended_at: datetime | None = None,
    parent_span_id: str = "",
) -> AuditEvent:
    return AuditEvent(
        kind=kind,
        occurred_at=occurred_at,
        ended_at=ended_at,
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent_span_id,
        name=name,
        partner_id=partner_id,
        role=role,
        user_ref="",
        purpose="",
        legal_basis="",
        processing_activity="",
        phase="",
        case_id="",
        subject_pseudonym="",
        status=EventStatus.REFUSED.value,
        refusal_code=refusal_code,
        disclosure_id="",
        policy_version=policy_version,
        break_glass=False,
        justification_ref="",
        fields=(),
        detail=detail,
    )
