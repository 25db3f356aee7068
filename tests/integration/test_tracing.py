"""OpenTelemetry traces of the disclosure path, under the caller's trace."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from gateway.cli.demo_data import SOURCE_RECORDS, SUBJECT
from gateway.server.tracing_setup import TracingSettings, start_tracing
from tests.integration.harness import Harness
from tests.integration.helpers import register, to_case_meeting

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


@pytest.fixture
def spans() -> Iterator[Any]:
    sdk = pytest.importorskip("opentelemetry.sdk.trace.export")
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    running = start_tracing(TracingSettings(), sdk.SimpleSpanProcessor(exporter))
    assert running is not None
    try:
        yield exporter
    finally:
        running.stop()


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


async def test_a_disclosure_is_one_span_tree_under_the_callers_trace(
    harness: Harness, spans: Any
) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police, ("zvh", "ggz"))
    await to_case_meeting(director, case_id)
    answer = await police.request_disclosure(
        case_id, "analysis_and_plan", "case_meeting",
        traceparent=f"00-{TRACE_ID}-{CALLER_SPAN}-01",
    )
    assert answer.values["subject.name"] == SUBJECT.name

    trace = [s for s in spans.get_finished_spans()
             if _hex(s.context.trace_id, 32) == TRACE_ID]
    [server] = [s for s in trace if s.name == "ExchangeService/RequestDisclosure"]
    assert server.kind.name == "SERVER"
    assert _hex(server.parent.span_id, 16) == CALLER_SPAN and server.parent.is_remote
    assert server.attributes["rpc.grpc.status_code"] == "OK"
    # The server span is the span the accountability record names.
    [record] = [r.event for r in harness.gateway.log.list_records(case_id=case_id)
                if r.seq == answer.response.log_seq]
    assert record.span_id == _hex(server.context.span_id, 16)

    children = [s for s in trace if s is not server]
    assert all(s.parent.span_id == server.context.span_id for s in children)
    names = sorted(s.name for s in children)
    source_calls = [s for s in children if s.name == "source.call"]
    assert names == sorted(["policy.decide", "log.commit", "seal"]
                           + ["source.call"] * len(source_calls))
    assert source_calls, "the disclosure asked sources"
    assert {s.attributes["ketenpoort.outcome"] for s in source_calls} == {"ok"}
    assert {s.attributes["ketenpoort.source"] for s in source_calls} <= set(SOURCE_RECORDS)
    # Steps in order: the decision, the sources, the log commit, then the seal.
    first = {s.name: s.start_time for s in children}
    assert first["policy.decide"] < min(s.start_time for s in source_calls)
    assert max(s.end_time for s in source_calls) <= first["log.commit"] < first["seal"]

    personal = [SUBJECT.bsn, SUBJECT.name, SUBJECT.date_of_birth, SUBJECT.postcode,
                case_id, answer.response.disclosure_id]
    personal += [v for r in SOURCE_RECORDS.values() for v in r.fields.values() if len(v) >= 6]
    for span in trace:
        shown = " ".join(f"{k}={v}" for k, v in (span.attributes or {}).items())
        shown += " " + span.name + " " + str(span.status.description or "")
        for value in personal:
            assert value not in shown, f"{value!r} in span {span.name}"


async def test_a_call_without_traceparent_starts_a_trace_the_log_names(
    harness: Harness, spans: Any
) -> None:
    police = harness.client("police")
    case_id = await register(police)
    [server] = [s for s in spans.get_finished_spans()
                if s.name == "ExchangeService/RegisterCase"]
    assert server.parent is None
    [record] = [r.event for r in harness.gateway.log.list_records(case_id=case_id)]
    assert (record.trace_id, record.span_id) == (
        _hex(server.context.trace_id, 32), _hex(server.context.span_id, 16)
    )


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_tracing_off_imports_no_opentelemetry(db_url: str) -> None:
    result = _python(
        "import sys\n"
        "import gateway.cli.serving, gateway.server.app, gateway.broker.disclosure\n"
        "from gateway.server.tracing_setup import TracingSettings, start_tracing\n"
        "assert start_tracing(TracingSettings()) is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_tracing_configured_without_opentelemetry_is_one_clear_error(db_url: str) -> None:
    result = _python(
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # not installed\n"
        "from gateway.server.tracing_setup import TracingSettings, TracingUnavailable, "
        "start_tracing\n"
        "try:\n"
        "    start_tracing(TracingSettings(otlp_endpoint='http://127.0.0.1:4317'))\n"
        "except TracingUnavailable as exc:\n"
        "    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'ketenpoort[otel]'" in result.stdout


async def test_spans_reach_an_otlp_collector(harness: Harness) -> None:
    """The configured export: spans sent by OTLP/gRPC to a collector (one of the test's own,
    on loopback) when [tracing] otlp_endpoint names it."""
    service = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
    stubs = pytest.importorskip(
        "opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc"
    )
    received: list[Any] = []

    class Collector(stubs.TraceServiceServicer):  # type: ignore[misc,name-defined]
        async def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
            received.append(request)
            return service.ExportTraceServiceResponse()

    collector = grpc.aio.server()
    stubs.add_TraceServiceServicer_to_server(Collector(), collector)
    port = collector.add_insecure_port("127.0.0.1:0")
    await collector.start()
    running = start_tracing(TracingSettings(otlp_endpoint=f"http://127.0.0.1:{port}",
                                            service_name="gateway-under-test"))
    assert running is not None
    police = harness.client("police")
    try:
        case_id = await register(police)
        await to_case_meeting(harness.client("zvh"), case_id)
        await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting",
                                        traceparent=f"00-{TRACE_ID}-{CALLER_SPAN}-01")
    finally:
        # Flushes the batch: the exporter sends from a thread of its own.
        await asyncio.to_thread(running.stop)
        await collector.stop(None)
    spans = [
        (span.name, span.trace_id.hex())
        for request in received
        for resource in request.resource_spans
        if any(a.key == "service.name" and a.value.string_value == "gateway-under-test"
               for a in resource.resource.attributes)
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    assert {name for name, trace_id in spans if trace_id == TRACE_ID} >= {
        "ExchangeService/RequestDisclosure", "policy.decide", "source.call", "log.commit", "seal"
    }
