"""One request line per call, with the call's trace, and no personal data in any line."""

from __future__ import annotations

import grpc
import pytest

from gateway.cli.demo_data import REASON, SOURCE_RECORDS, SUBJECT
from tests.integration.harness import Harness
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_capture import captured_log

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN}-01"


async def test_a_disclosure_writes_one_request_line_with_its_trace(harness: Harness) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await to_case_meeting(director, case_id)
    with captured_log() as captured:
        answer = await police.request_disclosure(
            case_id, "analysis_and_plan", "case_meeting", traceparent=TRACEPARENT
        )
    [line] = captured.requests("ExchangeService/RequestDisclosure")
    assert line["partner"] == "police"
    assert line["status"] == "OK"
    assert line["level"] == "INFO"
    assert line["message"] == "call"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] > 0
    assert line["trace_id"] == TRACE_ID
    # The span the log records name is the span of this line.
    [record] = [r.event for r in harness.gateway.log.list_records(case_id=case_id)
                if r.seq == answer.response.log_seq]
    assert (record.trace_id, record.span_id, record.parent_span_id) == (
        TRACE_ID, line["span_id"], CALLER_SPAN
    )
    assert set(line) == {"timestamp", "level", "logger", "message", "rpc", "partner",
                         "status", "duration_ms", "trace_id", "span_id"}


async def test_refused_and_unauthenticated_calls_are_logged_with_their_status(
    harness: Harness,
) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await to_case_meeting(director, case_id)
    stranger = harness.client("municipality")
    with captured_log() as captured:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stranger.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
        channel = harness.channel("police")
        try:
            call = channel.unary_unary(
                "/ketenpoort.v1.ExchangeService/RequestDisclosure",
                request_serializer=lambda b: b,
                response_deserializer=lambda b: b,
            )
            with pytest.raises(grpc.aio.AioRpcError) as no_token:
                await call(b"")
        finally:
            await channel.close()
    lines = captured.requests("ExchangeService/RequestDisclosure")
    assert [(line["partner"], line["status"]) for line in lines] == [
        ("municipality", refused.value.code().name),
        ("", no_token.value.code().name),
    ]
    assert no_token.value.code() is grpc.StatusCode.UNAUTHENTICATED
    # Without a traceparent the gateway starts a trace of its own; each call has its own.
    assert len({line["trace_id"] for line in lines}) == 2


def _personal_values() -> list[str]:
    values = [SUBJECT.bsn, SUBJECT.name, SUBJECT.date_of_birth, SUBJECT.address,
              SUBJECT.postcode, REASON, "Vries"]
    for record in SOURCE_RECORDS.values():
        values.append(record.bsn)
        # Short values ("yes", "2") could be anything; the rest must appear nowhere.
        values += [v for v in record.fields.values() if len(v) >= 6]
    return values


async def test_no_line_of_a_disclosure_holds_a_value_an_identity_or_a_token(
    harness: Harness,
) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    with captured_log() as captured:
        case_id = await register(police, ("zvh", "ggz", "municipality"))
        await to_case_meeting(director, case_id)
        answer = await police.request_disclosure(
            case_id, "analysis_and_plan", "case_meeting", traceparent=TRACEPARENT,
            justification="urgent, the family is at risk",
        )
        await harness.client("municipality").request_disclosure(
            case_id, "analysis_and_plan", "case_meeting"
        )
    assert answer.values["subject.name"] == SUBJECT.name, "the disclosure released values"
    text = captured.text
    assert captured.requests("ExchangeService/RequestDisclosure")
    for value in _personal_values():
        assert value not in text, f"{value!r} is in the server log"
    assert "family is at risk" not in text
    # A JWT's header starts with eyJ ('{"'); no token, not even its start, is logged.
    assert "eyJ" not in text and "Bearer" not in text
