"""Request-scoped values (caller, trace) carried in a contextvar for the servicers."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from gateway.broker.caller import Principal, TraceContext


@dataclass(frozen=True)
class RequestContext:
    principal: Principal
    trace: TraceContext


_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar("ketenpoort_request")


def current() -> RequestContext:
    """The authenticated request being served; only set inside an authenticated handler."""
    return _current.get()


def bind(ctx: RequestContext) -> contextvars.Token[RequestContext]:
    return _current.set(ctx)


def unbind(token: contextvars.Token[RequestContext]) -> None:
    _current.reset(token)
