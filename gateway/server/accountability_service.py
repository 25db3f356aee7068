"""gRPC face of the accountability log for privacy officers."""

from __future__ import annotations

import asyncio
from typing import Any

from grpc import aio

from gateway.api.v1 import accountability_pb2, accountability_pb2_grpc
from gateway.broker.errors import InvalidRequest, Refused
from gateway.broker.records import OUTCOME_OF_EFFECT
from gateway.broker.sealed_record import AVAILABILITY, OUTCOME
from gateway.core import Effect
from gateway.server import request_context
from gateway.server.metrics import Metrics
from gateway.server.status import serve_call
from gateway.store.audit_event import RecordKind, format_time
from gateway.store.audit_log import AuditLog, LogRecord

Ctx = aio.ServicerContext[Any, Any]
PRIVACY_OFFICER_ROLE = "privacy_officer"
DEFAULT_PAGE = 100
MAX_PAGE = 1000

# Log records name outcomes as words ("masked"); the contract uses the shared enums.
_OUTCOME = {OUTCOME_OF_EFFECT[effect]: OUTCOME[effect] for effect in Effect}


class AccountabilityService(accountability_pb2_grpc.AccountabilityServiceServicer):
    def __init__(self, log: AuditLog, metrics: Metrics) -> None:
        self._log = log
        self._metrics = metrics

    async def ListDisclosures(  # noqa: N802 (gRPC method name)
        self, request: accountability_pb2.ListDisclosuresRequest, context: Ctx
    ) -> accountability_pb2.ListDisclosuresResponse:
        async def work() -> accountability_pb2.ListDisclosuresResponse:
            _require_privacy_officer()
            if request.page_size > MAX_PAGE:
                raise InvalidRequest(f"page_size must be at most {MAX_PAGE}")
            try:
                kinds = [RecordKind(k) for k in request.kinds] or None
            except ValueError as exc:
                raise InvalidRequest(
                    f"kinds must be among {[k.value for k in RecordKind]}"
                ) from exc
            limit = request.page_size or DEFAULT_PAGE
            records = await asyncio.to_thread(
                self._log.list_records,
                partner_id=request.partner_id or None,
                case_id=request.case_id or None,
                kinds=kinds,
                after_seq=request.after_seq,
                limit=limit + 1,
            )
            page = records[:limit]
            more = len(records) > limit
            return accountability_pb2.ListDisclosuresResponse(
                entries=[log_entry(r) for r in page],
                next_after_seq=page[-1].seq if more and page else 0,
            )

        return await serve_call("ListDisclosures", context, self._metrics, work)

    async def VerifyLog(  # noqa: N802
        self, request: accountability_pb2.VerifyLogRequest, context: Ctx
    ) -> accountability_pb2.VerifyLogResponse:
        async def work() -> accountability_pb2.VerifyLogResponse:
            _require_privacy_officer()
            result = await asyncio.to_thread(self._log.verify)
            return accountability_pb2.VerifyLogResponse(
                ok=result.ok,
                records_checked=result.records_checked,
                first_bad_seq=result.first_bad_seq or 0,
                reason=result.reason,
            )

        return await serve_call("VerifyLog", context, self._metrics, work)


def _require_privacy_officer() -> None:
    principal = request_context.current().principal
    if principal.role != PRIVACY_OFFICER_ROLE:
        raise Refused("role_not_allowed", "the accountability service is for privacy officers")


def log_entry(record: LogRecord) -> accountability_pb2.LogEntry:
    e = record.event
    return accountability_pb2.LogEntry(
        seq=record.seq,
        kind=e.kind.value,
        occurred_at=format_time(e.occurred_at),
        trace_id=e.trace_id,
        span_id=e.span_id,
        partner_id=e.partner_id,
        role=e.role,
        user_ref=e.user_ref,
        purpose=e.purpose,
        legal_basis=e.legal_basis,
        processing_activity=e.processing_activity,
        phase=e.phase,
        case_id=e.case_id,
        subject_pseudonym=e.subject_pseudonym,
        status=e.status,
        refusal_code=e.refusal_code,
        disclosure_id=e.disclosure_id,
        policy_version=e.policy_version,
        break_glass=e.break_glass,
        fields=[
            accountability_pb2.LoggedField(
                field=f.field,
                category=f.category,
                outcome=_OUTCOME[f.outcome],
                transform=f.transform or "",
                availability=AVAILABILITY[f.availability],
                source=f.source,
            )
            for f in e.fields
        ],
        prev_hash=record.prev_hash,
        record_hash=record.record_hash,
    )
