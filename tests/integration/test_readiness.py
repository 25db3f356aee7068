"""Readiness apart from liveness, over the real probe port (plain HTTP) and the real gRPC
health service: what each says while serving, under a standing log alarm, with too little
disk, during the drain of a stopping gateway, and when the probe address is taken."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from gateway.core import CompiledPolicy
from gateway.server.health_settings import HealthSettings
from gateway.store.log_alarm import LogAlarm
from tests.integration.harness import Harness, gateway_config, running_harness
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_accounting import PHASE, PURPOSE
from tests.integration.probes import (
    ACCOUNTABILITY,
    EXCHANGE,
    NOT_SERVING,
    SERVING,
    check,
    probe,
)

PROBES = HealthSettings(probe_address="127.0.0.1:0", readiness_interval_s=0.2)


@pytest.fixture
async def probed(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[Harness]:
    async with running_harness(
        db_url, dev_keys, shipped_policy, config_changes={"health": PROBES}
    ) as harness:
        yield harness


def _port(harness: Harness) -> int:
    port = harness.gateway.probe_port
    assert port is not None
    return port


async def test_a_serving_gateway_is_live_and_ready(probed: Harness) -> None:
    port = _port(probed)
    assert await probe(port, "/livez") == (200, "ok\n")
    assert await probe(port, "/readyz") == (200, "ok\n")
    assert (await probe(port, "/metrics"))[0] == 404
    async with probed.channel() as channel:
        for service in ("", EXCHANGE, ACCOUNTABILITY):
            assert await check(channel, service) == SERVING
    assert probed.gateway.metrics.registry.get_sample_value("ketenpoort_ready") == 1


async def test_a_log_alarm_is_not_a_liveness_or_readiness_failure(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    """A log that failed its check stops signing and the accountability service reports
    NOT_SERVING, but the replica stays live and ready: every replica reads the same log."""
    url = f"sqlite:///{tmp_path / 'alarm' / 'ketenpoort.db'}"
    checkpoints = gateway_config(url, dev_keys).checkpoints_path
    LogAlarm(checkpoints).raise_("record 3 does not chain", 3, None)
    async with running_harness(
        url, dev_keys, shipped_policy, config_changes={"health": PROBES}
    ) as harness:
        port = _port(harness)
        assert await probe(port, "/livez") == (200, "ok\n")
        assert await probe(port, "/readyz") == (200, "ok\n")
        async with harness.channel() as channel:
            assert await check(channel, ACCOUNTABILITY) == NOT_SERVING
            assert await check(channel, "") == SERVING
            assert await check(channel, EXCHANGE) == SERVING
        # The replica keeps answering disclosures.
        async with harness.client("police") as police:
            await register(police)


async def test_too_little_disk_makes_the_replica_not_ready(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    url = f"sqlite:///{tmp_path / 'disk' / 'ketenpoort.db'}"
    # More free space than any disk here has: the check must fail, naming what is short.
    wanting = HealthSettings(
        probe_address="127.0.0.1:0", readiness_interval_s=0.2, min_free_disk_mb=1 << 40
    )
    async with running_harness(
        url, dev_keys, shipped_policy, config_changes={"health": wanting}
    ) as harness:
        status, body = await probe(_port(harness), "/readyz")
        assert status == 503
        assert body.startswith("disk: ") and "database file" in body, body
        assert "checkpoint files" in body
        assert await probe(_port(harness), "/livez") == (200, "ok\n")
        async with harness.channel() as channel:
            assert await check(channel, "") == NOT_SERVING
            assert await check(channel, EXCHANGE) == NOT_SERVING
        assert harness.gateway.metrics.registry.get_sample_value("ketenpoort_ready") == 0


async def _until(condition: object, what: str) -> None:
    for _ in range(400):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never: {what}")


async def test_health_check_answers_not_serving_during_the_drain(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    """While a stopping gateway drains, Check answers NOT_SERVING (not UNAVAILABLE), /readyz
    503 "draining", /livez 200, and calls are still answered."""
    url = f"sqlite:///{tmp_path / 'drain' / 'ketenpoort.db'}"
    async with running_harness(
        url, dev_keys, shipped_policy, config_changes={"health": PROBES}
    ) as harness:
        gateway = harness.gateway
        port = _port(harness)
        async with harness.client("police") as police, harness.client("zvh") as director:
            case_id = await register(police)
            await to_case_meeting(director, case_id)
            readiness = gateway.readiness
            assert readiness is not None
            stopping = asyncio.create_task(gateway.stop(grace=5.0, drain_s=3.0))
            await _until(lambda: not readiness.ready, "the drain began")
            async with harness.channel() as channel:
                for service in ("", EXCHANGE, ACCOUNTABILITY):
                    assert await check(channel, service) == NOT_SERVING
            status, body = await probe(port, "/readyz")
            assert status == 503 and "draining" in body
            assert await probe(port, "/livez") == (200, "ok\n")
            answer = await police.request_disclosure(case_id, PURPOSE, PHASE)
            assert answer.values
            assert not stopping.done(), "the drain ended before it was looked at"
            await stopping
        # Stopped: the probe port is closed with the gateway.
        with pytest.raises(OSError):
            await probe(port, "/livez")


async def test_a_taken_probe_address_stops_the_start(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        url = f"sqlite:///{tmp_path / 'taken' / 'ketenpoort.db'}"
        with pytest.raises(OSError, match="cannot serve probes on"):
            async with running_harness(
                url, dev_keys, shipped_policy,
                config_changes={"health": HealthSettings(probe_address=address)},
            ):
                pass


def test_grpc_status_codes_are_what_the_probes_compare_with() -> None:
    # check() returns a grpc.StatusCode on failure: never equal to a serving status.
    assert grpc.StatusCode.UNAVAILABLE != NOT_SERVING
