"""What crosses the wire to a source system, as a proxy terminating TLS in front of it reads it.

`WireTap` is a server interceptor for a source: it keeps every request message exactly as it
arrived (the serialised protobuf, before the servicer parses it), so a test can look for
the subject's identity in the bytes themselves rather than in what the servicer saw.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc import aio


@dataclass
class WireTap(aio.ServerInterceptor):  # type: ignore[type-arg]
    """Every unary request a source received: (full method name, serialised message)."""

    requests: list[tuple[str, bytes]] = field(default_factory=list)

    def of(self, method: str) -> list[bytes]:
        """The messages received for ``method`` (e.g. "FetchFields")."""
        return [raw for name, raw in self.requests if name.rsplit("/", 1)[-1] == method]

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method: str = handler_call_details.method
        parse = handler.request_deserializer

        def tapped(raw: bytes) -> object:
            self.requests.append((method, bytes(raw)))
            return parse(raw) if parse is not None else raw

        return grpc.unary_unary_rpc_method_handler(
            handler.unary_unary,
            request_deserializer=tapped,
            response_serializer=handler.response_serializer,
        )
