"""Who may place and lift confidentiality holds, and what the gateway refuses, over gRPC."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import grpc
import pytest

from gateway.broker.log_events import RecordKind
from gateway.cli.demo_data import SUBJECT
from gateway.core import CompiledPolicy
from tests.integration.access_helpers import (
    OTHER,
    Clock,
    access_report,
    lift_hold,
    place_hold,
    pseudonym_of,
    rfc3339,
)
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register

REASON = "Opsporingsbelang: lopend onderzoek naar mishandeling."


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC))


@pytest.fixture
async def gateway(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy, clock: Clock
) -> AsyncIterator[Harness]:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    async with running_harness(url, dev_keys, shipped_policy, clock=clock) as harness:
        yield harness


async def refused_with(code: grpc.StatusCode, call: object) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    assert err.value.code() == code, err.value.details()
    return err.value.details() or ""


def refusals(harness: Harness) -> list[tuple[str, str, str]]:
    return [
        (r.event.partner_id, r.event.refusal_code, r.event.subject_pseudonym)
        for r in harness.gateway.log.list_records(kinds=[RecordKind.REFUSAL])
    ]


async def test_only_partner_types_the_policy_allows_may_place_holds(
    gateway: Harness, clock: Clock
) -> None:
    until = rfc3339(clock.now + timedelta(days=10))
    for partner in ("municipality", "ggz"):
        await refused_with(
            grpc.StatusCode.PERMISSION_DENIED,
            place_hold(gateway, partner, until=until, reason=REASON),
        )
    pseudonym = pseudonym_of(gateway, SUBJECT.bsn)
    assert refusals(gateway) == [
        ("municipality", "holds_not_allowed", pseudonym),
        ("ggz", "holds_not_allowed", pseudonym),
    ]
    assert not gateway.gateway.log.list_records(kinds=[RecordKind.HOLD_PLACED])
    # The police and the public prosecutor may.
    for partner in ("police", "om"):
        placed = await place_hold(gateway, partner, until=until, reason=REASON)
        assert placed.hold_id.startswith("h_") and placed.record_seq > 0
    placed_by = [
        r.event.partner_id for r in gateway.gateway.log.list_records(kinds=[RecordKind.HOLD_PLACED])
    ]
    assert placed_by == ["police", "om"]


async def test_bad_hold_requests_are_invalid_arguments(gateway: Harness, clock: Clock) -> None:
    soon = rfc3339(clock.now + timedelta(days=10))
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    details = await refused_with(
        invalid, place_hold(gateway, "police", bsn="123456789", until=soon, reason=REASON)
    )
    assert "123456789" not in details and "BSN" in details
    for until in (
        rfc3339(clock.now - timedelta(seconds=1)),
        "2000-01-01",
        (clock.now.date()).isoformat(),  # today began already
        rfc3339(clock.now + timedelta(days=5 * 366)),
        "next week",
        "2027-02-30",
        "2027-01-31T12:00:00",  # a time needs its offset
    ):
        await refused_with(invalid, place_hold(gateway, "police", until=until, reason=REASON))
    for reason in ("", "   ", "x" * 2001):
        await refused_with(invalid, place_hold(gateway, "police", until=soon, reason=reason))
    # The limits themselves are fine.
    longest = rfc3339(clock.now + timedelta(days=5 * 365))
    assert (await place_hold(gateway, "police", until=longest, reason="x" * 2000)).hold_id
    # Another offset, and more fractional digits than Python reads, are RFC 3339 too.
    summer = (clock.now + timedelta(days=3)).astimezone(timezone(timedelta(hours=2)))
    with_offset = summer.strftime("%Y-%m-%dT%H:%M:%S.123456789+02:00")
    assert (await place_hold(gateway, "police", until=with_offset, reason=REASON)).hold_id
    # Nothing about a refused request reached the log but the holds that were placed.
    assert len(gateway.gateway.log.list_records(kinds=[RecordKind.HOLD_PLACED])) == 2


async def test_a_hold_on_a_case_needs_that_subjects_case(gateway: Harness, clock: Clock) -> None:
    police = gateway.client("police")
    case_a = await register(police)
    reg_b = await police.register_case(OTHER, "code_rood", reason="worries", invitees=["zvh"])
    await police.close()
    soon = rfc3339(clock.now + timedelta(days=10))
    missing = await refused_with(
        grpc.StatusCode.NOT_FOUND,
        place_hold(gateway, "police", case_id="c_nothere", until=soon, reason=REASON),
    )
    elsewhere = await refused_with(
        grpc.StatusCode.NOT_FOUND,
        place_hold(gateway, "police", case_id=reg_b.case_id, until=soon, reason=REASON),
    )
    assert missing == elsewhere, "the answer does not tell a missing case from another's"
    placed = await place_hold(gateway, "police", case_id=case_a, until=soon, reason=REASON)
    (record,) = gateway.gateway.log.list_records(kinds=[RecordKind.HOLD_PLACED])
    assert record.seq == placed.record_seq and record.event.case_id == case_a


async def test_only_the_placing_partner_lifts_a_hold_once(gateway: Harness, clock: Clock) -> None:
    soon = rfc3339(clock.now + timedelta(days=10))
    placed = await place_hold(gateway, "police", until=soon, reason=REASON)
    await refused_with(grpc.StatusCode.PERMISSION_DENIED, lift_hold(gateway, "om", placed.hold_id))
    assert refusals(gateway) == [("om", "not_hold_owner", pseudonym_of(gateway, SUBJECT.bsn))]
    await refused_with(grpc.StatusCode.NOT_FOUND, lift_hold(gateway, "police", "h_unknown"))
    await refused_with(grpc.StatusCode.INVALID_ARGUMENT, lift_hold(gateway, "police", ""))

    seq = await lift_hold(gateway, "police", placed.hold_id)
    assert seq > placed.record_seq
    await refused_with(
        grpc.StatusCode.FAILED_PRECONDITION, lift_hold(gateway, "police", placed.hold_id)
    )
    # A hold that ran out has nothing left to lift.
    short = await place_hold(
        gateway, "police", until=rfc3339(clock.now + timedelta(hours=1)), reason=REASON
    )
    clock.advance(hours=2)
    await refused_with(
        grpc.StatusCode.FAILED_PRECONDITION, lift_hold(gateway, "police", short.hold_id)
    )
    assert len(gateway.gateway.log.list_records(kinds=[RecordKind.HOLD_LIFTED])) == 1


async def test_reports_are_for_privacy_officers_and_valid_requests(gateway: Harness) -> None:
    await refused_with(
        grpc.StatusCode.PERMISSION_DENIED, access_report(gateway, role="process_director")
    )
    details = await refused_with(
        grpc.StatusCode.INVALID_ARGUMENT, access_report(gateway, "123456789")
    )
    assert "123456789" not in details
    await refused_with(grpc.StatusCode.INVALID_ARGUMENT, access_report(gateway, fmt="pdf"))
    await refused_with(grpc.StatusCode.INVALID_ARGUMENT, access_report(gateway, language="de"))
    assert not gateway.gateway.log.list_records(kinds=[RecordKind.SUBJECT_ACCESS])
    # A subject nobody disclosed anything about gets an empty, recorded report.
    empty = await access_report(gateway, fmt="html", language="en")
    assert empty.disclosures_listed == 0 and not empty.withheld_under_exception
    assert "No information about you has been disclosed" in empty.document.decode()
    assert gateway.gateway.log.list_records(kinds=[RecordKind.SUBJECT_ACCESS])
