"""Authentication interceptor: no servicer sees an unauthenticated call.

The interceptor wraps each unary and server-streaming handler so that the token is verified
inside the handler's own task; the principal and trace context then travel in a contextvar.
A handler of any other kind (client or bidirectional streaming) is replaced by one that
refuses the call: an unwrapped handler would be served without authentication. Health checks
and reflection stay open, as orchestrators and tooling call them without a partner token.
"""

from __future__ import annotations

import contextvars
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from gateway.broker.caller import TraceContext
from gateway.crypto.keyids import pem_certificate_thumbprint
from gateway.server import request_context
from gateway.server.auth import AuthRefused, RefusalReason, TokenVerifier
from gateway.server.metrics import Metrics
from gateway.server.token_replay import TokenAdmission

OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")

log = logging.getLogger("ketenpoort.server")

if TYPE_CHECKING:  # grpc's classes are generic only in the type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
    _Interceptor = aio.ServerInterceptor[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
    _Interceptor = aio.ServerInterceptor
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler]]
# Writes the accountability record of a refused call; awaited before the call is answered.
RefusalRecorder = Callable[[AuthRefused, TraceContext], Awaitable[None]]
_MAX_CACHED_CERTIFICATES = 1024


class AuthInterceptor(_Interceptor):
    def __init__(
        self,
        verifier: TokenVerifier,
        admission: TokenAdmission,
        metrics: Metrics,
        record_refusal: RefusalRecorder,
        *,
        mutual_tls: bool,
    ) -> None:
        self._verifier = verifier
        self._admission = admission
        self._metrics = metrics
        self._record_refusal = record_refusal
        self._mutual_tls = mutual_tls
        # PEM of a client certificate -> its x5t#S256 thumbprint; a connection presents the
        # same certificate on every call.
        self._thumbprints: dict[bytes, str] = {}
        # method -> (the service's handler, its authenticating wrapper). A wrapper reads the
        # token from its own call's context, so one per method serves every call.
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._authenticating(handler, method)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _authenticating(self, handler: Handler, method: str) -> Handler:
        # "/ketenpoort.v1.ExchangeService/RequestDisclosure" -> "ExchangeService/RequestDisclosure"
        operation = method.lstrip("/").rsplit(".", 1)[-1]
        if handler.unary_unary is not None:
            return self._unary(handler, operation)
        if handler.unary_stream is not None and inspect.isasyncgenfunction(handler.unary_stream):
            return self._server_stream(handler, operation)
        log.error(
            "%s is neither unary nor an async-generator server stream; its calls are refused",
            method,
        )
        return self._refusing(handler)

    def _unary(self, handler: Handler, operation: str) -> Handler:
        inner = handler.unary_unary
        if inner is None:
            raise ValueError("not a unary-unary handler")
        authenticate = self._authenticate

        async def authenticated(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            token = request_context.bind(await authenticate(context, operation))
            try:
                # grpc-stubs types handler behaviours with the sync context; aio passes its own.
                return await inner(request, context)  # type: ignore[arg-type]
            finally:
                request_context.unbind(token)

        return grpc.unary_unary_rpc_method_handler(
            authenticated,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _server_stream(self, handler: Handler, operation: str) -> Handler:
        inner = handler.unary_stream
        if inner is None:
            raise ValueError("not a unary-stream handler")
        authenticate = self._authenticate

        async def authenticated(
            request: Any, context: aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            token = request_context.bind(await authenticate(context, operation))
            try:
                responses: AsyncIterator[Any] = inner(request, context)  # type: ignore[arg-type,assignment]
                async for response in responses:
                    yield response
            finally:
                _unbind_stream(token)

        return grpc.unary_stream_rpc_method_handler(
            authenticated,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _refusing(self, handler: Handler) -> Handler:
        metrics = self._metrics

        async def refuse(_request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            metrics.auth_failure(RefusalReason.CALL_KIND_NOT_SERVED.value)
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "the gateway serves unary calls and async server streams only",
            )

        if handler.unary_stream is not None:
            make = grpc.unary_stream_rpc_method_handler
        elif handler.stream_unary is not None:
            make = grpc.stream_unary_rpc_method_handler
        else:
            make = grpc.stream_stream_rpc_method_handler
        return make(
            refuse,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _authenticate(
        self, context: aio.ServicerContext[Any, Any], operation: str
    ) -> request_context.RequestContext:
        """The caller and trace of this call; records and aborts a call that does not hold."""
        auth: object = ""
        traceparent: object = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                auth = value
            elif key == "traceparent":
                traceparent = value
        trace = TraceContext.from_traceparent(
            traceparent if isinstance(traceparent, str) else None, operation
        )
        try:
            certificate = self._peer_thumbprint(context)
            if not isinstance(auth, str) or not auth.startswith("Bearer "):
                raise AuthRefused(RefusalReason.MISSING_TOKEN, "missing bearer token",
                                  certificate=certificate or "")
            verified = self._verifier.verify(auth[len("Bearer ") :].strip(), certificate)
            await self._admission.admit(verified)
        except AuthRefused as refused:
            self._metrics.auth_failure(refused.reason.value)
            await self._record(refused, trace)
            await context.abort(refused.reason.status, refused.message)
            raise  # abort raises; this keeps type checkers from assuming a fall-through
        return request_context.RequestContext(verified.principal, trace)

    async def _record(self, refused: AuthRefused, trace: TraceContext) -> None:
        try:
            await self._record_refusal(refused, trace)
        except Exception:
            # The refusal stands either way; a call is never admitted because logging failed.
            log.exception("could not record a refused call")

    def _peer_thumbprint(self, context: aio.ServicerContext[Any, Any]) -> str | None:
        """The RFC 8705 thumbprint of the client certificate, or None without mutual TLS."""
        if not self._mutual_tls:
            return None
        pem = next(iter(context.auth_context().get("x509_pem_cert") or ()), None)
        if pem is None:
            raise AuthRefused(RefusalReason.NO_CERTIFICATE, "a client certificate is required")
        thumbprint = self._thumbprints.get(pem)
        if thumbprint is None:
            thumbprint = pem_certificate_thumbprint(pem)
            if len(self._thumbprints) >= _MAX_CACHED_CERTIFICATES:
                self._thumbprints.clear()
            self._thumbprints[pem] = thumbprint
        return thumbprint


def _unbind_stream(token: contextvars.Token[request_context.RequestContext]) -> None:
    try:
        request_context.unbind(token)
    except ValueError:
        # A stream abandoned mid-way is closed later by the event loop's generator finalizer,
        # in another context, where the caller was never bound.
        pass
