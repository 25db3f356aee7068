"""Call limits at the edge: a call over its partner's limit is turned away before any work.

This interceptor sits in front of authentication. It names the caller from the client
certificate of the connection (a dictionary lookup once the certificate's thumbprint is
known), asks the limiter (``gateway.server.limits``) and answers a call over the limit
RESOURCE_EXHAUSTED, with the trailing metadata ``retry-after-ms`` (milliseconds until a call of
this caller would be admitted) and ``ketenpoort-reason`` (``rate_limited`` or
``concurrency_limited``). Such a call is counted, not logged on its own: the gateway writes one
record per caller and window (``gateway.server.limit_report``). The token is not looked at,
and no handler runs.

To be asked before the request message is read, every unary call is served as a
client-streaming one and every server-streaming call as a bidirectional one (the same on the
wire): the handler starts when the call does, sees the client certificate, and reads the one
request message itself, within ``request_timeout_s``. A stream that never sends its request
therefore holds a place in its caller's limit (and in the server's ``max_concurrent_rpcs``)
for at most that long, and is then closed (DEADLINE_EXCEEDED). Health checks and reflection
are not limited per caller (orchestrators probe them without a partner), but their first
message must arrive in time too.

Without client certificates (``tls_mode`` tls or insecure, loopback tests) the caller is the
token's claimed issuer, unverified: the limit then works per partner only among honest callers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc

from gateway.server.auth import MAX_TOKEN_BYTES
from gateway.server.handlers import (
    OPEN_PREFIXES,
    Context,
    Continuation,
    Handler,
    PeerThumbprints,
    ServerInterceptor,
    WrappedHandlers,
    operation_name,
    served_as,
)
from gateway.server.limits import UNKNOWN_CALLER, CallLimiter, Limited, LimitedCalls, LimitReason
from gateway.server.metrics import Metrics

__all__ = ["CallerKeys", "LimitInterceptor"]

_REASONS = {
    LimitReason.RATE: "rate_limited",
    LimitReason.CONCURRENCY: "concurrency_limited",
}


class CallerKeys:
    """The limit a call counts against: the partner its client certificate is registered to
    (``by_certificate``, thumbprint -> partner id, the registry in force), else
    ``UNKNOWN_CALLER``. Without mutual TLS, the token's claimed issuer if it is a partner in
    ``partners``."""

    def __init__(
        self,
        by_certificate: Callable[[], Mapping[str, str]],
        partners: Callable[[], Mapping[str, object]],
        *,
        mutual_tls: bool,
    ) -> None:
        self._by_certificate = by_certificate
        self._partners = partners
        self._mutual_tls = mutual_tls
        self._thumbprints = PeerThumbprints()

    def of(self, context: Context) -> str:
        if not self._mutual_tls:
            return self._claimed_issuer(context)
        thumbprint = self._thumbprints.of(context)
        if thumbprint is None:
            return UNKNOWN_CALLER
        return self._by_certificate().get(thumbprint, UNKNOWN_CALLER)

    def _claimed_issuer(self, context: Context) -> str:
        for key, value in context.invocation_metadata() or ():
            if key == "authorization" and isinstance(value, str):
                issuer = _unverified_issuer(value)
                return issuer if issuer in self._partners() else UNKNOWN_CALLER
        return UNKNOWN_CALLER


def _unverified_issuer(authorization: str) -> str:
    if not authorization.startswith("Bearer ") or len(authorization) > MAX_TOKEN_BYTES + 7:
        return ""
    parts = authorization[len("Bearer ") :].strip().split(".")
    if len(parts) != 3 or not parts[1].isascii():
        return ""
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, RecursionError):
        # RecursionError: a payload of thousands of nested brackets fits in a token's size.
        return ""
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else ""


class LimitInterceptor(ServerInterceptor):
    def __init__(
        self,
        limiter: CallLimiter,
        limited: LimitedCalls,
        callers: CallerKeys,
        metrics: Metrics,
        *,
        request_timeout_s: float,
    ) -> None:
        self._limiter = limiter
        self._limited = limited
        self._callers = callers
        self._metrics = metrics
        self._request_timeout_s = request_timeout_s
        self._wrapped = WrappedHandlers(self._wrap)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return self._wrapped.of(handler, handler_call_details.method)

    def _wrap(self, handler: Handler, method: str) -> Handler:
        operation = operation_name(method)
        # Health and reflection answer without a partner (orchestrators probe them): they
        # are not limited per caller, but their first message must come in time as well.
        limited = not method.startswith(OPEN_PREFIXES)
        if handler.unary_unary is not None:
            return self._unary(handler, operation, limited)
        if handler.unary_stream is not None:
            return self._server_stream(handler, operation, limited)
        if handler.stream_stream is not None and not limited:
            return self._bidi_stream(handler)
        # Any other kind of partner call is refused by authentication, without work or record.
        return handler

    def _unary(self, handler: Handler, operation: str, limited: bool) -> Handler:
        inner = handler.unary_unary
        assert inner is not None
        place, first_request = self._place if limited else _unlimited, self._first_request

        async def served(requests: AsyncIterator[Any], context: Context) -> Any:
            async with place(context, operation):
                request = await first_request(requests, context)
                return await inner(request, context)  # type: ignore[arg-type]

        return served_as(grpc.stream_unary_rpc_method_handler, served, handler)

    def _server_stream(self, handler: Handler, operation: str, limited: bool) -> Handler:
        inner: Any = handler.unary_stream
        assert inner is not None
        place, first_request = self._place if limited else _unlimited, self._first_request

        if not inspect.isasyncgenfunction(inner):
            # A handler that writes with context.write (health Watch) and returns None.
            async def written(requests: AsyncIterator[Any], context: Context) -> None:
                async with place(context, operation):
                    await inner(await first_request(requests, context), context)

            return served_as(grpc.stream_stream_rpc_method_handler, written, handler)

        async def streamed(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
            async with place(context, operation):
                request = await first_request(requests, context)
                async for response in inner(request, context):
                    yield response

        return served_as(grpc.stream_stream_rpc_method_handler, streamed, handler)

    def _bidi_stream(self, handler: Handler) -> Handler:
        """Reflection: its first request must come in time; it may then stay open."""
        inner: Any = handler.stream_stream
        if not inspect.isasyncgenfunction(inner):
            return handler
        first_request = self._first_request

        async def streamed(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
            async def in_time() -> AsyncIterator[Any]:
                yield await first_request(requests, context)
                async for request in requests:
                    yield request

            async for response in inner(in_time(), context):
                yield response

        return served_as(grpc.stream_stream_rpc_method_handler, streamed, handler)

    @contextlib.asynccontextmanager
    async def _place(self, context: Context, operation: str) -> AsyncIterator[None]:
        """The call's place in its caller's limit: taken when the call starts (a call over the
        limit is counted and aborted there), given back when it ends, however it ends."""
        caller = await self._admit(context, operation)
        try:
            yield
        finally:
            self._limiter.release(caller)

    async def _admit(self, context: Context, operation: str) -> str:
        """The caller's key once admitted (release it when the call ends); a call over the
        limit is counted and aborted."""
        caller = self._callers.of(context)
        refused = self._limiter.admit(caller)
        if refused is None:
            return caller
        await self._turn_away(context, caller, operation, refused)
        raise AssertionError("abort raises")  # pragma: no cover

    async def _turn_away(
        self, context: Context, caller: str, operation: str, refused: Limited
    ) -> None:
        self._limited.count(caller, operation, refused.reason)
        self._metrics.limited_call(caller, refused.reason.value)
        retry_ms = max(1, int(refused.retry_after_s * 1000 + 0.999))
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"call limit reached ({refused.reason.value}); retry after {retry_ms} ms",
            trailing_metadata=(
                ("retry-after-ms", str(retry_ms)),
                ("ketenpoort-reason", _REASONS[refused.reason]),
            ),
        )

    async def _first_request(self, requests: AsyncIterator[Any], context: Context) -> Any:
        """The call's one request message, once it has arrived in time."""
        try:
            async with asyncio.timeout(self._request_timeout_s):
                return await anext(requests)
        except TimeoutError:
            self._metrics.request_timeout()
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no request message within {self._request_timeout_s:g} s",
            )
        except StopAsyncIteration:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "the call carried no request message"
            )
        raise AssertionError("abort raises")  # pragma: no cover


_NO_PLACE: contextlib.nullcontext[None] = contextlib.nullcontext()


def _unlimited(_context: Context, _operation: str) -> contextlib.nullcontext[None]:
    """Health and reflection: no place in any caller's limit."""
    return _NO_PLACE
