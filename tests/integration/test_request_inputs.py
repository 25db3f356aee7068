"""Malformed requests over real gRPC with mutual TLS: bytes that do not parse and strings that
break the edge's rules are INVALID_ARGUMENT with a message naming the method or the field,
never UNKNOWN or INTERNAL, never the value, and never a traceback per call in the log."""

from __future__ import annotations

import logging
from dataclasses import replace

import grpc
import pytest

from adapters.client import PartnerClient
from adapters.source_server import InMemoryBackend
from gateway.api.v1 import common_pb2, exchange_pb2, exchange_pb2_grpc
from gateway.cli.demo_data import GOAL, REASON, SUBJECT
from gateway.server.request_checks import malformed_message
from tests.integration.harness import Harness
from tests.integration.helpers import register, to_case_meeting

INVALID = grpc.StatusCode.INVALID_ARGUMENT
DISCLOSURE = "/ketenpoort.v1.ExchangeService/RequestDisclosure"
# 50,000 nested groups of field 1: far beyond protobuf's recursion limit.
DEEP_GROUPS = b"\x0b" * 50_000 + b"\x0c" * 50_000
GARBAGE = {
    "random": bytes(range(256)) * 4,
    # field 2 (purpose, a string) holding bytes that are not UTF-8
    "invalid-utf8": b"\x12\x02\xff\xfe",
    # another message type whose field 4 is bytes where DisclosureRequest has strings
    "wrong-type": common_pb2.SealedRecord(ciphertext=b"\xff" * 40).SerializeToString(),
    "deep-groups": DEEP_GROUPS,
    "truncated": b"\x0a\x40abc",
}


async def _raw_call(harness: Harness, method: str, payload: bytes) -> grpc.aio.AioRpcError:
    channel = harness.channel()
    try:
        call = channel.unary_unary(method)  # bytes in, bytes out
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(payload, metadata=(("authorization", f"Bearer {harness.token()}"),),
                       timeout=10)
        return caught.value
    finally:
        await channel.close()


@pytest.mark.parametrize("payload", GARBAGE.values(), ids=GARBAGE.keys())
async def test_bytes_that_are_not_the_request_type_are_invalid_argument_with_a_fixed_message(
    harness: Harness, payload: bytes
) -> None:
    error = await _raw_call(harness, DISCLOSURE, payload)
    assert error.code() == INVALID
    assert error.details() == malformed_message("ExchangeService/RequestDisclosure")


async def test_garbage_is_one_log_line_per_window_and_counted_by_method(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(10):
        assert (await _raw_call(harness, DISCLOSURE, GARBAGE["random"])).code() == INVALID
    lines = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 1
    # No traceback, from grpc or from the gateway.
    assert not [r for r in caplog.records if r.exc_info]
    count = harness.gateway.metrics.registry.get_sample_value(
        "ketenpoort_malformed_requests_total", {"method": "ExchangeService/RequestDisclosure"}
    )
    assert count == 10
    # The gateway still answers a proper call.
    async with harness.client("police") as police:
        assert await register(police)


@pytest.mark.parametrize("rpc", ["RequestDisclosure", "Triage"])
async def test_a_nul_in_purpose_is_invalid_argument_naming_the_field(
    harness: Harness, rpc: str
) -> None:
    async with harness.client("police") as police:
        case_id = await register(police)
        channel = harness.channel()
        stub = exchange_pb2_grpc.ExchangeServiceStub(channel)  # type: ignore[no-untyped-call]
        request: object = (
            exchange_pb2.DisclosureRequest(case_id=case_id, purpose="case\x00meeting",
                                           phase="registration")
            if rpc == "RequestDisclosure"
            else exchange_pb2.TriageRequest(case_id=case_id, purpose="tri\x00age")
        )
        try:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await getattr(stub, rpc)(request, metadata=police.metadata(), timeout=10)
        finally:
            await channel.close()
    assert caught.value.code() == INVALID
    assert caught.value.details() == "purpose holds a NUL or another control character"


async def test_a_nul_in_from_phase_and_an_overlong_field_are_invalid_argument(
    harness: Harness,
) -> None:
    async with harness.client("police") as police:
        case_id = await register(police)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await police.change_phase(case_id, "regis\x00tration", "triage")
        assert caught.value.code() == INVALID
        assert "from_phase" in (caught.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await police.request_disclosure(case_id, "case_meeting", "registration",
                                            fields=["x" * 300])
        assert caught.value.code() == INVALID
        assert caught.value.details() == "fields[0] is longer than 256 characters"


@pytest.mark.parametrize("sealed", [True, False], ids=["sealed", "clear"])
async def test_control_characters_in_a_registration_are_refused_sealed_or_clear(
    harness: Harness, sealed: bool
) -> None:
    subject = common_pb2.SubjectIdentity()
    subject.CopyFrom(SUBJECT)
    subject.name = "Jan\x00Jansen"
    async with harness.client("police", seal_submissions=sealed) as police:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await police.register_case(subject, "code_rood", reason=REASON, goal=GOAL)
        assert caught.value.code() == INVALID
        details = caught.value.details() or ""
        assert "subject.name holds a NUL or another control character" in details
        assert "Jansen" not in details
        # Free text keeps its line breaks and tabs.
        case = await police.register_case(
            SUBJECT, "code_rood", reason="Melding:\n\tkinderen bang", goal=GOAL
        )
        assert case.case_id


async def test_a_bell_in_a_case_file_note_is_refused_but_newlines_are_kept(
    harness: Harness,
) -> None:
    police: PartnerClient
    async with harness.client("police") as police:
        case_id = await register(police)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await police.add_to_case_file(case_id, "case.notes", "let op\x07")
        assert caught.value.code() == INVALID
        assert "text holds a NUL or another control character" in (caught.value.details() or "")
        assert await police.add_to_case_file(case_id, "case.notes", "regel 1\r\nregel 2")


async def _police_source_holds(harness: Harness, field: str, value: str) -> None:
    backend = harness.sources["police"].servicer.backend
    assert isinstance(backend, InMemoryBackend)
    record = backend.records[SUBJECT.bsn]
    backend.add(replace(record, fields={**record.fields, field: value}))


async def test_a_source_answer_is_held_to_the_same_rules_once_opened(harness: Harness) -> None:
    async with harness.client("police") as police, harness.client("zvh") as director:
        case_id = await register(police)
        await to_case_meeting(director, case_id)
        # A long, multi-line value from the partner's own system is answered as it is.
        long_text = "2026-10-02 call-out\n\t" + "detail " * 2000
        await _police_source_holds(harness, "police.incidents", long_text)
        answer = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
        assert answer.values["police.incidents"] == long_text
        # A NUL in it refuses the source's answer: its fields are unavailable, the rest is
        # answered, and nothing fails.
        await _police_source_holds(harness, "police.incidents", "call-out\x00")
        answer = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    assert answer.response.incomplete
    assert "police" in answer.response.unavailable_sources
    assert answer.outcomes["police.incidents"].availability == (
        common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE
    )
