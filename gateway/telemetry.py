"""Trace spans of the gateway, at no cost while tracing is off.

The code on the disclosure path marks its steps with ``span("policy.decide")`` and the like.
Until ``gateway.server.tracing_setup`` installs a tracer (``[tracing] otlp_endpoint`` is set),
every span is one shared do-nothing context manager: no OpenTelemetry import, no allocation
per call. OpenTelemetry is an optional extra (``ketenpoort[otel]``) and is imported only by the
setup module.

Attributes name organisations, operations, counts and outcomes only: never a person, a
field value, a case's content or a token (docs/operations/logs-and-traces.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, ParamSpec, Protocol, TypeVar

if TYPE_CHECKING:
    from gateway.broker.caller import TraceContext

__all__ = [
    "Attributes",
    "Tracing",
    "annotate",
    "enabled",
    "install",
    "server_span",
    "span",
    "traced",
    "traced_call",
]

Attributes = Mapping[str, str | int | float | bool]
T = TypeVar("T")
P = ParamSpec("P")


class ServerSpan(Protocol):
    """The span of one RPC as the server sees it: ends with the call's status code."""

    def __enter__(self) -> ServerSpan: ...

    def __exit__(self, *exc: object) -> None: ...

    def set_status_code(self, code: str) -> None: ...


class Tracing(Protocol):
    def span(self, name: str, attributes: Attributes | None) -> AbstractContextManager[object]:
        ...

    def server_span(
        self, name: str, trace: TraceContext, sampled: bool | None, attributes: Attributes
    ) -> ServerSpan: ...

    def annotate(self, key: str, value: str | int | float | bool) -> None: ...


class _NoServerSpan:
    def __enter__(self) -> _NoServerSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set_status_code(self, code: str) -> None:
        return None


_NOTHING: AbstractContextManager[object] = nullcontext()
_NO_SERVER_SPAN = _NoServerSpan()
_tracing: Tracing | None = None


def install(tracing: Tracing | None) -> None:
    """Start (or, with None, stop) recording spans in this process."""
    global _tracing
    _tracing = tracing


def enabled() -> bool:
    return _tracing is not None


def span(name: str, attributes: Attributes | None = None) -> AbstractContextManager[object]:
    """A child span of the current one, for one step of the work (do nothing when off)."""
    if _tracing is None:
        return _NOTHING
    return _tracing.span(name, attributes)


async def traced(
    name: str, step: Awaitable[T], attributes: Attributes | None = None
) -> T:
    """Await ``step`` (a coroutine not yet started) in a span of its own."""
    if _tracing is None:
        return await step
    with _tracing.span(name, attributes):
        return await step


def traced_call(name: str, step: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call ``step`` in a span of its own."""
    if _tracing is None:
        return step(*args, **kwargs)
    with _tracing.span(name, None):
        return step(*args, **kwargs)


def annotate(key: str, value: str | int | float | bool) -> None:
    """Add an attribute to the current span (an outcome known only at its end)."""
    if _tracing is not None:
        _tracing.annotate(key, value)


def server_span(
    name: str, trace: TraceContext, sampled: bool | None, attributes: Attributes
) -> ServerSpan:
    """The server span of one call: under the caller's span when it sent a ``traceparent``
    (``sampled`` is its flag), with ``trace``'s trace and span id, so the accountability
    log's records and the trace name the same span."""
    if _tracing is None:
        return _NO_SERVER_SPAN
    return _tracing.server_span(name, trace, sampled, attributes)
