"""gRPC face of the accountability log for privacy officers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from grpc import aio

from gateway.api.v1 import accountability_pb2, accountability_pb2_grpc
from gateway.broker.break_glass_review import BreakGlassReviewQueue
from gateway.broker.errors import InvalidRequest, Refused
from gateway.broker.log_events import LogRecord, RecordKind
from gateway.broker.log_positions import log_position
from gateway.reports.access_request import ReportRequest, SubjectAccessReports
from gateway.server import request_context
from gateway.server.config import DEFAULT_MAX_MESSAGE_BYTES
from gateway.server.logged_fields import field_values
from gateway.server.metrics import Metrics
from gateway.server.page_budget import page_budget, take_within
from gateway.server.proof_messages import (
    checkpoint_message,
    consistency_message,
    inclusion_message,
)
from gateway.server.status import serve_call
from gateway.store.audit_event import encode_event
from gateway.store.audit_log import AuditLog, ProofUnavailable, VerifyResult
from gateway.store.reviews import Review
from gateway.tlog.notes import format_time

Ctx = aio.ServicerContext[Any, Any]
PRIVACY_OFFICER_ROLE = "privacy_officer"
DEFAULT_PAGE = 100
MAX_PAGE = 1000


class AccountabilityService(accountability_pb2_grpc.AccountabilityServiceServicer):
    def __init__(
        self,
        log: AuditLog,
        metrics: Metrics,
        *,
        reviews: BreakGlassReviewQueue | None = None,
        subject_access: SubjectAccessReports | None = None,
        outside_checkpoints: Callable[[], list[str]] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        """``outside_checkpoints`` reads the checkpoints kept outside the database (this
        replica's checkpoint directory), which VerifyLog checks the log against too. A page of
        ListDisclosures stays within ``max_message_bytes`` (page_budget)."""
        self._page_bytes = page_budget(max_message_bytes)
        self._log = log
        self._outside = outside_checkpoints
        self._metrics = metrics
        self._reviews = reviews
        self._subject_access = subject_access

    async def ListDisclosures(  # noqa: N802 (gRPC method name)
        self, request: accountability_pb2.ListDisclosuresRequest, context: Ctx
    ) -> accountability_pb2.ListDisclosuresResponse:
        async def work() -> accountability_pb2.ListDisclosuresResponse:
            _require_privacy_officer()
            if request.page_size > MAX_PAGE:
                raise InvalidRequest(f"page_size must be at most {MAX_PAGE}")
            if "\x00" in request.partner_id or "\x00" in request.case_id:
                # No stored identifier holds one, and PostgreSQL refuses it in a query.
                raise InvalidRequest("partner_id and case_id must not contain NUL characters")
            try:
                kinds = [RecordKind(k) for k in request.kinds] or None
            except ValueError as exc:
                raise InvalidRequest(
                    f"kinds must be among {[k.value for k in RecordKind]}"
                ) from exc
            limit = request.page_size or DEFAULT_PAGE
            records: list[LogRecord] = await asyncio.to_thread(
                self._log.list_records,
                partner_id=request.partner_id or None,
                case_id=request.case_id or None,
                kinds=kinds,
                after_seq=log_position("after_seq", request.after_seq),
                limit=limit + 1,
            )
            entries, cut = take_within((log_entry(r) for r in records[:limit]), self._page_bytes)
            more = cut or len(records) > limit
            return accountability_pb2.ListDisclosuresResponse(
                entries=entries,
                next_after_seq=entries[-1].seq if more and entries else 0,
            )

        return await serve_call("ListDisclosures", context, self._metrics, work)

    async def VerifyLog(  # noqa: N802
        self, request: accountability_pb2.VerifyLogRequest, context: Ctx
    ) -> accountability_pb2.VerifyLogResponse:
        async def work() -> accountability_pb2.VerifyLogResponse:
            _require_privacy_officer()
            result = await asyncio.to_thread(self._verify)
            return accountability_pb2.VerifyLogResponse(
                ok=result.ok,
                records_checked=result.records_checked,
                first_bad_seq=result.first_bad_seq or 0,
                reason=result.reason,
                checkpoints_checked=result.checkpoints_checked,
                last_checkpoint_size=result.last_checkpoint_size,
                bad_checkpoint_size=result.bad_checkpoint_size or 0,
            )

        return await serve_call("VerifyLog", context, self._metrics, work)

    def _verify(self) -> VerifyResult:
        notes = self._outside() if self._outside is not None else []
        return self._log.verify(
            external=notes, require_checkpoint=True, external_source="in the checkpoint file"
        )

    async def GetCheckpoint(  # noqa: N802
        self, request: accountability_pb2.GetCheckpointRequest, context: Ctx
    ) -> accountability_pb2.Checkpoint:
        async def work() -> accountability_pb2.Checkpoint:
            _require_privacy_officer()
            latest = await asyncio.to_thread(self._log.latest_checkpoint)
            if latest is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, "the log has no checkpoint yet")
            assert latest is not None
            return checkpoint_message(latest)

        return await serve_call("GetCheckpoint", context, self._metrics, work)

    async def ProveInclusion(  # noqa: N802
        self, request: accountability_pb2.ProveInclusionRequest, context: Ctx
    ) -> accountability_pb2.InclusionProof:
        async def work() -> accountability_pb2.InclusionProof:
            _require_privacy_officer()
            if request.seq < 1:
                raise InvalidRequest("seq must be 1 or more")
            seq = log_position("seq", request.seq)
            tree_size = log_position("tree_size", request.tree_size)
            try:
                proof = await asyncio.to_thread(self._log.prove_inclusion, seq, tree_size)
            except ProofUnavailable as exc:
                await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
                raise
            return inclusion_message(proof)

        return await serve_call("ProveInclusion", context, self._metrics, work)

    async def ProveConsistency(  # noqa: N802
        self, request: accountability_pb2.ProveConsistencyRequest, context: Ctx
    ) -> accountability_pb2.ConsistencyProof:
        async def work() -> accountability_pb2.ConsistencyProof:
            _require_privacy_officer()
            if not 0 < request.old_size <= request.new_size:
                raise InvalidRequest("old_size and new_size must satisfy 0 < old <= new")
            new_size = log_position("new_size", request.new_size)
            try:
                proof = await asyncio.to_thread(
                    self._log.prove_consistency, request.old_size, new_size
                )
            except ProofUnavailable as exc:
                await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
                raise
            return consistency_message(proof)

        return await serve_call("ProveConsistency", context, self._metrics, work)

    async def ListBreakGlassReviews(  # noqa: N802
        self, request: accountability_pb2.ListBreakGlassReviewsRequest, context: Ctx
    ) -> accountability_pb2.ListBreakGlassReviewsResponse:
        reviews = await self._reviews_or_abort(context)

        async def work() -> accountability_pb2.ListBreakGlassReviewsResponse:
            _require_privacy_officer()
            page = await reviews.list(request.status, request.after_seq, request.page_size)
            shown, cut = take_within(
                (break_glass_review(r) for r in page.reviews), self._page_bytes
            )
            return accountability_pb2.ListBreakGlassReviewsResponse(
                reviews=shown,
                next_after_seq=shown[-1].disclosure.seq if cut else page.next_after_seq,
            )

        return await serve_call("ListBreakGlassReviews", context, self._metrics, work)

    async def CloseBreakGlassReview(  # noqa: N802
        self, request: accountability_pb2.CloseBreakGlassReviewRequest, context: Ctx
    ) -> accountability_pb2.BreakGlassReview:
        reviews = await self._reviews_or_abort(context)

        async def work() -> accountability_pb2.BreakGlassReview:
            _require_privacy_officer()
            rc = request_context.current()
            review = await reviews.close(
                rc.principal, rc.trace, request.disclosure_seq, request.verdict, request.comment
            )
            return break_glass_review(review)

        return await serve_call("CloseBreakGlassReview", context, self._metrics, work)

    async def SubjectAccessReport(  # noqa: N802
        self, request: accountability_pb2.SubjectAccessReportRequest, context: Ctx
    ) -> accountability_pb2.SubjectAccessReportResponse:
        reports = self._subject_access
        if reports is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "reports are not served here")
            raise AssertionError("unreachable: abort raises")

        async def work() -> accountability_pb2.SubjectAccessReportResponse:
            _require_privacy_officer()
            rc = request_context.current()
            wanted = ReportRequest(
                bsn=request.bsn,
                format=request.format or "json",
                language=request.language or "nl",
                case_id=request.case_id,
                person_id=request.person_id,
            )
            produced = await reports.produce(rc.principal, rc.trace, wanted)
            return accountability_pb2.SubjectAccessReportResponse(
                document=produced.document,
                media_type=produced.media_type,
                disclosures_listed=produced.disclosures_listed,
                withheld_under_exception=produced.withheld_under_exception,
                record_seq=produced.record_seq,
            )

        return await serve_call("SubjectAccessReport", context, self._metrics, work)

    async def _reviews_or_abort(self, context: Ctx) -> BreakGlassReviewQueue:
        if self._reviews is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "reviews are not served here")
            raise AssertionError("unreachable: abort raises")
        return self._reviews


def break_glass_review(review: Review) -> accountability_pb2.BreakGlassReview:
    closure = review.closure
    message = accountability_pb2.BreakGlassReview(
        disclosure=log_entry(review.disclosure), status=review.status.value
    )
    if closure is not None:
        message.verdict = closure.verdict.value
        # Empty once the comment's key was shredded with the reviewed case.
        message.comment = closure.comment or ""
        message.reviewed_by = closure.reviewed_by
        message.reviewed_at = format_time(closure.reviewed_at)
        message.review_seq = closure.review_seq
    return message


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
        fields=[accountability_pb2.LoggedField(**field_values(f)) for f in e.fields],
        prev_hash=record.prev_hash,
        record_hash=record.record_hash,
        name=e.name,
        ended_at=format_time(e.ended_at or e.occurred_at),
        parent_span_id=e.parent_span_id,
        subject_id_type=e.subject_id_type,
        detail=dict(e.detail),
        justification_ref=e.justification_ref,
        body=encode_event(e),
    )
