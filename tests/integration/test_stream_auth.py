"""The authentication interceptor covers streaming handlers: a server stream is served only to
an authenticated caller, and handlers it cannot wrap (client and bidirectional streams, a
server stream written as a plain generator) are refused instead of passed through. A probe
service on a real server on loopback records whether its handlers ever ran."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio

from adapters.tokens import mint_token
from gateway.core import CompiledPolicy
from gateway.crypto.devkeys import load_partner_private_keys
from gateway.server import request_context
from gateway.server.auth import AuthRefused, TokenVerifier
from gateway.server.interceptors import AuthInterceptor
from gateway.server.metrics import Metrics
from gateway.server.partners import load_registry
from gateway.server.token_replay import TokenAdmission
from gateway.store.db import create_engine_for, init_schema
from tests.integration.harness import dev_registry

SERVICE = "probe.v1.Probe"


def _identity(data: bytes) -> bytes:
    return data


class Probe:
    def __init__(self) -> None:
        self.ran: list[str] = []

    async def server_stream(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        self.ran.append("server_stream")
        who = request_context.current().principal.partner_id.encode()
        for _ in range(2):
            yield who

    def sync_server_stream(self, request: bytes, context: Any) -> Iterator[bytes]:
        self.ran.append("sync_server_stream")
        yield b"unchecked"

    async def client_stream(self, requests: AsyncIterator[bytes], context: Any) -> bytes:
        self.ran.append("client_stream")
        return b"".join([r async for r in requests])

    async def both_streams(
        self, requests: AsyncIterator[bytes], context: Any
    ) -> AsyncIterator[bytes]:
        self.ran.append("both_streams")
        async for r in requests:
            yield r

    def handler(self) -> grpc.GenericRpcHandler:
        codec = {"request_deserializer": _identity, "response_serializer": _identity}
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "ServerStream": grpc.unary_stream_rpc_method_handler(self.server_stream, **codec),
                "SyncServerStream": grpc.unary_stream_rpc_method_handler(
                    self.sync_server_stream, **codec
                ),
                "ClientStream": grpc.stream_unary_rpc_method_handler(self.client_stream, **codec),
                "BothStreams": grpc.stream_stream_rpc_method_handler(self.both_streams, **codec),
            },
        )


@pytest.fixture
async def probe_server(
    dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[tuple[str, Probe, Metrics]]:
    registry = load_registry(shipped_policy, dev_registry(dev_keys))
    verifier = TokenVerifier(
        lambda: registry.partners,
        lambda: registry.by_certificate,
        audience="ketenpoort",
        algorithms=("EdDSA",),
        leeway_s=0,
        max_lifetime_s=600,
        require_binding=False,  # a plaintext probe server: no certificate to bind to
    )
    metrics = Metrics()
    engine = create_engine_for("sqlite://")
    init_schema(engine)
    admission = TokenAdmission(engine, leeway_s=0)
    refused: list[str] = []

    async def record(refusal: AuthRefused, _trace: object) -> None:
        refused.append(refusal.reason.value)

    server = aio.server(
        interceptors=[AuthInterceptor(verifier, admission, metrics, record, mutual_tls=False)]
    )
    probe = Probe()
    server.add_generic_rpc_handlers((probe.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", probe, metrics
    finally:
        await server.stop(None)


def _token(dev_keys: Path) -> tuple[tuple[str, str], ...]:
    keys = load_partner_private_keys(dev_keys, "police")
    token = mint_token(
        partner_id="police",
        key=keys.token_key,
        key_id=keys.token_key_id,
        audience="ketenpoort",
        role="case_director",
    )
    return (("authorization", f"Bearer {token}"),)


async def _replies(call: Any) -> list[bytes]:
    return [reply async for reply in call]


async def _requests() -> AsyncIterator[bytes]:
    yield b"hello"


async def test_a_server_stream_is_served_only_to_an_authenticated_caller(
    probe_server: tuple[str, Probe, Metrics], dev_keys: Path
) -> None:
    address, probe, _ = probe_server
    async with aio.insecure_channel(address) as channel:
        stream = channel.unary_stream(f"/{SERVICE}/ServerStream")
        for metadata in ((), (("authorization", "Bearer forged"),)):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _replies(stream(b"", metadata=metadata))
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert probe.ran == []
        assert await _replies(stream(b"", metadata=_token(dev_keys))) == [b"police", b"police"]
        assert probe.ran == ["server_stream"]


@pytest.mark.parametrize("kind", ["SyncServerStream", "ClientStream", "BothStreams"])
async def test_call_kinds_that_cannot_be_authenticated_are_refused(
    probe_server: tuple[str, Probe, Metrics], dev_keys: Path, kind: str
) -> None:
    address, probe, metrics = probe_server
    async with aio.insecure_channel(address) as channel:
        if kind == "SyncServerStream":
            call: Any = channel.unary_stream(f"/{SERVICE}/{kind}")(b"", metadata=_token(dev_keys))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _replies(call)
        elif kind == "ClientStream":
            call = channel.stream_unary(f"/{SERVICE}/{kind}")(
                _requests(), metadata=_token(dev_keys)
            )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
        else:
            call = channel.stream_stream(f"/{SERVICE}/{kind}")(
                _requests(), metadata=_token(dev_keys)
            )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _replies(call)
    # Refused even with a valid token: the interceptor cannot bind the caller to such calls.
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert probe.ran == []
    refused = metrics.registry.get_sample_value(
        "ketenpoort_auth_failures_total", {"reason": "call_kind_not_served"}
    )
    assert refused == 1
