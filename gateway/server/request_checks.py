"""Request parsing and string checks at the edge, for every unary and server-streaming RPC.

grpc.aio runs a method's request deserializer before any handler or interceptor code: an
exception there ends the call as UNKNOWN with the exception's text, and grpc logs a
traceback per call. So this interceptor registers each method without a deserializer (the
handler receives the raw bytes) and parses inside the handler, where the call can be
answered properly:

- bytes that do not parse as the method's request type (garbage, invalid UTF-8 in a string,
  another message type's wire format, nesting beyond protobuf's recursion limit) are
  INVALID_ARGUMENT with one fixed message per method, never the parser's text. They are
  counted in ``ketenpoort_malformed_requests_total{method}`` and reported in the server log
  at most once per ``window_s`` with the count since the last line, never a traceback per
  call;
- a parsed request whose strings break the rules of ``gateway.broker.text_checks`` (length,
  NUL and control characters) is INVALID_ARGUMENT naming the field, never its value.

Put it after the authentication interceptor: the caller is authenticated (and a refused
call recorded) before its request is parsed.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter

from gateway.broker.errors import InvalidRequest
from gateway.broker.text_checks import check_strings
from gateway.server.handlers import (
    OPEN_PREFIXES,
    Context,
    Continuation,
    Handler,
    ServerInterceptor,
    WrappedHandlers,
    operation_name,
)
from gateway.server.log_windows import DEFAULT_WINDOW_S, LineWindow

__all__ = ["DEFAULT_WINDOW_S", "MalformedRequestLog", "RequestChecks", "malformed_message"]

log = logging.getLogger("ketenpoort.server")

def malformed_message(operation: str) -> str:
    """The one answer to bytes that are not the method's request: names the method only."""
    return f"the request is not a valid {operation} request message"


class MalformedRequestLog:
    """Counts malformed requests and says so in the server log at most once per window."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counter = Counter(
            "ketenpoort_malformed_requests_total",
            "Requests whose bytes did not parse as the method's request message, by method",
            ["method"],
            registry=registry,
        )
        self._lines = LineWindow(window_s, clock)

    def note(self, operation: str) -> None:
        self.counter.labels(operation).inc()
        due = self._lines.count()
        if due is None:
            return
        log.warning(
            "%d malformed request(s) answered INVALID_ARGUMENT since the last report "
            "(latest: %s); next report in %.0f s at the earliest",
            due,
            operation,
            self._lines.window_s,
        )


class RequestChecks(ServerInterceptor):
    def __init__(self, malformed: MalformedRequestLog) -> None:
        self._malformed = malformed
        self._wrapped = WrappedHandlers(self._parsing)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        # Health and reflection are served by grpc's own servicers, which parse their own
        # small requests.
        if (
            handler is None
            or method.startswith(OPEN_PREFIXES)
            or handler.request_deserializer is None
        ):
            return handler
        return self._wrapped.of(handler, method)

    def _parsing(self, handler: Handler, method: str) -> Handler:
        operation = operation_name(method)
        parse = self._parser(handler.request_deserializer, operation)
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            async def unary_behavior(raw: bytes, context: Context) -> Any:
                request = await parse(raw, context)
                return await unary(request, context)  # type: ignore[arg-type]

            return grpc.unary_unary_rpc_method_handler(
                unary_behavior, response_serializer=handler.response_serializer
            )
        stream = handler.unary_stream
        if stream is not None and inspect.isasyncgenfunction(stream):

            async def stream_behavior(raw: bytes, context: Context) -> AsyncIterator[Any]:
                request = await parse(raw, context)
                responses: AsyncIterator[Any] = stream(request, context)  # type: ignore[arg-type]
                async for response in responses:
                    yield response

            return grpc.unary_stream_rpc_method_handler(
                stream_behavior, response_serializer=handler.response_serializer
            )
        # Other kinds are refused by the authentication interceptor; leave them as they are.
        return handler

    def _parser(
        self, deserialize: Callable[[bytes], Any] | None, operation: str
    ) -> Callable[[bytes, Context], Awaitable[Any]]:
        assert deserialize is not None
        malformed = self._malformed
        fixed = malformed_message(operation)

        async def parse(raw: bytes, context: Context) -> Any:
            try:
                request = deserialize(raw)
            except Exception:
                # The parser's message may quote the request's bytes: never passed on.
                malformed.note(operation)
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, fixed)
                raise AssertionError("unreachable: abort raises") from None
            try:
                check_strings(request)
            except InvalidRequest as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            return request

        return parse
