"""The accountability record of a call refused at authentication.

Written, durably, before the refusal is answered, like every other refusal. It names who
the certificate and token said the caller was (partner id from the registered certificate,
the claimed issuer only when it has the form of a partner id), the certificate thumbprint,
the token's key id and the reason; never the token or anything else the caller sent.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime

from gateway.broker.caller import TraceContext
from gateway.broker.log_events import AuditEvent, RecordKind, detail_of
from gateway.server.auth import AuthRefused
from gateway.server.refused_calls import refused_call_event

__all__ = ["refusal_event", "refusal_recorder"]

_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}\Z")


def refusal_event(
    refused: AuthRefused, trace: TraceContext, at: datetime, policy_version: str
) -> AuditEvent:
    items: dict[str, str] = {}
    if _THUMBPRINT.match(refused.certificate):
        items["certificate"] = refused.certificate
    if _IDENTIFIER.match(refused.key_id):
        items["key_id"] = refused.key_id
    if refused.issuer and refused.issuer != refused.partner_id and _IDENTIFIER.match(
        refused.issuer
    ):
        items["claimed_issuer"] = refused.issuer
    return refused_call_event(
        RecordKind.AUTH_REFUSAL,
        occurred_at=at,
        trace_id=trace.trace_id,
        span_id=trace.span_id,
        parent_span_id=trace.parent_span_id,
        name=trace.operation,
        partner_id=refused.partner_id,
        role=refused.role,
        refusal_code=refused.reason.value,
        policy_version=policy_version,
        detail=detail_of(**items),
    )


def refusal_recorder(
    append: Callable[[AuditEvent], Awaitable[object]],
    policy_version: Callable[[], str],
    clock: Callable[[], datetime],
) -> Callable[[AuthRefused, TraceContext], Awaitable[None]]:
    async def record(refused: AuthRefused, trace: TraceContext) -> None:
        await append(refusal_event(refused, trace, clock(), policy_version()))

    return record
