"""The source view of a partner's export is for the partner that runs its type's source system:
another partner of the same type (the GI beside the RvdK, both child protection) is refused,
with a refusal record, and sees nothing of what the other organisation's data was disclosed
for."""

from __future__ import annotations

import grpc
import pytest

from gateway.broker.caller import Principal
from gateway.broker.disclosure_export import NOT_SOURCE_OPERATOR, runs_source
from gateway.broker.log_events import RecordKind
from gateway.core import CompiledPolicy
from tests.integration.harness import Harness


def principal(partner_id: str, partner_type: str) -> Principal:
    return Principal(partner_id, partner_type, "chain_partner", "u-1", "", 0)


def test_only_the_partner_running_the_source_may_take_the_source_view(
    shipped_policy: CompiledPolicy,
) -> None:
    rvdk, gi = principal("rvdk", "child_protection"), principal("gi", "child_protection")
    # The only partner of its type runs the type's source.
    assert runs_source(shipped_policy, (), principal("ggz", "ggz"))
    # Two partners share a type: neither, unless the configuration names one.
    assert not runs_source(shipped_policy, (), rvdk)
    assert not runs_source(shipped_policy, (), gi)
    assert runs_source(shipped_policy, ("rvdk", "ggz"), rvdk)
    assert not runs_source(shipped_policy, ("rvdk", "ggz"), gi)
    # A configured source of another type does not speak for this one.
    assert runs_source(shipped_policy, ("ggz",), principal("municipality", "municipality"))


async def test_a_partner_sharing_the_type_is_refused_and_the_refusal_recorded(
    harness: Harness,
) -> None:
    gi = harness.client("gi", role="chain_partner")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in gi.export_pages(role="source"):
            pytest.fail("a partner that runs no source received a page of the source view")
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    [record] = harness.gateway.log.list_records(kinds=[RecordKind.REFUSAL])
    e = record.event
    assert (e.partner_id, e.refusal_code, e.status) == ("gi", NOT_SOURCE_OPERATOR, "refused")
    assert dict(e.detail) == {"role": "source"}
    assert not harness.gateway.log.list_records(kinds=[RecordKind.LOG_EXPORT])
    # Its own received disclosures stay open to it.
    assert [p async for p in gi.export_pages()][-1].done
