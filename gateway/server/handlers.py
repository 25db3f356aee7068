"""What the gateway's interceptors share: grpc's handler types, the operation name of a method,
the client certificate's thumbprint and a per-method cache of wrapped handlers.

Each interceptor (limits, authentication, request checks) replaces a service's handler by a
wrapper of its own. A wrapper reads everything call-specific from its own call's context, so
one wrapper per method serves every call: it is built once and kept while grpc hands the
interceptor the same handler for that method.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from gateway.crypto.keyids import pem_certificate_thumbprint

__all__ = [
    "OPEN_PREFIXES",
    "Context",
    "Continuation",
    "Handler",
    "PeerThumbprints",
    "WrappedHandlers",
    "operation_name",
    "served_as",
]

# Health checks and reflection: orchestrators and tooling call them without a partner token.
OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")

if TYPE_CHECKING:  # grpc's classes are generic only in the type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
    ServerInterceptor = aio.ServerInterceptor[Any, Any]
    Context = aio.ServicerContext[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
    ServerInterceptor = aio.ServerInterceptor
    Context = aio.ServicerContext
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler]]

_MAX_CACHED_CERTIFICATES = 1024


def operation_name(method: str) -> str:
    """The name the gateway's logs and metrics give a method:
    "/ketenpoort.v1.ExchangeService/RequestDisclosure" -> "ExchangeService/RequestDisclosure"."""
    return method.lstrip("/").rsplit(".", 1)[-1]


def served_as(
    make: Callable[..., Handler], behavior: Callable[..., Any], handler: Handler
) -> Handler:
    """A handler that ``make`` (one of grpc's ``*_rpc_method_handler``) builds for
    ``behavior``, with ``handler``'s request deserializer and response serializer."""
    return make(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class WrappedHandlers:
    """method -> (the handler behind the interceptor, its wrapper built by ``wrap``).

    A wrapper is built again only when the handler behind it changes."""

    def __init__(self, wrap: Callable[[Handler, str], Handler]) -> None:
        self._wrap = wrap
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    def of(self, handler: Handler, method: str) -> Handler:
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped


class PeerThumbprints:
    """The RFC 8705 thumbprint of a call's client certificate. A connection presents the same
    certificate on every call, so each PEM is hashed once (a bounded cache)."""

    def __init__(self) -> None:
        self._thumbprints: dict[bytes, str] = {}

    def of(self, context: Context) -> str | None:
        """The thumbprint, or None when the call presented no client certificate."""
        pem = next(iter(context.auth_context().get("x509_pem_cert") or ()), None)
        if pem is None:
            return None
        thumbprint = self._thumbprints.get(pem)
        if thumbprint is None:
            thumbprint = pem_certificate_thumbprint(pem)
            if len(self._thumbprints) >= _MAX_CACHED_CERTIFICATES:
                self._thumbprints.clear()
            self._thumbprints[pem] = thumbprint
        return thumbprint
