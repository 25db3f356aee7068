"""A full disk under load (SQLite): the log writer's commits fail, readiness goes NOT_SERVING
naming the log writer, and comes back to SERVING by itself once there is room again; calls
meanwhile are answered OK or UNAVAILABLE, and every answer has its record.

The disk fills up as in test_database_away: a file-size limit (RLIMIT_FSIZE) on the test
process, which is to SQLite a failed write (EFBIG), as a full disk (ENOSPC) is.
"""

from __future__ import annotations

import asyncio
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from gateway.core import CompiledPolicy
from gateway.server.health_settings import HealthSettings
from tests.integration.disclosure_load import ALLOWED, DisclosureLoad, until
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_accounting import check_accounts_for, read_log
from tests.integration.probes import EXCHANGE, NOT_SERVING, SERVING, check, probe

WORKERS = 4
ANSWERS_PER_PHASE = 20


@contextmanager
def _disk_full_at(limit: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def _largest_database_file(harness: Harness) -> int:
    database = Path(harness.db_url.removeprefix("sqlite:///"))
    files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
    return max(f.stat().st_size for f in files if f.exists())


@pytest.mark.slow
async def test_a_full_disk_makes_the_replica_not_ready_until_there_is_room(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    url = f"sqlite:///{tmp_path / 'full' / 'ketenpoort.db'}"
    probes = HealthSettings(probe_address="127.0.0.1:0", readiness_interval_s=0.2)
    async with running_harness(
        url, dev_keys, shipped_policy, config_changes={"health": probes}
    ) as harness:
        port = harness.gateway.probe_port
        assert port is not None
        async with harness.client("police") as police, harness.client("zvh") as director:
            case_id = await register(police)
            await to_case_meeting(director, case_id)
        load = DisclosureLoad(harness, case_id)
        workers = [asyncio.create_task(load.worker()) for _ in range(WORKERS)]
        seen_full: list[tuple[str, int | grpc.StatusCode]] = []
        try:
            async def answered(n: int) -> bool:
                return len(load.answers) >= n

            await until("answers before the disk fills", lambda: answered(ANSWERS_PER_PHASE))
            async with harness.channel() as channel:
                with _disk_full_at(_largest_database_file(harness) + 64 * 1024):

                    async def not_ready() -> bool:
                        status, body = await probe(port, "/readyz")
                        if status != 503 or "log_writer:" not in body:
                            return False
                        seen_full.append((body, await check(channel, EXCHANGE)))
                        return True

                    await until("readiness NOT_SERVING with the disk full", not_ready)
                answered_when_freed = len(load.answers)

                async def ready() -> bool:
                    return await probe(port, "/readyz") == (200, "ok\n")

                await until("readiness SERVING with room again", ready)
                assert await check(channel, EXCHANGE) == SERVING
                await until(
                    "answers after the disk has room",
                    lambda: answered(answered_when_freed + ANSWERS_PER_PHASE),
                )
        finally:
            load.stop.set()
            await asyncio.gather(*workers)
        assert seen_full and seen_full[0][1] == NOT_SERVING, seen_full
        assert set(load.codes) <= ALLOWED, (load.codes, load.details)
    check_accounts_for(await asyncio.to_thread(read_log, url, dev_keys), load.answers)
