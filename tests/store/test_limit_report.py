"""Calls turned away by the call limits reach the log as one record per caller and window, also
when a window could not be written at first (the log was not accepting records)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from gateway.broker.log_events import AuditEvent, RecordKind
from gateway.server.limit_report import LimitReport
from gateway.server.limits import UNKNOWN_CALLER, LimitedCalls, LimitReason
from gateway.store import AuditLog

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def test_a_window_that_could_not_be_written_is_written_with_the_next(
    engine: Engine,
) -> None:
    clock = Clock()
    tally = LimitedCalls(clock())
    logs = [AuditLog(engine)]

    async def append(event: AuditEvent) -> object:
        return await logs[-1].append(event)

    report = LimitReport(tally, append, lambda: "policy-v1", clock, interval_s=60.0)
    for _ in range(40):
        tally.count("ggz", "ExchangeService/RequestDisclosure", LimitReason.RATE)
    tally.count(UNKNOWN_CALLER, "ExchangeService/Triage", LimitReason.CONCURRENCY)
    clock.now = T0 + timedelta(seconds=60)
    # The log is not started: nothing can be written, and nothing is lost.
    assert await report.flush() == 0

    log = logs[0]
    await log.start()
    try:
        tally.count("ggz", "ExchangeService/Triage", LimitReason.RATE)
        clock.now = T0 + timedelta(seconds=120)
        assert await report.flush() == 2
        assert await report.flush() == 0  # a quiet window writes nothing
        records = log.list_records(kinds=[RecordKind.RATE_LIMITED])
    finally:
        await log.close()

    by_partner = {r.event.partner_id: r.event for r in records}
    assert set(by_partner) == {"ggz", ""}
    ggz = by_partner["ggz"]
    assert (ggz.occurred_at, ggz.ended_at) == (T0, T0 + timedelta(seconds=120))
    assert dict(ggz.detail) == {
        "by_rate": "41",
        "caller": "partner",
        "calls": "41",
        "operations": "ExchangeService/RequestDisclosure,ExchangeService/Triage",
    }
    assert (ggz.status, ggz.refusal_code, ggz.policy_version) == (
        "refused", "rate_limited", "policy-v1"
    )
    stranger = by_partner[""]
    assert dict(stranger.detail)["caller"] == "unknown"
    assert dict(stranger.detail)["by_concurrency"] == "1"
