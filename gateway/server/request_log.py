"""One line per call in the server log, and the call's server span.

The outermost interceptor: it sees every partner call, including those the call limits or
authentication turn away, and writes when the call ends one INFO line on the logger
``ketenpoort.request`` with

    rpc          "ExchangeService/RequestDisclosure"
    partner      the authenticated partner id ("" when the call was refused before that)
    status       the gRPC status code name ("OK", "PERMISSION_DENIED", ...)
    duration_ms  from the call's start to its answer (for a stream: to its end)
    trace_id     the W3C trace id: the caller's from its ``traceparent``, else a new one
    span_id      the gateway's span of this call (also in the call's log records)

and nothing of the request or answer: no field, value, identity, justification or token.

The call's trace context is made here once; authentication takes it from here
(``call_trace``), so the request line, the accountability log's records and the trace all
carry the same trace and span id. Health checks and reflection are not logged (probes).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio

from gateway import telemetry
from gateway.broker.caller import TraceContext
from gateway.server.handlers import (
    OPEN_PREFIXES,
    Continuation,
    Handler,
    ServerInterceptor,
    WrappedHandlers,
    operation_name,
    served_as,
)

__all__ = ["RequestLogInterceptor", "call_trace", "note_partner"]

log = logging.getLogger("ketenpoort.request")

_FLAGS = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-([0-9a-f]{2})$")


@dataclass
class CallNote:
    """What the request line says about the call in progress."""

    trace: TraceContext
    partner_id: str = ""


_note: contextvars.ContextVar[CallNote | None] = contextvars.ContextVar(
    "ketenpoort_call_note", default=None
)


def call_trace(traceparent: str | None, operation: str) -> TraceContext:
    """The trace context of the call being served: the one the request line and server span
    use, or (outside this interceptor) a fresh one from ``traceparent``."""
    note = _note.get()
    if note is not None:
        return note.trace
    return TraceContext.from_traceparent(traceparent, operation)


def note_partner(partner_id: str) -> None:
    """Authentication names the caller for the request line."""
    note = _note.get()
    if note is not None:
        note.partner_id = partner_id


def _traceparent(context: aio.ServicerContext[Any, Any]) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "traceparent" and isinstance(value, str):
            return value
    return None


def _sampled(traceparent: str | None, trace: TraceContext) -> bool | None:
    """The caller's sampled flag, when its traceparent was taken; None without one."""
    if not trace.parent_span_id or traceparent is None:
        return None
    match = _FLAGS.match(traceparent.strip().lower())
    return bool(int(match.group(1), 16) & 1) if match else None


class _Call:
    """One call's note, server span and request line."""

    def __init__(self, context: aio.ServicerContext[Any, Any], operation: str) -> None:
        header = _traceparent(context)
        self.note = CallNote(TraceContext.from_traceparent(header, operation))
        self._context = context
        self._operation = operation
        self._token = _note.set(self.note)
        self._start = time.perf_counter()
        service, _, method = operation.partition("/")
        self.span = telemetry.server_span(
            operation,
            self.note.trace,
            _sampled(header, self.note.trace),
            {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method},
        )
        self.code = grpc.StatusCode.OK

    def failed(self, exc: BaseException) -> None:
        if isinstance(exc, aio.AbortError):
            self.code = self._context.code() or grpc.StatusCode.UNKNOWN
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
            self.code = grpc.StatusCode.CANCELLED
        else:
            self.code = grpc.StatusCode.UNKNOWN

    def end(self) -> None:
        if self.code is grpc.StatusCode.OK:
            # A handler may set a status without raising.
            set_code = self._context.code()
            if isinstance(set_code, grpc.StatusCode):
                self.code = set_code
        self.span.set_status_code(self.code.name)
        log.info(
            "call",
            extra={
                "rpc": self._operation,
                "partner": self.note.partner_id,
                "status": self.code.name,
                "duration_ms": round((time.perf_counter() - self._start) * 1000, 1),
                "trace_id": self.note.trace.trace_id,
                "span_id": self.note.trace.span_id,
            },
        )
        _note.reset(self._token)


class RequestLogInterceptor(ServerInterceptor):
    def __init__(self) -> None:
        self._wrapped = WrappedHandlers(self._logging)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        return self._wrapped.of(handler, method)

    def _logging(self, handler: Handler, method: str) -> Handler:
        # The call limits in front of authentication serve unary calls as client-streaming
        # and server streams as bidirectional ones (limit_interceptor): all four are wrapped.
        operation = operation_name(method)
        for behavior, make in (
            (handler.unary_unary, grpc.unary_unary_rpc_method_handler),
            (handler.stream_unary, grpc.stream_unary_rpc_method_handler),
        ):
            if behavior is not None and inspect.iscoroutinefunction(behavior):
                return served_as(make, self._unary(behavior, operation), handler)
        for behavior, make in (
            (handler.unary_stream, grpc.unary_stream_rpc_method_handler),
            (handler.stream_stream, grpc.stream_stream_rpc_method_handler),
        ):
            if behavior is not None and inspect.isasyncgenfunction(behavior):
                return served_as(make, self._server_stream(behavior, operation), handler)
        # Anything else is refused by authentication, unlogged here.
        return handler

    @staticmethod
    def _unary(inner: Any, operation: str) -> Any:
        async def logged(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            call = _Call(context, operation)
            # The span ends after the request line: it carries the call's status code.
            with call.span:
                try:
                    return await inner(request, context)
                except BaseException as exc:
                    call.failed(exc)
                    raise
                finally:
                    call.end()

        return logged

    @staticmethod
    def _server_stream(inner: Any, operation: str) -> Any:
        async def logged(
            request: Any, context: aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            call = _Call(context, operation)
            with call.span:
                try:
                    async for response in inner(request, context):
                        yield response
                except BaseException as exc:
                    call.failed(exc)
                    raise
                finally:
                    try:
                        call.end()
                    except ValueError:
                        # A stream abandoned mid-way is finalised in another context.
                        pass

        return logged
