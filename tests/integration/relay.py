"""A relay that terminates TLS between a partner system and the gateway, and meddles.

It stands where an ingress, a TLS-inspecting egress proxy or a service-mesh sidecar stands:
it serves the partner's connection with a certificate the partner trusts, and opens its own
mutual-TLS connection upstream with the partner's client certificate (an egress proxy of the
partner's that holds it), so tokens bound to that certificate still pass. Every unary call is
forwarded as raw bytes, as bench/passthrough.py forwards them; ``rewrite_request`` and
``rewrite_response`` see (method, bytes) and may hand back other bytes (a response rewrite may
be a coroutine), which is all a relay that reads the plaintext can do to a sealed answer: keep
it, replay it, swap it, or put one of its own making in its place.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from adapters.channels import TlsMaterial, open_channel

RequestRewrite = Callable[[str, bytes], bytes]
# (method, request, response) -> the response to hand back, or a coroutine giving it.
ResponseRewrite = Callable[[str, bytes, bytes], bytes | Awaitable[bytes]]

if TYPE_CHECKING:
    _GenericHandler = grpc.GenericRpcHandler[bytes, bytes]
else:  # the stubs make it generic; the runtime class is not
    _GenericHandler = grpc.GenericRpcHandler


class _Relay(_GenericHandler):
    def __init__(
        self, upstream: aio.Channel, on_request: RequestRewrite, on_response: ResponseRewrite
    ) -> None:
        self._upstream = upstream
        self._on_request = on_request
        self._on_response = on_response

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[bytes, bytes]:
        method: str = handler_call_details.method
        call: Any = self._upstream.unary_unary(method, None, None)

        async def forward(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
            # The token travels on: the relay forwards what the partner sent.
            metadata = tuple(
                (m.key, m.value) for m in context.invocation_metadata() or ()
                if m.key == "authorization"
            )
            try:
                response: bytes = await call(
                    self._on_request(method, request), metadata=metadata, timeout=10.0
                )
            except aio.AioRpcError as exc:
                await context.abort(exc.code(), exc.details() or "")
            rewritten = self._on_response(method, request, response)
            return await rewritten if inspect.isawaitable(rewritten) else rewritten

        return grpc.unary_unary_rpc_method_handler(forward)


@asynccontextmanager
async def tls_relay(
    upstream_address: str,
    *,
    serve_as: tuple[bytes, bytes],  # (key PEM, certificate PEM) the relay serves with
    upstream_tls: TlsMaterial,
    rewrite_request: RequestRewrite = lambda _method, raw: raw,
    rewrite_response: ResponseRewrite = lambda _method, _request, raw: raw,
) -> AsyncIterator[str]:
    """A running relay to ``upstream_address``; yields the address partners connect to."""
    upstream = open_channel(upstream_address, upstream_tls)
    server = aio.server()
    server.add_generic_rpc_handlers((_Relay(upstream, rewrite_request, rewrite_response),))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([serve_as]))
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
        await upstream.close(None)
