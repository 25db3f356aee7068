"""A database that is briefly away under load: every call is answered OK or UNAVAILABLE (which
the client library retries), never INTERNAL or UNKNOWN, and every answered disclosure has its
log record.

PostgreSQL: the gateway's own connections are cut with ``pg_terminate_backend`` (on a
database of the test's own; the shared server is not restarted). SQLite: the disk fills up,
simulated with a file-size limit (RLIMIT_FSIZE) on the test process, as ENOSPC/EFBIG is to
SQLite a failed write either way.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import psycopg
import pytest

from adapters.client import PartnerClient
from gateway.api.v1 import exchange_pb2, exchange_pb2_grpc
from gateway.broker.log_events import RecordKind
from gateway.core import CompiledPolicy
from gateway.store.errors import DATABASE_UNAVAILABLE
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_accounting import PHASE, PURPOSE
from tests.integration.serve_process import fresh_pg_database

LOAD_S = 2.0
WORKERS = 6
ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}
# What an UNAVAILABLE says: no driver text.
FIXED_MESSAGES = {DATABASE_UNAVAILABLE, "the gateway cannot check tokens right now; retry later"}


async def _case(harness: Harness) -> str:
    async with harness.client("police") as police, harness.client("zvh") as director:
        case_id = await register(police)
        await to_case_meeting(director, case_id)
    return case_id


class Load:
    """Raw disclosure calls (no retries) by several workers until stopped; every status and
    every answer kept."""

    def __init__(self, harness: Harness, case_id: str) -> None:
        self.harness = harness
        self.case_id = case_id
        self.codes: Counter[grpc.StatusCode] = Counter()
        self.answers: list[exchange_pb2.DisclosureResponse] = []
        self.details: set[str] = set()
        self.stop = asyncio.Event()

    async def worker(self, police: PartnerClient) -> None:
        channel = self.harness.channel("police")
        stub = exchange_pb2_grpc.ExchangeServiceStub(channel)  # type: ignore[no-untyped-call]
        request = exchange_pb2.DisclosureRequest(case_id=self.case_id, purpose=PURPOSE, phase=PHASE)
        try:
            while not self.stop.is_set():
                try:
                    answer = await stub.RequestDisclosure(
                        request, metadata=police.metadata(), timeout=10
                    )
                except grpc.aio.AioRpcError as exc:
                    self.codes[exc.code()] += 1
                    if exc.code() is not grpc.StatusCode.OK:
                        self.details.add(exc.details() or "")
                    await asyncio.sleep(0.01)
                else:
                    self.codes[grpc.StatusCode.OK] += 1
                    self.answers.append(answer)
        finally:
            await channel.close()

    async def run(self, disturb: asyncio.Task[int]) -> int:
        async with self.harness.client("police") as police:
            workers = [asyncio.create_task(self.worker(police)) for _ in range(WORKERS)]
            disturbed = await disturb
            await asyncio.sleep(0.3)
            self.stop.set()
            await asyncio.gather(*workers)
        return disturbed

    def check_every_answer_has_its_record(self) -> None:
        log = self.harness.gateway.log
        records = {
            r.seq: r
            for r in log.list_records(case_id=self.case_id, kinds=[RecordKind.DISCLOSURE],
                                      limit=10_000)
        }
        for answer in self.answers:
            record = records.get(answer.log_seq)
            assert record is not None, f"answered disclosure without record {answer.log_seq}"
            assert record.event.disclosure_id == answer.disclosure_id
        assert log.verify().ok


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture
async def pg_harness(dev_keys: Path, shipped_policy: CompiledPolicy) -> AsyncIterator[Harness]:
    with fresh_pg_database("ketenpoort_away") as url:
        async with running_harness(url, dev_keys, shipped_policy) as harness:
            yield harness


def _terminate_backends(database: str) -> int:
    """Cut every connection to ``database`` but this one; how many were cut."""
    url = os.environ.get("KETENPOORT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchone()
    return int(row[0]) if row else 0


async def _keep_cutting(database: str, seconds: float) -> int:
    cut = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.15)
        cut += await asyncio.to_thread(_terminate_backends, database)
    return cut


@pytest.mark.postgres
async def test_cut_postgresql_connections_are_unavailable_never_internal(
    pg_harness: Harness,
) -> None:
    harness = pg_harness
    database = harness.db_url.rsplit("/", 1)[-1].split("?", 1)[0]
    case_id = await _case(harness)
    load = Load(harness, case_id)
    cut = await load.run(asyncio.create_task(_keep_cutting(database, LOAD_S)))
    assert cut > 0
    assert set(load.codes) <= ALLOWED, (load.codes, load.details)
    assert load.codes[grpc.StatusCode.OK] > 0
    assert load.details <= FIXED_MESSAGES
    load.check_every_answer_has_its_record()
    # The client library retries: right after its connections are cut (as by a restart),
    # the gateway may answer UNAVAILABLE once, and the partner still gets its answer.
    async with harness.client("police") as police:
        for _ in range(3):
            assert await asyncio.to_thread(_terminate_backends, database) > 0
            for _ in range(3):
                assert (await police.request_disclosure(case_id, PURPOSE, PHASE)).values


# -- SQLite ---------------------------------------------------------------------------------


@contextmanager
def _disk_full_at(limit: int) -> Iterator[None]:
    """No file of this process grows past ``limit`` bytes (a write beyond fails with EFBIG
    instead of raising SIGXFSZ), until the block ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@pytest.fixture
async def sqlite_harness(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[Harness]:
    url = f"sqlite:///{tmp_path / 'full' / 'ketenpoort.db'}"
    async with running_harness(url, dev_keys, shipped_policy) as harness:
        yield harness


def _largest_database_file(harness: Harness) -> int:
    database = Path(harness.db_url.removeprefix("sqlite:///"))
    files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
    return max(f.stat().st_size for f in files if f.exists())


async def _fill_disk(harness: Harness, seconds: float) -> int:
    # A little room, then the disk is full for the rest of the load.
    await asyncio.sleep(0.2)
    with _disk_full_at(_largest_database_file(harness) + 64 * 1024):
        await asyncio.sleep(seconds)
    return 1


async def test_a_full_sqlite_disk_is_unavailable_never_internal(
    sqlite_harness: Harness,
) -> None:
    harness = sqlite_harness
    case_id = await _case(harness)
    load = Load(harness, case_id)
    await load.run(asyncio.create_task(_fill_disk(harness, LOAD_S)))
    assert set(load.codes) <= ALLOWED, (load.codes, load.details)
    assert load.codes[grpc.StatusCode.UNAVAILABLE] > 0, "the disk never filled up"
    assert load.details <= FIXED_MESSAGES
    assert load.codes[grpc.StatusCode.OK] > 0
    load.check_every_answer_has_its_record()
    # Room again: the gateway answers as before.
    async with harness.client("police") as police:
        assert (await police.request_disclosure(case_id, PURPOSE, PHASE)).values


async def test_a_refusal_the_full_disk_cannot_record_is_unavailable_not_answered(
    sqlite_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """No refusal leaves without its record: while the log cannot be written, a call refused
    at authentication is told UNAVAILABLE (retry), one server-log line says so for many calls,
    and no traceback is written per call. With room again the refusal is answered and logged."""
    harness = sqlite_harness
    expired = {"now": time.time() - 3600, "lifetime_s": 300}
    log = harness.gateway.log
    before = len(log.list_records(kinds=[RecordKind.AUTH_REFUSAL], limit=10_000))
    codes: Counter[grpc.StatusCode] = Counter()
    details: set[str] = set()
    channel = harness.channel("police")
    stub = exchange_pb2_grpc.ExchangeServiceStub(channel)  # type: ignore[no-untyped-call]
    request = exchange_pb2.GetGatewayKeysRequest()
    try:
        with _disk_full_at(_largest_database_file(harness)):
            for _ in range(300):
                metadata = (("authorization", f"Bearer {harness.token(**expired)}"),)
                try:
                    await stub.GetGatewayKeys(request, metadata=metadata, timeout=10)
                except grpc.aio.AioRpcError as exc:
                    codes[exc.code()] += 1
                    details.add(exc.details() or "")
                if codes[grpc.StatusCode.UNAVAILABLE] >= 20:
                    break
        assert set(codes) <= {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNAVAILABLE}
        assert codes[grpc.StatusCode.UNAVAILABLE] >= 20, codes
        assert DATABASE_UNAVAILABLE in details
        # Every refusal answered as such has its record.
        recorded = len(log.list_records(kinds=[RecordKind.AUTH_REFUSAL], limit=10_000))
        assert recorded - before == codes[grpc.StatusCode.UNAUTHENTICATED]
        server_lines = [r for r in caplog.records if r.name == "ketenpoort.server"]
        assert not any(r.exc_info for r in server_lines)
        assert len([r for r in server_lines if "answered UNAVAILABLE" in r.getMessage()]) == 1
        # Room again: refused and recorded, as before.
        metadata = (("authorization", f"Bearer {harness.token(**expired)}"),)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetGatewayKeys(request, metadata=metadata, timeout=10)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        after = len(log.list_records(kinds=[RecordKind.AUTH_REFUSAL], limit=10_000))
        assert after == recorded + 1
        assert log.verify().ok
    finally:
        await channel.close()
