"""OpenTelemetry traces of the gateway, exported by OTLP when ``[tracing] otlp_endpoint`` is set.

Off by default: then nothing of OpenTelemetry is imported or set up and ``gateway.telemetry``'s
spans cost nothing. On, the SDK is imported here (``pip install 'ketenpoort[otel]'``) and
the gateway's spans go to the collector in batches, off the request path.

The server span of a call has the trace id and span id of the call's ``TraceContext`` (the
ones its accountability records carry): an id generator hands the SDK those ids when the span
is started, and a caller's ``traceparent`` is its parent.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway import telemetry

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    from gateway.broker.caller import TraceContext

__all__ = ["TracingSettings", "TracingUnavailable", "settings_from_mapping", "start_tracing"]

DEFAULT_SERVICE_NAME = "ketenpoort-gateway"
_KEYS = frozenset({"otlp_endpoint", "service_name", "sample_ratio"})


class TracingUnavailable(RuntimeError):
    """Tracing is configured but OpenTelemetry is not installed."""


@dataclass(frozen=True)
class TracingSettings:
    # host:port or http(s)://host:port of an OTLP/gRPC collector; "" switches tracing off.
    # An http:// endpoint is spoken to without TLS.
    otlp_endpoint: str = ""
    service_name: str = DEFAULT_SERVICE_NAME
    # The share of traces started here (without a caller's traceparent) that are recorded;
    # a caller's sampled flag decides for its own traces.
    sample_ratio: float = 1.0

    @property
    def enabled(self) -> bool:
        return bool(self.otlp_endpoint)


def settings_from_mapping(raw: object) -> TracingSettings:
    """The ``[tracing]`` table. Raises ValueError with a one-line reason."""
    if not isinstance(raw, Mapping):
        raise ValueError("[tracing] must be a table")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) in [tracing]: {', '.join(unknown)}")
    endpoint = raw.get("otlp_endpoint", "")
    if not isinstance(endpoint, str):
        raise ValueError(f"[tracing] otlp_endpoint must be a string (got {endpoint!r})")
    name = raw.get("service_name", DEFAULT_SERVICE_NAME)
    if not isinstance(name, str) or not name:
        raise ValueError(f"[tracing] service_name must be a non-empty string (got {name!r})")
    ratio = raw.get("sample_ratio", 1.0)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
        raise ValueError(f"[tracing] sample_ratio must be a number from 0 to 1 (got {ratio!r})")
    return TracingSettings(endpoint, name, float(ratio))


# The ids the next span started in this context takes (trace id, span id), set just around
# starting a call's server span.
_wanted: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "ketenpoort_wanted_span_ids", default=None
)


class _OtelServerSpan:
    def __init__(self, tracing: _OtelTracing, name: str, trace: TraceContext,
                 sampled: bool | None, attributes: telemetry.Attributes) -> None:
        self._tracing = tracing
        self._name = name
        self._trace = trace
        self._sampled = sampled
        self._attributes = attributes
        self._manager: AbstractContextManager[Any] | None = None
        self._span: Any = None

    def __enter__(self) -> _OtelServerSpan:
        from opentelemetry import trace as api
        from opentelemetry.trace import (
            NonRecordingSpan,
            SpanContext,
            SpanKind,
            TraceFlags,
        )

        trace_id = int(self._trace.trace_id, 16)
        parent = None
        if self._trace.parent_span_id:
            flags = TraceFlags.SAMPLED if self._sampled is not False else TraceFlags.DEFAULT
            remote = SpanContext(trace_id, int(self._trace.parent_span_id, 16), True,
                                 TraceFlags(flags))
            parent = api.set_span_in_context(NonRecordingSpan(remote))
        token = _wanted.set((trace_id, int(self._trace.span_id, 16)))
        try:
            self._manager = self._tracing.tracer.start_as_current_span(
                self._name, context=parent, kind=SpanKind.SERVER,
                attributes=dict(self._attributes), record_exception=False,
                set_status_on_exception=False,
            )
            self._span = self._manager.__enter__()
        finally:
            _wanted.reset(token)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._manager is not None:
            # Exceptions are not recorded: their text may carry request content.
            self._manager.__exit__(None, None, None)

    def set_status_code(self, code: str) -> None:
        if self._span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attribute("rpc.grpc.status_code", code)
        if code != "OK":
            self._span.set_status(Status(StatusCode.ERROR, code))


class _OtelTracing:
    """gateway.telemetry.Tracing on an OpenTelemetry tracer provider."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("ketenpoort.gateway")

    @contextmanager
    def _span(self, name: str, attributes: telemetry.Attributes | None) -> Iterator[object]:
        with self.tracer.start_as_current_span(
            name, attributes=dict(attributes or {}), record_exception=False
        ) as span:
            yield span

    def span(self, name: str, attributes: telemetry.Attributes | None) -> (
        AbstractContextManager[object]
    ):
        return self._span(name, attributes)

    def server_span(self, name: str, trace: TraceContext, sampled: bool | None,
                    attributes: telemetry.Attributes) -> telemetry.ServerSpan:
        return _OtelServerSpan(self, name, trace, sampled, attributes)

    def annotate(self, key: str, value: str | int | float | bool) -> None:
        from opentelemetry import trace as api

        api.get_current_span().set_attribute(key, value)


def _provider(settings: TracingSettings) -> TracerProvider:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    class CallIds(RandomIdGenerator):
        """The call's own ids for its server span, random ones for every other span."""

        def generate_span_id(self) -> int:
            wanted = _wanted.get()
            return wanted[1] if wanted is not None else super().generate_span_id()

        def generate_trace_id(self) -> int:
            wanted = _wanted.get()
            return wanted[0] if wanted is not None else super().generate_trace_id()

    return TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
        id_generator=CallIds(),
    )


@dataclass
class RunningTracing:
    """Tracing set up in this process; ``stop()`` flushes what is left and switches it off."""

    provider: TracerProvider

    def stop(self) -> None:
        telemetry.install(None)
        self.provider.shutdown()


def start_tracing(
    settings: TracingSettings, processor: SpanProcessor | None = None
) -> RunningTracing | None:
    """Set up tracing as configured: None (and nothing imported) when it is off. ``processor``
    replaces the OTLP export (tests hand in an in-memory exporter's processor)."""
    if not settings.enabled and processor is None:
        return None
    try:
        provider = _provider(settings)
        if processor is None:
            processor = _otlp_processor(settings.otlp_endpoint)
    except ImportError as exc:
        raise TracingUnavailable(
            "[tracing] otlp_endpoint is set but OpenTelemetry is not installed: "
            "pip install 'ketenpoort[otel]'"
        ) from exc
    provider.add_span_processor(processor)
    telemetry.install(_OtelTracing(provider))
    return RunningTracing(provider)


def _otlp_processor(endpoint: str) -> SpanProcessor:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    insecure = endpoint.startswith("http://")
    return BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=insecure))
