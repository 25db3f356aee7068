"""Partner side of the source contract: serve a partner's own fields to the gateway.

A partner wraps its system in a `SourceBackend` (two small methods) and serves it with
`serve_source`. `InMemoryBackend` holds records in a dict; the demo's simulated partner
systems and the tests use it. Every request is remembered (field ids only) so a partner
can account for what it supplied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
from grpc import aio

from adapters.channels import DEFAULT_MAX_MESSAGE_BYTES
from gateway.api.v1 import source_pb2, source_pb2_grpc


@dataclass(frozen=True)
class SubjectRecord:
    """What one partner system holds about one person."""

    bsn: str
    role: str
    fields: Mapping[str, str]


@dataclass(frozen=True)
class FetchSeen:
    """A fetch the source answered: which fields for which disclosure (never values)."""

    disclosure_id: str
    purpose: str
    recipient_id: str
    fields: tuple[str, ...]


class SourceBackend(Protocol):
    def fetch(self, bsn: str, fields: Sequence[str]) -> Mapping[str, str]: ...

    def lookup(self, bsn: str) -> tuple[bool, str]: ...


@dataclass
class InMemoryBackend:
    records: dict[str, SubjectRecord] = field(default_factory=dict)

    def add(self, record: SubjectRecord) -> None:
        self.records[record.bsn] = record

    def fetch(self, bsn: str, fields: Sequence[str]) -> Mapping[str, str]:
        record = self.records.get(bsn)
        if record is None:
            return {}
        return {f: record.fields[f] for f in fields if f in record.fields}

    def lookup(self, bsn: str) -> tuple[bool, str]:
        record = self.records.get(bsn)
        return (True, record.role) if record else (False, "")


class SourceServicer(source_pb2_grpc.SourceServiceServicer):
    def __init__(self, backend: SourceBackend) -> None:
        self.backend = backend
        self.seen: list[FetchSeen] = []
        self.lookups = 0

    async def FetchFields(  # noqa: N802 (gRPC method name)
        self, request: source_pb2.FetchFieldsRequest, context: aio.ServicerContext[Any, Any]
    ) -> source_pb2.FetchFieldsResponse:
        if not request.subject.bsn:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "subject.bsn is required")
        self.seen.append(
            FetchSeen(
                request.disclosure_id,
                request.purpose,
                request.recipient_id,
                tuple(request.fields),
            )
        )
        values = self.backend.fetch(request.subject.bsn, list(request.fields))
        return source_pb2.FetchFieldsResponse(values=dict(values))

    async def LookupSubject(  # noqa: N802
        self, request: source_pb2.LookupSubjectRequest, context: aio.ServicerContext[Any, Any]
    ) -> source_pb2.LookupSubjectResponse:
        self.lookups += 1
        known, role = self.backend.lookup(request.subject.bsn)
        return source_pb2.LookupSubjectResponse(known=known, role=role)


@dataclass
class RunningSource:
    server: aio.Server
    servicer: SourceServicer
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        await self.server.stop(grace)


async def serve_source(
    backend: SourceBackend,
    address: str = "127.0.0.1:0",
    *,
    credentials: grpc.ServerCredentials | None = None,
) -> RunningSource:
    server = aio.server(
        options=[
            ("grpc.max_receive_message_length", DEFAULT_MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_BYTES),
        ]
    )
    servicer = SourceServicer(backend)
    source_pb2_grpc.add_SourceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    await server.start()
    return RunningSource(server, servicer, port)
