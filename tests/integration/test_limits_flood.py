"""A flood of refused calls is held at the configured rate and logged per window, not per call.

A real gateway over mutual TLS (SQLite and PostgreSQL). For a few seconds two callers flood it
with calls that can only be refused: ggz, whose certificate is registered, with a forged token,
and a certificate the CA issued that is registered to no partner. Meanwhile police makes its
ordinary disclosures. Every call inside a limit that is refused keeps its own record, written
before the answer; every call over the limit is answered RESOURCE_EXHAUSTED with a retry hint
and only counted, in one record per caller and window; police is answered every time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc import aio

from adapters.channels import open_channel
from gateway.api.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.broker.log_events import LogRecord, RecordKind
from gateway.core import CompiledPolicy
from gateway.server.limit_settings import LimitSettings
from gateway.server.limits import CallLimit
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_accounting import PHASE, PURPOSE, read_log

PARTNER = CallLimit(rate_per_s=20.0, burst=10, max_concurrent=16)
UNKNOWN = CallLimit(rate_per_s=5.0, burst=5, max_concurrent=8)
REPORT_INTERVAL_S = 1.0
LIMITS = LimitSettings(partner=PARTNER, unknown=UNKNOWN, report_interval_s=REPORT_INTERVAL_S)
FLOOD_S = 3.0
CALLERS_PER_FLOOD = 6
OPERATION = "ExchangeService/RequestDisclosure"


@pytest.fixture
async def limited(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[Harness]:
    async with running_harness(
        db_url, dev_keys, shipped_policy, config_changes={"limits": LIMITS}
    ) as harness:
        yield harness


@dataclass
class Flood:
    codes: Counter[grpc.StatusCode] = field(default_factory=Counter)
    retry_after_ms: list[int] = field(default_factory=list)

    @property
    def refused(self) -> int:
        return self.codes[grpc.StatusCode.UNAUTHENTICATED]

    @property
    def limited(self) -> int:
        return self.codes[grpc.StatusCode.RESOURCE_EXHAUSTED]


async def _flood(channel: aio.Channel, token: str, until: float, flood: Flood) -> None:
    stub = exchange_pb2_grpc.ExchangeServiceStub(channel)  # type: ignore[no-untyped-call]
    request = exchange_pb2.DisclosureRequest(case_id="case-unknown", purpose=PURPOSE, phase=PHASE)
    metadata = (("authorization", f"Bearer {token}"),)
    while time.monotonic() < until:
        try:
            await stub.RequestDisclosure(request, metadata=metadata, timeout=10)
            flood.codes[grpc.StatusCode.OK] += 1
        except aio.AioRpcError as exc:
            flood.codes[exc.code()] += 1
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                trailing = dict(exc.trailing_metadata() or ())
                assert trailing["ketenpoort-reason"] == "rate_limited"
                flood.retry_after_ms.append(int(trailing["retry-after-ms"]))


def _records(harness: Harness, after_seq: int) -> list[LogRecord]:
    return harness.gateway.log.list_records(after_seq=after_seq, limit=10_000)


async def test_a_flood_is_held_at_the_limit_and_logged_per_window(limited: Harness) -> None:
    harness = limited
    police, director = harness.client("police"), harness.client("zvh")
    ggz_channel = harness.channel("ggz")
    stranger = open_channel(harness.address, harness.new_client_certificate("ggz"))
    try:
        case_id = await register(police)
        await to_case_meeting(director, case_id)
        first_seq = harness.gateway.log.head().last_seq
        forged = harness.token(
            "ggz", key=Ed25519PrivateKey.generate(), key_id=harness.credentials("ggz").token_key_id
        )
        ggz, unknown = Flood(), Flood()
        answered: list[str] = []
        failed: list[BaseException] = []
        started = time.monotonic()
        until = started + FLOOD_S

        async def ordinary_work() -> None:
            while time.monotonic() < until:
                try:
                    opened = await police.request_disclosure(case_id, PURPOSE, PHASE)
                    answered.append(opened.response.disclosure_id)
                except aio.AioRpcError as exc:
                    failed.append(exc)
                await asyncio.sleep(0.1)

        await asyncio.gather(
            ordinary_work(),
            *(_flood(ggz_channel, forged, until, ggz) for _ in range(CALLERS_PER_FLOOD)),
            *(_flood(stranger, forged, until, unknown) for _ in range(CALLERS_PER_FLOOD)),
        )
        elapsed = time.monotonic() - started
        # Written by the gateway's own timer while the flood went on.
        during = _records(harness, first_seq)
        assert any(r.event.kind is RecordKind.RATE_LIMITED for r in during), (
            "no rate_limited record was written during the flood"
        )
        assert harness.gateway.limit_report is not None
        await harness.gateway.limit_report.flush()
    finally:
        await police.close()
        await director.close()
        await ggz_channel.close()
        await stranger.close()

    # Police, well inside its own limit, was answered every time.
    assert not failed, failed[:3]
    assert len(answered) >= 5

    for flood, limit in ((ggz, PARTNER), (unknown, UNKNOWN)):
        assert set(flood.codes) == {grpc.StatusCode.UNAUTHENTICATED,
                                    grpc.StatusCode.RESOURCE_EXHAUSTED}, flood.codes
        # Held at the configured rate: no more than the burst plus the rate over the flood.
        assert limit.burst <= flood.refused <= limit.burst + limit.rate_per_s * elapsed + 1
        # The flood went well over the limit (it is not the machine that held it back).
        assert flood.limited > flood.refused, flood.codes
        assert 1 <= min(flood.retry_after_ms)
        assert max(flood.retry_after_ms) <= 1000 / limit.rate_per_s + 1

    records = _records(harness, first_seq)
    kinds = Counter(r.event.kind for r in records)
    refusals = [r.event for r in records if r.event.kind is RecordKind.AUTH_REFUSAL]
    windows = [r.event for r in records if r.event.kind is RecordKind.RATE_LIMITED]
    # Every refused call inside a limit has its own record ...
    assert Counter((e.partner_id, e.refusal_code) for e in refusals) == {
        ("ggz", "bad_signature"): ggz.refused,
        ("", "unregistered_certificate"): unknown.refused,
    }
    # ... the calls over it are counted, one record per caller and window ...
    for partner_id, flood in (("ggz", ggz), ("", unknown)):
        own = [e for e in windows if e.partner_id == partner_id]
        detail = [dict(e.detail) for e in own]
        assert sum(int(d["calls"]) for d in detail) == flood.limited
        assert sum(int(d["by_rate"]) for d in detail) == flood.limited
        assert {d["operations"] for d in detail} == {OPERATION}
        assert {d["caller"] for d in detail} == {"partner" if partner_id else "unknown"}
        assert len(own) <= elapsed / REPORT_INTERVAL_S + 3
        assert all(e.ended_at is not None and e.occurred_at < e.ended_at for e in own)
    # ... and nothing else was written: the log grew by the ordinary answers, the refusals
    # inside the limits and a handful of windows, not by a record per call.
    assert kinds == {
        RecordKind.DISCLOSURE: len(answered),
        RecordKind.AUTH_REFUSAL: ggz.refused + unknown.refused,
        RecordKind.RATE_LIMITED: len(windows),
    }

    metrics = harness.gateway.metrics.limited_calls
    assert metrics.labels("ggz", "rate")._value.get() == ggz.limited
    assert metrics.labels("unknown", "rate")._value.get() == unknown.limited


async def test_the_window_in_progress_is_written_when_the_gateway_stops(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    hourly = LimitSettings(partner=CallLimit(rate_per_s=1.0, burst=3, max_concurrent=8),
                           report_interval_s=3600.0)
    flood = Flood()
    async with running_harness(
        db_url, dev_keys, shipped_policy, config_changes={"limits": hourly}
    ) as harness:
        forged = harness.token(
            "ggz", key=Ed25519PrivateKey.generate(), key_id=harness.credentials("ggz").token_key_id
        )
        async with harness.channel("ggz") as channel:
            await _flood(channel, forged, time.monotonic() + 0.5, flood)
        # The hour has not passed: nothing of the window is written yet.
        kinds = {r.event.kind for r in _records(harness, 0)}
        assert RecordKind.RATE_LIMITED not in kinds
    assert flood.limited > 0

    contents = read_log(db_url, dev_keys)
    assert contents.verified.ok, contents.verified
    [window] = [r.event for r in contents.records if r.event.kind is RecordKind.RATE_LIMITED]
    assert window.partner_id == "ggz"
    assert dict(window.detail)["calls"] == str(flood.limited)


async def test_the_client_library_waits_out_a_limit_hint_and_gets_through(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    """A partner that runs past its burst is turned away with retry-after-ms before any work;
    the client library waits as told and calls again, so every call of a burst is answered.
    A raw call without the library's retries is turned away."""
    tight = LimitSettings(partner=CallLimit(rate_per_s=5.0, burst=2, max_concurrent=8))
    async with running_harness(
        db_url, dev_keys, shipped_policy, config_changes={"limits": tight}
    ) as harness:
        async with harness.client("police") as police, harness.client("zvh") as director:
            case_id = await register(police)
            await to_case_meeting(director, case_id)
            answers = [await police.request_disclosure_raw(
                exchange_pb2.DisclosureRequest(case_id=case_id, purpose=PURPOSE, phase=PHASE)
            ) for _ in range(6)]
        assert all(a.disclosure_id for a in answers)
        async with harness.channel("police") as channel:
            stub = exchange_pb2_grpc.ExchangeServiceStub(channel)  # type: ignore[no-untyped-call]
            codes = Counter[grpc.StatusCode]()
            for _ in range(6):
                try:
                    await stub.GetGatewayKeys(
                        exchange_pb2.GetGatewayKeysRequest(),
                        metadata=(("authorization", f"Bearer {harness.token()}"),),
                        timeout=10,
                    )
                    codes[grpc.StatusCode.OK] += 1
                except aio.AioRpcError as exc:
                    codes[exc.code()] += 1
                    assert dict(exc.trailing_metadata() or ())["retry-after-ms"].isdigit()
        assert codes[grpc.StatusCode.RESOURCE_EXHAUSTED] > 0, codes
