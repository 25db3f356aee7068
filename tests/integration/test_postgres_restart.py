"""PostgreSQL restarted under load, on a cluster of the test's own (never the shared server):
partners keep calling RequestDisclosure while the server goes down and comes back.

- every call that is not answered OK is answered UNAVAILABLE (which partners retry), never
  INTERNAL or UNKNOWN;
- readiness goes NOT_SERVING while the database is away, on the probe port and in the gRPC
  health service, and back to SERVING when it returns, by itself;
- no answered call lacks its log record, and the log verifies afterwards, both read straight
  from the database and with ``ketenpoort audit verify``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from gateway.core import CompiledPolicy
from gateway.server.health_settings import HealthSettings
from tests.integration.disclosure_load import ALLOWED, DisclosureLoad, until
from tests.integration.harness import running_harness
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_accounting import check_accounts_for, read_log, verify_with_cli
from tests.integration.private_postgres import private_cluster
from tests.integration.probes import EXCHANGE, NOT_SERVING, SERVING, check, probe

WORKERS = 6
# Answers each phase waits for: before the restart and after the server is back.
ANSWERS_PER_PHASE = 30


@pytest.mark.slow
async def test_a_postgresql_restart_under_load(
    dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    probes = HealthSettings(probe_address="127.0.0.1:0", readiness_interval_s=0.2)
    with private_cluster() as pg:
        async with running_harness(
            pg.url, dev_keys, shipped_policy, config_changes={"health": probes}
        ) as harness:
            port = harness.gateway.probe_port
            assert port is not None
            async with harness.client("police") as police, harness.client("zvh") as director:
                case_id = await register(police)
                await to_case_meeting(director, case_id)
            load = DisclosureLoad(harness, case_id)
            workers = [asyncio.create_task(load.worker()) for _ in range(WORKERS)]
            seen_away: list[tuple[int, str, int | grpc.StatusCode]] = []
            try:
                async def answered(n: int) -> bool:
                    return len(load.answers) >= n

                await until("answers before the restart", lambda: answered(ANSWERS_PER_PHASE))
                async with harness.channel() as channel:
                    assert await check(channel, "") == SERVING

                    await asyncio.to_thread(pg.stop, "fast")

                    async def not_ready() -> bool:
                        status, body = await probe(port, "/readyz")
                        if status != 503 or "database:" not in body:
                            return False
                        seen_away.append((status, body, await check(channel, EXCHANGE)))
                        return True

                    await until("readiness NOT_SERVING with the database away", not_ready)
                    answered_before_start = len(load.answers)
                    await asyncio.to_thread(pg.start)

                    async def ready() -> bool:
                        return await probe(port, "/readyz") == (200, "ok\n")

                    await until("readiness SERVING with the database back", ready)
                    assert await check(channel, "") == SERVING
                    assert await check(channel, EXCHANGE) == SERVING
                    await until(
                        "answers after the restart",
                        lambda: answered(answered_before_start + ANSWERS_PER_PHASE),
                    )
            finally:
                load.stop.set()
                await asyncio.gather(*workers)

            # While the database was away, both the probe and the health service said so.
            assert seen_away and seen_away[0][2] == NOT_SERVING, seen_away
            assert set(load.codes) <= ALLOWED, (load.codes, load.details)
            assert load.codes[grpc.StatusCode.UNAVAILABLE] > 0, "no call met the outage"
            # Every answered call has its record, and the log verifies (read after the stop,
            # which signs the last checkpoint).
        check_accounts_for(await asyncio.to_thread(read_log, pg.url, dev_keys), load.answers)
        assert await asyncio.to_thread(verify_with_cli, pg.url, dev_keys) == 0
