"""A bare pass-through gRPC proxy: the floor any gateway in Python pays.

Every unary method is forwarded as raw bytes to one upstream address: no parsing, no
authentication, no logging. What the gateway adds on top of this is its own cost. With TLS
it terminates the client's connection and opens its own to the upstream (``tls_setup``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from adapters.channels import DEFAULT_MAX_MESSAGE_BYTES, TlsMaterial, open_channel

# A deadline further away than this is treated as none (grpc reports "no deadline" as a
# very large remaining time).
_NO_DEADLINE_S = 24 * 3600.0

_Forward = Callable[[bytes, aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]


if TYPE_CHECKING:
    _GenericHandler = grpc.GenericRpcHandler[bytes, bytes]
else:  # the stubs make it generic; the runtime class is not
    _GenericHandler = grpc.GenericRpcHandler


class ForwardingHandler(_GenericHandler):
    """Answers every unary method by calling the same method upstream with the same bytes."""

    def __init__(self, upstream: aio.Channel) -> None:
        self._upstream = upstream
        self._handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[bytes, bytes]:
        method = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is None:
            handler = grpc.unary_unary_rpc_method_handler(self._forwarder(method))
            self._handlers[method] = handler
        return handler

    def _forwarder(self, method: str) -> _Forward:
        # No serializers: the upstream call takes and returns bytes unchanged.
        call: Any = self._upstream.unary_unary(method, None, None)

        async def forward(request: bytes, context: aio.ServicerContext[bytes, bytes]) -> bytes:
            remaining = context.time_remaining()
            timeout = remaining if remaining is not None and remaining < _NO_DEADLINE_S else None
            try:
                response: bytes = await call(request, timeout=timeout)
            except aio.AioRpcError as exc:
                await context.abort(exc.code(), exc.details() or "")
            return response

        return forward


async def serve_passthrough(
    upstream_address: str,
    listen: str = "127.0.0.1:0",
    *,
    credentials: grpc.ServerCredentials | None = None,
    upstream_tls: TlsMaterial | None = None,
) -> tuple[aio.Server, aio.Channel, int]:
    """Start the proxy; returns the server, its upstream channel and the bound port.
    ``credentials`` secure the listening side, ``upstream_tls`` the upstream connection;
    without them each side is plaintext."""
    options = [
        ("grpc.max_receive_message_length", DEFAULT_MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", DEFAULT_MAX_MESSAGE_BYTES),
    ]
    upstream = open_channel(upstream_address, upstream_tls)
    server = aio.server(options=options)
    server.add_generic_rpc_handlers((ForwardingHandler(upstream),))
    if credentials is None:
        port = server.add_insecure_port(listen)
    else:
        port = server.add_secure_port(listen, credentials)
    await server.start()
    return server, upstream, port
