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
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc import aio

from gateway.broker.caller import TraceContext
from gateway.server import request_context
from gateway.server.auth import AuthRefused, RefusalReason, TokenVerifier
from gateway.server.handlers import (
    OPEN_PREFIXES,
    Continuation,
    Handler,
    PeerThumbprints,
    ServerInterceptor,
    WrappedHandlers,
    operation_name,
    served_as,
)
from gateway.server.log_windows import LineWindow
from gateway.server.metrics import Metrics
from gateway.server.request_log import call_trace, note_partner
from gateway.server.token_replay import TokenAdmission
from gateway.store.errors import DATABASE_UNAVAILABLE, database_unavailable

__all__ = ["OPEN_PREFIXES", "AuthInterceptor", "RefusalRecorder"]

log = logging.getLogger("ketenpoort.server")

class UnrecordedRefusals:
    """Counts refusals whose log record could not be written because the database was away,
    and says so in the server log at most once per window (a flood of refused calls while the
    database is down must not write a traceback per call)."""

    def __init__(self, lines: LineWindow | None = None) -> None:
        self._lines = lines or LineWindow()

    def note(self) -> None:
        due = self._lines.count()
        if due is None:
            return
        log.warning(
            "%d refused call(s) answered UNAVAILABLE: the database was away and their log "
            "records could not be written; next report in %.0f s at the earliest",
            due,
            self._lines.window_s,
        )


# Writes the accountability record of a refused call; awaited before the call is answered.
RefusalRecorder = Callable[[AuthRefused, TraceContext], Awaitable[None]]


class AuthInterceptor(ServerInterceptor):
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
        self._unrecorded = UnrecordedRefusals()
        self._mutual_tls = mutual_tls
        self._thumbprints = PeerThumbprints()
        # A wrapper reads the token from its own call's context: one per method serves all.
        self._wrapped = WrappedHandlers(self._authenticating)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        return self._wrapped.of(handler, method)

    def _authenticating(self, handler: Handler, method: str) -> Handler:
        operation = operation_name(method)
        if handler.unary_unary is not None:
            return self._unary(handler, operation)
        if handler.unary_stream is not None and inspect.isasyncgenfunction(handler.unary_stream):
            return self._server_stream(handler, operation)
        log.error(
            "%s is neither unary nor an async-generator server stream; its calls are refused",
            method,
        )
        return self._refusing(handler, operation)

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

        return served_as(grpc.unary_unary_rpc_method_handler, authenticated, handler)

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

        return served_as(grpc.unary_stream_rpc_method_handler, authenticated, handler)

    def _refusing(self, handler: Handler, operation: str) -> Handler:
        metrics = self._metrics
        label = method_label(operation)

        async def refuse(_request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            metrics.auth_failure(RefusalReason.CALL_KIND_NOT_SERVED.value)
            # Counted with the other calls, as every call refused before a servicer ran.
            metrics.request_done(label, grpc.StatusCode.UNIMPLEMENTED.name, 0.0)
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
        return served_as(make, refuse, handler)

    async def _authenticate(
        self, context: aio.ServicerContext[Any, Any], operation: str
    ) -> request_context.RequestContext:
        """The caller and trace of this call; records and aborts a call that does not hold."""
        start = time.perf_counter()
        auth: object = ""
        traceparent: object = None
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                auth = value
            elif key == "traceparent":
                traceparent = value
        # The one trace context of this call: the request line's and the server span's.
        trace = call_trace(traceparent if isinstance(traceparent, str) else None, operation)
        try:
            certificate = self._peer_thumbprint(context)
            if not isinstance(auth, str) or not auth.startswith("Bearer "):
                raise AuthRefused(RefusalReason.MISSING_TOKEN, "missing bearer token",
                                  certificate=certificate or "")
            verified = self._verifier.verify(auth[len("Bearer ") :].strip(), certificate)
            await self._admission.admit(verified)
            note_partner(verified.principal.partner_id)
        except AuthRefused as refused:
            self._metrics.auth_failure(refused.reason.value)
            recorded = await self._record(refused, trace)
            # No refusal leaves without its record: without one the caller is told to retry.
            status = refused.reason.status if recorded else grpc.StatusCode.UNAVAILABLE
            # Counted with the calls the servicers answer (ketenpoort_requests_total and the
            # latency), so that error-rate alerts and dashboards see refused calls too.
            self._metrics.request_done(
                method_label(operation), status.name, time.perf_counter() - start
            )
            await context.abort(
                status, refused.message if recorded else DATABASE_UNAVAILABLE
            )
            raise  # abort raises; this keeps type checkers from assuming a fall-through
        return request_context.RequestContext(verified.principal, trace)

    async def _record(self, refused: AuthRefused, trace: TraceContext) -> bool:
        """Write the refusal's log record; False when it could not be written. A call is
        never admitted because logging failed."""
        try:
            await self._record_refusal(refused, trace)
        except Exception as exc:
            if database_unavailable(exc):
                self._metrics.database_unavailable_call()
                self._unrecorded.note()
            else:
                log.exception("could not record a refused call")
            return False
        return True

    def _peer_thumbprint(self, context: aio.ServicerContext[Any, Any]) -> str | None:
        """The RFC 8705 thumbprint of the client certificate, or None without mutual TLS."""
        if not self._mutual_tls:
            return None
        thumbprint = self._thumbprints.of(context)
        if thumbprint is None:
            raise AuthRefused(RefusalReason.NO_CERTIFICATE, "a client certificate is required")
        return thumbprint


def method_label(operation: str) -> str:
    """The method label of ketenpoort_requests_total, as the servicers give it:
    "ExchangeService/RequestDisclosure" -> "RequestDisclosure"."""
    return operation.rsplit("/", 1)[-1]


def _unbind_stream(token: contextvars.Token[request_context.RequestContext]) -> None:
    try:
        request_context.unbind(token)
    except ValueError:
        # A stream abandoned mid-way is closed later by the event loop's generator finalizer,
        # in another context, where the caller was never bound.
        pass
