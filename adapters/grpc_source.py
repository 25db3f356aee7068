"""Gateway side of the gRPC source contract: asks a partner's own system for its fields.

Implements gateway.broker.sources.Source. The deadline travels as the gRPC deadline, so the
partner's system can stop working on a request nobody waits for any more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc
from grpc import aio

from adapters.channels import TlsMaterial, open_channel
from gateway.api.v1 import common_pb2, source_pb2, source_pb2_grpc
from gateway.broker.sources import FetchContext, LookupResult, SourceUnavailable, Subject


class GrpcSource:
    def __init__(self, address: str, tls: TlsMaterial | None = None) -> None:
        self._channel = open_channel(address, tls)
        self._stub = source_pb2_grpc.SourceServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def fetch(
        self, subject: Subject, fields: Sequence[str], ctx: FetchContext, *, timeout_s: float
    ) -> Mapping[str, str]:
        request = source_pb2.FetchFieldsRequest(
            subject=_identity(subject),
            fields=list(fields),
            purpose=ctx.purpose,
            disclosure_id=ctx.disclosure_id,
            recipient_id=ctx.recipient_id,
        )
        try:
            response = await self._stub.FetchFields(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            raise SourceUnavailable(_describe(exc)) from exc
        return dict(response.values)

    async def lookup(self, subject: Subject, triage_id: str, *, timeout_s: float) -> LookupResult:
        request = source_pb2.LookupSubjectRequest(subject=_identity(subject), triage_id=triage_id)
        try:
            response = await self._stub.LookupSubject(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            raise SourceUnavailable(_describe(exc)) from exc
        return LookupResult(known=response.known, role=response.role)

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
