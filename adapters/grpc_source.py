"""Gateway side of the gRPC source contract: asks a partner's own system for its fields.

Implements gateway.broker.sources.Source. The deadline travels as the gRPC deadline, so the
partner's system can stop working on a request nobody waits for any more.

Every call carries a fresh ``request_id`` and the id of the gateway's current HPKE key. A
source that seals its answer to the gateway (docs/sealed-answers.md, "Sealed submissions")
binds it to that id, to the operation and to its
own partner id; the answer is opened here with the gateway's submission gate, expecting the
partner id this source was configured for. An answer that does not open, or a clear answer
where the gate requires sealing, counts as no answer: the source is unavailable for the request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TypeVar

import grpc
from grpc import aio

from adapters.channels import TlsMaterial, open_channel
from gateway.api.v1 import common_pb2, source_pb2, source_pb2_grpc
from gateway.broker.errors import BrokerError
from gateway.broker.ids import new_id
from gateway.broker.sealed_content import opened_content
from gateway.broker.sources import FetchContext, LookupResult, SourceUnavailable, Subject
from gateway.broker.submission_gate import SubmissionGate

C = TypeVar("C", source_pb2.FetchFieldsContent, source_pb2.LookupSubjectContent)
log = logging.getLogger("ketenpoort.sources")

FETCH_FIELDS = "SourceService/FetchFields"
LOOKUP_SUBJECT = "SourceService/LookupSubject"


class GrpcSource:
    """A partner's source system over gRPC.

    ``partner_id`` is the partner whose system answers at ``address``; with ``answers`` (the
    gateway's submission gate) sealed answers are opened, and clear ones admitted only as the
    gate allows. Without ``answers`` only clear answers are understood.
    """

    def __init__(
        self,
        address: str,
        tls: TlsMaterial | None = None,
        *,
        partner_id: str = "",
        answers: SubmissionGate | None = None,
    ) -> None:
        if answers is not None and not partner_id:
            raise ValueError("a source whose answers are opened needs the partner id it belongs to")
        self._channel = open_channel(address, tls)
        self._stub = source_pb2_grpc.SourceServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._partner_id = partner_id
        self._answers = answers

    async def fetch(
        self, subject: Subject, fields: Sequence[str], ctx: FetchContext, *, timeout_s: float
    ) -> Mapping[str, str]:
        request = source_pb2.FetchFieldsRequest(
            subject=_identity(subject),
            fields=list(fields),
            purpose=ctx.purpose,
            disclosure_id=ctx.disclosure_id,
            recipient_id=ctx.recipient_id,
            request_id=new_id("f_"),
            gateway_key_id=self._seal_to(),
        )
        try:
            response = await self._stub.FetchFields(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            raise SourceUnavailable(_describe(exc)) from exc
        content = self._content(
            FETCH_FIELDS,
            request.request_id,
            response.sealed if response.HasField("sealed") else None,
            source_pb2.FetchFieldsContent(values=dict(response.values)),
        )
        return dict(content.values)

    async def lookup(self, subject: Subject, triage_id: str, *, timeout_s: float) -> LookupResult:
        request = source_pb2.LookupSubjectRequest(
            subject=_identity(subject),
            triage_id=triage_id,
            request_id=new_id("l_"),
            gateway_key_id=self._seal_to(),
        )
        try:
            response = await self._stub.LookupSubject(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            raise SourceUnavailable(_describe(exc)) from exc
        content = self._content(
            LOOKUP_SUBJECT,
            request.request_id,
            response.sealed if response.HasField("sealed") else None,
            source_pb2.LookupSubjectContent(known=response.known, role=response.role),
        )
        return LookupResult(known=content.known, role=content.role)

    def _seal_to(self) -> str:
        # Named on every call so that a source follows a rotation before the old key is
        # retired; empty where this gateway opens no sealed answers.
        return self._answers.current_key_id if self._answers is not None else ""

    def _content(
        self,
        operation: str,
        request_id: str,
        sealed: common_pb2.SealedSubmission | None,
        clear: C,
    ) -> C:
        if self._answers is None:
            if sealed is not None:
                raise SourceUnavailable("sealed answer, but no gateway keys to open it")
            return clear
        try:
            return opened_content(
                self._answers,
                operation=operation,
                sender_id=self._partner_id,
                request_id=request_id,
                sealed=sealed,
                clear=clear,
            )
        except BrokerError as exc:
            # Named by partner, operation and the kind of refusal; nothing of the answer.
            log.warning(
                "the %s answer of %s's source was refused: %s",
                operation, self._partner_id, type(exc).__name__,
            )
            raise SourceUnavailable(f"source answer refused: {type(exc).__name__}") from None

    async def close(self) -> None:
        await self._channel.close(None)


def _identity(subject: Subject) -> common_pb2.SubjectIdentity:
    return common_pb2.SubjectIdentity(
        bsn=subject.bsn,
        name=subject.name,
        date_of_birth=subject.date_of_birth,
        address=subject.address,
        postcode=subject.postcode,
    )


def _describe(exc: grpc.RpcError) -> str:
    code = exc.code() if isinstance(exc, aio.AioRpcError) else None
    return f"source call failed: {code.name if code else 'unknown'}"
