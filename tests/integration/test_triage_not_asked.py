"""A triage question about partner types that have no source system here is not a "no hit":
nobody was asked, so the answer is incomplete and its log record names those types."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from gateway.broker.log_events import RecordKind
from gateway.core import CompiledPolicy
from tests.integration.harness import running_harness
from tests.integration.helpers import accept, register

# Only the police and GGZ run a source system; the shipped policy knows ten partner types
# whose systems hold fields of the record.
SOME_SOURCES = {"police": "police", "ggz": "ggz"}


@pytest.mark.parametrize("sources", [SOME_SOURCES, {}], ids=["two_sources", "no_source"])
async def test_partner_types_without_a_source_are_not_asked_and_make_triage_incomplete(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy, sources: dict[str, str]
) -> None:
    not_asked = set(shipped_policy.source_types) - set(sources.values())
    assert not_asked
    async with running_harness(
        db_url, dev_keys, shipped_policy, source_partners=sources
    ) as harness:
        police, director = harness.client("police"), harness.client("zvh")
        municipality = harness.client("municipality")
        case_id = await register(police)
        await accept(director, case_id)
        await director.change_phase(case_id, "registration", "triage")

        answer = await director.triage(case_id)
        assert answer.incomplete
        assert answer.known_anywhere == bool(sources)  # the configured sources know the subject
        hits = {h.partner_type: h for h in answer.hits}
        assert set(hits) == set(shipped_policy.source_types)
        for partner_type in not_asked:
            assert not hits[partner_type].answered and not hits[partner_type].known
        for partner_type in sources.values():
            assert hits[partner_type].answered and hits[partner_type].known

        # A partner outside the case is told nothing, incomplete or not.
        with pytest.raises(grpc.aio.AioRpcError) as outside:
            await municipality.triage(case_id)
        assert outside.value.code() == grpc.StatusCode.PERMISSION_DENIED

        records = harness.gateway.log.list_records(kinds=[RecordKind.TRIAGE], case_id=case_id)
        assert [r.seq for r in records] == [answer.log_seq]
        for record in records:
            assert record.event.status == "incomplete"
            by_source = {f.source: f.availability for f in record.event.fields}
            assert {t for t, a in by_source.items() if a == "not_asked"} == not_asked
            assert {t for t, a in by_source.items() if a == "available"} == set(sources.values())
        for client in (police, director, municipality):
            await client.close()
