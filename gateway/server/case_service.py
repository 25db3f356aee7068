"""gRPC face of the partner's work surface (CaseService): translates messages to use-case
calls and back."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc
from grpc import aio

from gateway.api.v1 import cases_pb2, cases_pb2_grpc
from gateway.broker.caller import Principal
from gateway.broker.case_events import CaseEvents
from gateway.broker.case_work import CaseChange, CaseDetail, CaseWork, ListQuery, encode_page_token
from gateway.broker.errors import InvalidRequest
from gateway.broker.regie import assigned_to
from gateway.server import request_context
from gateway.server.metrics import Metrics
from gateway.server.status import serve_call
from gateway.server.streaming import serve_stream
from gateway.store.case_work import Holder, RegieKind
from gateway.store.cases import CaseRow
from gateway.tlog.notes import format_time

Ctx = aio.ServicerContext[Any, Any]
# Open WatchCaseEvents streams one partner may hold at once on one replica.
DEFAULT_MAX_WATCHERS_PER_PARTNER = 4

# Writes what a CaseDetailPart read into the response (extension point; see
# gateway.broker.case_work.CaseDetailPart).
PartWriter = Callable[[cases_pb2.GetCaseResponse, object], None]

_INTAKE = {
    "pending": cases_pb2.INTAKE_PENDING,
    "accepted": cases_pb2.INTAKE_ACCEPTED,
    "declined": cases_pb2.INTAKE_DECLINED,
    "advice_only": cases_pb2.INTAKE_ADVICE_ONLY,
}
_DECISION = {
    cases_pb2.ACCEPT: "accept",
    cases_pb2.DECLINE: "decline",
    cases_pb2.ADVICE_ONLY: "advice_only",
}
_REGIE: dict[int, RegieKind] = {
    cases_pb2.PROCESREGIE: RegieKind.PROCESREGIE,
    cases_pb2.CASUSREGIE: RegieKind.CASUSREGIE,
}


class CaseService(cases_pb2_grpc.CaseServiceServicer):
    def __init__(
        self,
        work: CaseWork,
        events: CaseEvents,
        metrics: Metrics,
        *,
        max_watchers_per_partner: int = DEFAULT_MAX_WATCHERS_PER_PARTNER,
        part_writers: Mapping[str, PartWriter] | None = None,
    ) -> None:
        """``part_writers`` (name -> writer) put the parts of GetCase registered with
        ``CaseWork(detail_parts=...)`` into the response."""
        if max_watchers_per_partner < 0:
            raise ValueError("max_watchers_per_partner must be 0 or more")
        self._work = work
        self._events = events
        self._metrics = metrics
        self._max_watchers = max_watchers_per_partner
        self._watchers: Counter[str] = Counter()
        self._part_writers = dict(part_writers or {})

    async def ListCases(  # noqa: N802 (gRPC method name)
        self, request: cases_pb2.ListCasesRequest, context: Ctx
    ) -> cases_pb2.ListCasesResponse:
        async def work() -> cases_pb2.ListCasesResponse:
            who = request_context.current().principal
            query = ListQuery(
                phase=request.phase,
                approach=request.approach,
                assigned_to_me=request.assigned_to_me,
                page_size=request.page_size,
                page_token=request.page_token,
            )
            listing = await self._work.list_cases(who, query)
            return cases_pb2.ListCasesResponse(
                cases=[case_summary(c, who) for c in listing.cases],
                next_page_token=encode_page_token(listing.cases[-1]) if listing.more else "",
            )

        return await serve_call("ListCases", context, self._metrics, work)

    async def GetCase(  # noqa: N802
        self, request: cases_pb2.GetCaseRequest, context: Ctx
    ) -> cases_pb2.GetCaseResponse:
        async def work() -> cases_pb2.GetCaseResponse:
            rc = request_context.current()
            detail = await self._work.get_case(rc.principal, rc.trace, request.case_id)
            return self._case_response(detail, rc.principal)

        return await serve_call("GetCase", context, self._metrics, work)

    async def WatchCaseEvents(  # noqa: N802
        self, request: cases_pb2.WatchCaseEventsRequest, context: Ctx
    ) -> AsyncIterator[cases_pb2.CaseEvent]:
        partner = request_context.current().principal.partner_id
        if self._watchers[partner] >= self._max_watchers:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"at most {self._max_watchers} open WatchCaseEvents streams per partner",
            )
            return
        self._watchers[partner] += 1

        async def work() -> AsyncIterator[cases_pb2.CaseEvent]:
            rc = request_context.current()
            events = self._events.watch(
                rc.principal, rc.trace, request.after_event_id, request.case_id
            )
            async for row in events:
                yield cases_pb2.CaseEvent(
                    event_id=row.event_id, case_id=row.case_id, kind=row.kind,
                    at=format_time(row.at),
                )

        try:
            async for event in serve_stream("WatchCaseEvents", context, self._metrics, work):
                yield event
        finally:
            self._watchers[partner] -= 1
            if self._watchers[partner] <= 0:
                del self._watchers[partner]

    async def DecideIntake(  # noqa: N802
        self, request: cases_pb2.DecideIntakeRequest, context: Ctx
    ) -> cases_pb2.DecideIntakeResponse:
        async def work() -> cases_pb2.DecideIntakeResponse:
            rc = request_context.current()
            decision = _DECISION.get(request.decision)
            if decision is None:
                raise InvalidRequest("decision must be ACCEPT, DECLINE or ADVICE_ONLY")
            change = await self._work.decide_intake(
                rc.principal, rc.trace, request.case_id, decision, request.reason
            )
            c = change.case
            return cases_pb2.DecideIntakeResponse(
                intake=_INTAKE.get(c.intake, cases_pb2.INTAKE_STATE_UNSPECIFIED),
                phase=c.phase,
                procesregie=_holder(c.procesregie_partner, c.procesregie_user),
                log_seq=change.log_seq,
            )

        return await serve_call("DecideIntake", context, self._metrics, work)

    async def ChangeApproach(  # noqa: N802
        self, request: cases_pb2.ChangeApproachRequest, context: Ctx
    ) -> cases_pb2.ChangeApproachResponse:
        async def work() -> cases_pb2.ChangeApproachResponse:
            rc = request_context.current()
            change = await self._work.change_approach(
                rc.principal, rc.trace, request.case_id, request.approach, request.reason
            )
            return cases_pb2.ChangeApproachResponse(
                approach=change.case.approach, log_seq=change.log_seq
            )

        return await serve_call("ChangeApproach", context, self._metrics, work)

    async def Escalate(  # noqa: N802
        self, request: cases_pb2.EscalateRequest, context: Ctx
    ) -> cases_pb2.EscalateResponse:
        async def work() -> cases_pb2.EscalateResponse:
            rc = request_context.current()
            change = await self._work.escalate(
                rc.principal, rc.trace, request.case_id, request.reason
            )
            return cases_pb2.EscalateResponse(log_seq=change.log_seq)

        return await serve_call("Escalate", context, self._metrics, work)

    async def TransferRegie(  # noqa: N802
        self, request: cases_pb2.TransferRegieRequest, context: Ctx
    ) -> cases_pb2.RegieResponse:
        async def work() -> cases_pb2.RegieResponse:
            rc = request_context.current()
            change = await self._work.transfer_regie(
                rc.principal,
                rc.trace,
                request.case_id,
                _regie(request.regie),
                Holder(request.to_partner, request.to_user),
                request.reason,
            )
            return _regie_response(change)

        return await serve_call("TransferRegie", context, self._metrics, work)

    async def ReturnRegie(  # noqa: N802
        self, request: cases_pb2.ReturnRegieRequest, context: Ctx
    ) -> cases_pb2.RegieResponse:
        async def work() -> cases_pb2.RegieResponse:
            rc = request_context.current()
            change = await self._work.return_regie(
                rc.principal, rc.trace, request.case_id, _regie(request.regie), request.reason
            )
            return _regie_response(change)

        return await serve_call("ReturnRegie", context, self._metrics, work)

    def _case_response(self, detail: CaseDetail, who: Principal) -> cases_pb2.GetCaseResponse:
        response = cases_pb2.GetCaseResponse(
            case=case_summary(detail.case, who),
            participants=detail.case.participants,
            persons=[
                cases_pb2.CasePersonSummary(person_id=p.person_id, role_in_case=p.role_in_case)
                for p in detail.persons
            ],
        )
        for name, value in detail.parts.items():
            writer = self._part_writers.get(name)
            if writer is not None:
                writer(response, value)
        return response


def case_summary(case: CaseRow, who: Principal) -> cases_pb2.CaseSummary:
    return cases_pb2.CaseSummary(
        case_id=case.case_id,
        phase=case.phase,
        approach=case.approach,
        intake=_INTAKE.get(case.intake, cases_pb2.INTAKE_STATE_UNSPECIFIED),
        procesregie=_holder(case.procesregie_partner, case.procesregie_user),
        casusregie=_holder(case.casusregie_partner, case.casusregie_user),
        registered_by=case.registered_by,
        created_at=format_time(case.created_at),
        closed_at=format_time(case.closed_at) if case.closed_at else "",
        assigned_to_me=assigned_to(case, who),
    )


def _holder(partner_id: str, user: str) -> cases_pb2.RegieHolder:
    return cases_pb2.RegieHolder(partner_id=partner_id, user=user)


def _regie(value: int) -> RegieKind:
    regie = _REGIE.get(value)
    if regie is None:
        raise InvalidRequest("regie must be PROCESREGIE or CASUSREGIE")
    return regie


def _regie_response(change: CaseChange) -> cases_pb2.RegieResponse:
    c = change.case
    return cases_pb2.RegieResponse(
        procesregie=_holder(c.procesregie_partner, c.procesregie_user),
        casusregie=_holder(c.casusregie_partner, c.casusregie_user),
        log_seq=change.log_seq,
    )
