"""Authentication interceptor: no servicer sees an unauthenticated call.

The interceptor wraps each unary handler so that the token is verified inside the handler's
own task; the principal and trace context then travel in a contextvar. Health checks and
reflection stay open, as orchestrators and tooling call them without a partner token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from gateway.broker.caller import TraceContext
from gateway.server import request_context
from gateway.server.auth import AuthError, RoleNotAllowed, TokenVerifier
from gateway.server.metrics import Metrics

OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")

if TYPE_CHECKING:  # grpc's classes are generic only in the type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
    _Interceptor = aio.ServerInterceptor[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
    _Interceptor = aio.ServerInterceptor
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler]]


class AuthInterceptor(_Interceptor):
    def __init__(self, verifier: TokenVerifier, metrics: Metrics) -> None:
        self._verifier = verifier
        self._metrics = metrics
        # method -> (the service's handler, its authenticating wrapper). A wrapper reads the
        # token from its own call's context, so one per method serves every call.
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(OPEN_PREFIXES) or handler.unary_unary is None:
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
        inner = handler.unary_unary
        if inner is None:
            raise ValueError("only unary-unary handlers are wrapped")
        verifier, metrics = self._verifier, self._metrics

        async def authenticated(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
            auth: object = ""
            traceparent: object = None
            for key, value in context.invocation_metadata() or ():
                if key == "authorization":
                    auth = value
                elif key == "traceparent":
                    traceparent = value
            if not isinstance(auth, str) or not auth.startswith("Bearer "):
                metrics.auth_failure("missing_token")
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
            try:
                principal = verifier.verify(str(auth)[len("Bearer ") :].strip())
            except AuthError as exc:
                metrics.auth_failure("invalid_token")
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            except RoleNotAllowed as exc:
                metrics.auth_failure("role_not_allowed")
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
            trace = TraceContext.from_traceparent(
                traceparent if isinstance(traceparent, str) else None, operation
            )
            token = request_context.bind(request_context.RequestContext(principal, trace))
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
