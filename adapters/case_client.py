"""The partner's work surface on cases (CaseService, proto/ketenpoort/v1/cases.proto).

Reached as ``PartnerClient.cases``: it shares the client's channels (one per gateway address,
calls going to the client's current one) and its tokens (a fresh token per call). Reads are
sent again after UNAVAILABLE, at the next address first; every call is sent again after the
gateway's call limits turned it away (nothing was done then). See docs/case-lifecycle.md and
docs/partners/failover.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from grpc import aio

from adapters.resending import GatewayAddresses, retry_when_limited, retry_while_unavailable
from gateway.api.v1 import cases_pb2, cases_pb2_grpc

DEFAULT_TIMEOUT_S = 10.0
Metadata = Callable[[], tuple[tuple[str, str], ...]]


class CaseClient:
    def __init__(
        self,
        channel: aio.Channel | Sequence[aio.Channel],
        metadata: Metadata,
        addresses: GatewayAddresses | None = None,
    ) -> None:
        """``channel``: one, or one per address of ``addresses`` (in its order)."""
        channels = [channel] if isinstance(channel, aio.Channel) else list(channel)
        if len(channels) != (len(addresses.addresses) if addresses is not None else 1):
            raise ValueError("give one channel per gateway address")
        self._stubs = [
            cases_pb2_grpc.CaseServiceStub(c)  # type: ignore[no-untyped-call]
            for c in channels
        ]
        self._addresses = addresses
        self._metadata = metadata

    @property
    def _stub(self) -> cases_pb2_grpc.CaseServiceStub:
        # The stub of the client's current address, looked up on every (re)send.
        return self._stubs[self._addresses.position if self._addresses is not None else 0]

    async def list_cases(
        self,
        *,
        phase: str = "",
        approach: str = "",
        assigned_to_me: bool = False,
        page_size: int = 0,
        page_token: str = "",
    ) -> cases_pb2.ListCasesResponse:
        request = cases_pb2.ListCasesRequest(
            phase=phase,
            approach=approach,
            assigned_to_me=assigned_to_me,
            page_size=page_size,
            page_token=page_token,
        )
        response: cases_pb2.ListCasesResponse = await retry_while_unavailable(
            failover=self._addresses, call=lambda: self._stub.ListCases(
                request, metadata=self._metadata(), timeout=DEFAULT_TIMEOUT_S
            )
        )
        return response

    async def all_cases(self, **filters: object) -> list[cases_pb2.CaseSummary]:
        """Every page of ``list_cases`` with the same filters."""
        found: list[cases_pb2.CaseSummary] = []
        token = ""
        while True:
            page = await self.list_cases(page_token=token, **filters)  # type: ignore[arg-type]
            found.extend(page.cases)
            token = page.next_page_token
            if not token:
                return found

    async def get_case(self, case_id: str) -> cases_pb2.GetCaseResponse:
        request = cases_pb2.GetCaseRequest(case_id=case_id)
        response: cases_pb2.GetCaseResponse = await retry_while_unavailable(
            failover=self._addresses, call=lambda: self._stub.GetCase(
                request, metadata=self._metadata(), timeout=DEFAULT_TIMEOUT_S
            )
        )
        return response

    def watch_events(
        self, after_event_id: int = 0, case_id: str = ""
    ) -> AsyncIterator[cases_pb2.CaseEvent]:
        """The stream of the partner's case events; cancel it to stop watching."""
        call: AsyncIterator[cases_pb2.CaseEvent] = self._stub.WatchCaseEvents(
            cases_pb2.WatchCaseEventsRequest(after_event_id=after_event_id, case_id=case_id),
            metadata=self._metadata(),
        )
        return call

    async def decide_intake(
        self, case_id: str, decision: cases_pb2.IntakeDecision, reason: str
    ) -> cases_pb2.DecideIntakeResponse:
        request = cases_pb2.DecideIntakeRequest(
            case_id=case_id, decision=decision, reason=reason
        )
        response: cases_pb2.DecideIntakeResponse = await retry_when_limited(
            failover=self._addresses, call=lambda: self._stub.DecideIntake(
                request, metadata=self._metadata(), timeout=DEFAULT_TIMEOUT_S
            )
        )
        return response

    async def escalate(self, case_id: str, reason: str) -> cases_pb2.EscalateResponse:
        """Reopen the case's break-glass window at a new acute moment (procesregisseur)."""
        request = cases_pb2.EscalateRequest(case_id=case_id, reason=reason)
        response: cases_pb2.EscalateResponse = await self._stub.Escalate(
            request, metadata=self._metadata(), timeout=DEFAULT_TIMEOUT_S
        )
        return response

    async def change_approach(
        self, case_id: str, approach: str, reason: str
    ) -> cases_pb2.ChangeApproachResponse:
        request = cases_pb2.ChangeApproachRequest(
            case_id=case_id, approach=approach, reason=reason
        )
        response: cases_pb2.ChangeApproachResponse = await retry_when_limited(
            failover=self._addresses, call=lambda: self._stub.ChangeApproach(
                request, metadata=self._metadata(), timeout=DEFAULT_TIMEOUT_S
            )
        )
        return response

    async def transfer_regie(
        self,
        case_id: str,
        regie: cases_pb2.Regie,
        to_partner: str,
        to_user: str = "",
        reason: str = "",
    ) -> cases_pb2.RegieResponse:
        request = cases_pb2.TransferRegieRequest(
            case_id=case_id, regie=regie, to_partner=to_partner, to_user=to_user, reason=reason
        )
        response: cases_pb2.RegieResponse = await retry_when_limited(
            failover=self._addresses, call=lambda: self._stub.TransferRegie(
                request, metadata=self._metadata(), timeout=DEFAULT_TIMEOUT_S
            )
        )
        return response

    async def return_regie(
        self, case_id: str, regie: cases_pb2.Regie, reason: str = ""
    ) -> cases_pb2.RegieResponse:
        request = cases_pb2.ReturnRegieRequest(case_id=case_id, regie=regie, reason=reason)
        response: cases_pb2.RegieResponse = await retry_when_limited(
            failover=self._addresses, call=lambda: self._stub.ReturnRegie(
                request, metadata=self._metadata(), timeout=DEFAULT_TIMEOUT_S
            )
        )
        return response
