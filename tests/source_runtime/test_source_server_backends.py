"""adapters.source_server serves asynchronous backends as it serves plain ones, and maps a
backend's SystemUnavailable and TimeoutError to UNAVAILABLE and DEADLINE_EXCEEDED with fixed
messages (real gRPC on loopback, clear answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import grpc
import pytest
from grpc import aio

from adapters.source_runtime.adapter import SystemUnavailable
from adapters.source_server import FieldsAnswer, RunningSource, serve_source
from gateway.api.v1 import common_pb2, source_pb2, source_pb2_grpc

BSN = "999990019"


class AsyncSystem:
    """A backend whose methods are coroutines (an older-style PersonBackend, made async)."""

    def __init__(self) -> None:
        self.failure: BaseException | None = None

    async def fetch(self, bsn: str, fields: Sequence[str]) -> FieldsAnswer:
        return await self.fetch_person(common_pb2.SubjectIdentity(bsn=bsn), fields)

    async def lookup(self, bsn: str) -> tuple[bool, str]:
        return await self.lookup_person(common_pb2.SubjectIdentity(bsn=bsn))

    async def fetch_person(
        self, identity: common_pb2.SubjectIdentity, fields: Sequence[str]
    ) -> FieldsAnswer:
        if self.failure is not None:
            raise self.failure
        if identity.bsn != BSN:
            return FieldsAnswer({})
        # "b" comes with a value and as unavailable: it counts as unavailable, sent without it.
        return FieldsAnswer({"a": "1", "b": "2", "c": "not asked"}, frozenset({"b"}))

    async def lookup_person(self, identity: common_pb2.SubjectIdentity) -> tuple[bool, str]:
        if self.failure is not None:
            raise self.failure
        return (identity.bsn == BSN, "client" if identity.bsn == BSN else "")


@pytest.fixture
async def served() -> AsyncIterator[tuple[AsyncSystem, source_pb2_grpc.SourceServiceStub]]:
    system = AsyncSystem()
    running: RunningSource = await serve_source(system, clear_answers=True)  # type: ignore[arg-type]
    channel = aio.insecure_channel(running.address)
    yield system, source_pb2_grpc.SourceServiceStub(channel)  # type: ignore[no-untyped-call]
    await channel.close(None)
    await running.stop(None)


def fetch(bsn: str = BSN) -> source_pb2.FetchFieldsRequest:
    return source_pb2.FetchFieldsRequest(
        subject=common_pb2.SubjectIdentity(bsn=bsn), fields=["a", "b"], disclosure_id="d")


async def test_an_async_backend_is_served_with_per_field_unavailable(
    served: tuple[AsyncSystem, source_pb2_grpc.SourceServiceStub],
) -> None:
    _, stub = served
    answer = await stub.FetchFields(fetch(), timeout=5)
    assert dict(answer.values) == {"a": "1"} and list(answer.unavailable) == ["b"]
    lookup = await stub.LookupSubject(source_pb2.LookupSubjectRequest(
        subject=common_pb2.SubjectIdentity(bsn=BSN), triage_id="t"), timeout=5)
    assert (lookup.known, lookup.role) == (True, "client")


@pytest.mark.parametrize(("failure", "code"), [
    (SystemUnavailable("connection refused to db01 for 999990019"), grpc.StatusCode.UNAVAILABLE),
    (TimeoutError(), grpc.StatusCode.DEADLINE_EXCEEDED),
])
async def test_a_failing_system_ends_the_call_with_a_fixed_status(
    served: tuple[AsyncSystem, source_pb2_grpc.SourceServiceStub],
    failure: BaseException, code: grpc.StatusCode,
) -> None:
    system, stub = served
    system.failure = failure
    for call in (stub.FetchFields(fetch(), timeout=5), stub.LookupSubject(
            source_pb2.LookupSubjectRequest(subject=common_pb2.SubjectIdentity(bsn=BSN),
                                            triage_id="t"), timeout=5)):
        with pytest.raises(aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == code
        assert BSN not in (raised.value.details() or "")
        assert "db01" not in (raised.value.details() or "")
