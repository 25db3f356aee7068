"""A source that answers but could not supply some fields just now names them (the source
contract's ``unavailable``): the gateway marks exactly those fields "source unavailable", as
if the source were down for them, and passes on the rest of the answer."""

from __future__ import annotations

from adapters.source_server import InMemoryBackend, SubjectRecord, serve_source
from gateway.api.v1 import common_pb2
from gateway.broker.sources import FetchContext, FetchResult, Subject
from gateway.cli.demo_data import SUBJECT
from gateway.sources.grpc_source import GrpcSource
from tests.integration.harness import Harness
from tests.integration.helpers import accept, register

DOWN = "police.weapon_flag"
UP = "police.incidents"


async def _case_meeting(harness: Harness) -> str:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await accept(director, case_id)
    await director.change_phase(case_id, "registration", "triage")
    await director.change_phase(case_id, "triage", "case_meeting")
    return case_id


async def test_only_the_fields_a_source_names_unavailable_are_unavailable(
    harness: Harness,
) -> None:
    case_id = await _case_meeting(harness)
    police = harness.client("police")
    whole = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    assert DOWN in whole.values and UP in whole.values
    assert "police" not in whole.response.unavailable_sources

    backend = harness.sources["police"].servicer.backend
    assert isinstance(backend, InMemoryBackend)
    backend.unavailable.add(DOWN)  # that part of the police's system is down just now
    answer = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")

    assert DOWN not in answer.values
    assert answer.outcomes[DOWN].availability == common_pb2.AVAILABILITY_SOURCE_UNAVAILABLE
    # The rest of the same answer arrives as before.
    assert answer.values[UP] == whole.values[UP]
    assert answer.outcomes[UP].availability == common_pb2.AVAILABILITY_AVAILABLE
    assert answer.response.incomplete and "police" in answer.response.unavailable_sources
    # The source was asked (and answered), sealed and signed as ever.
    assert harness.sources["police"].servicer.seen[-1].fields.count(DOWN) == 1


async def test_a_clear_answer_names_its_unavailable_fields_too() -> None:
    # The deprecated clear form of the contract (FetchFieldsResponse.unavailable).
    backend = InMemoryBackend()
    backend.add(SubjectRecord(SUBJECT.bsn, "suspect", {UP: "2 incidents", DOWN: "yes"}))
    backend.unavailable.add(DOWN)
    running = await serve_source(backend, clear_answers=True)
    source = GrpcSource(running.address, partner_id="police", clear_requests=True)
    try:
        answer = await source.fetch(
            Subject(bsn=SUBJECT.bsn, name="", date_of_birth=""),
            [UP, DOWN],
            FetchContext("analysis_and_plan", "d_1", "police"),
            timeout_s=5.0,
        )
    finally:
        await source.close()
        await running.stop(None)
    assert answer == FetchResult({UP: "2 incidents"}, frozenset({DOWN}))
