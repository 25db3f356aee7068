"""Health/Watch streams cost the gateway nothing it needs to answer or to stop.

`ketenpoort serve` runs as a process of its own. Many callers watch its health at once; it must
go on answering every other call, tell the watchers NOT_SERVING when it stops, and end on
SIGTERM. (A thread-pool health servicer parked one executor thread per watcher for good: after
a handful of watchers no call was answered and SIGTERM no longer ended the process.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.server.health import HealthService
from tests.integration.serve_process import start_serve, write_config

WATCHERS = 50
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _statuses(call: aio.UnaryStreamCall[object, health_pb2.HealthCheckResponse]) -> list[int]:
    """Every status a watch received until its stream ended (the gateway stopped)."""
    seen: list[int] = []
    try:
        while (reply := await call.read()) is not aio.EOF:
            seen.append(reply.status)
    except aio.AioRpcError:
        pass  # the stream is cut when the server stops; what it said before is what counts
    return seen


async def test_fifty_watchers_leave_the_gateway_answering_and_stopping(
    tmp_path: Path, dev_keys: Path
) -> None:
    data = tmp_path / "data"
    config = write_config(
        tmp_path / "gateway.toml",
        database_url=f"sqlite:///{data / 'ketenpoort.db'}",
        keys=dev_keys,
        data=data,
        sources={},
    )
    serving = await asyncio.to_thread(start_serve, config, tmp_path / "home")
    try:
        async with aio.insecure_channel(serving.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
            watches = [
                health.Watch(health_pb2.HealthCheckRequest(service=service))
                for service in ("", "ketenpoort.v1.ExchangeService") * (WATCHERS // 2)
            ]
            firsts = await asyncio.wait_for(
                asyncio.gather(*(call.read() for call in watches)), timeout=20
            )
            assert {reply.status for reply in firsts} == {SERVING}
            endings = [asyncio.create_task(_statuses(call)) for call in watches]

            # Every other call is still answered, health checks and partner calls alike.
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == SERVING
            async with serving.client(dev_keys, "police") as police:
                keys = await asyncio.wait_for(police.gateway_keys(), timeout=5)
            assert keys.keys

            code = await asyncio.to_thread(serving.stop)
            assert code == 0, serving.output
            # Each watcher heard that the gateway stopped serving before its stream ended.
            for seen in await asyncio.wait_for(asyncio.gather(*endings), timeout=10):
                assert seen and seen[-1] == NOT_SERVING, seen
    finally:
        serving.kill()


@contextlib.asynccontextmanager
async def _health_server(max_watchers: int) -> AsyncIterator[tuple[HealthService, str]]:
    server = aio.server()
    service = HealthService(max_watchers=max_watchers)
    service.add_to_server(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield service, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def test_watchers_beyond_the_cap_are_refused_and_checks_still_answer() -> None:
    async with _health_server(max_watchers=3) as (service, address):
        async with aio.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
            watches = [health.Watch(health_pb2.HealthCheckRequest()) for _ in range(3)]
            for call in watches:
                assert (await call.read()).status == SERVING
            extra = health.Watch(health_pb2.HealthCheckRequest())
            with pytest.raises(aio.AioRpcError) as refused:
                await extra.read()
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == SERVING
            # A watcher that leaves frees its place.
            watches[0].cancel()
            for _ in range(100):
                if service.watchers < 3:
                    break
                await asyncio.sleep(0.01)
            again = health.Watch(health_pb2.HealthCheckRequest())
            assert (await again.read()).status == SERVING


async def test_a_status_set_from_another_thread_reaches_watchers_in_order() -> None:
    service_name = "ketenpoort.v1.AccountabilityService"
    async with _health_server(max_watchers=10) as (service, address):
        service.set(service_name, SERVING)
        async with aio.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
            watch = health.Watch(health_pb2.HealthCheckRequest(service=service_name))
            assert (await watch.read()).status == SERVING
            await asyncio.to_thread(service.set, service_name, NOT_SERVING)
            assert (await asyncio.wait_for(watch.read(), 5)).status == NOT_SERVING
            reply = await health.Check(
                health_pb2.HealthCheckRequest(service=service_name), timeout=5
            )
            assert reply.status == NOT_SERVING
            service.set(service_name, SERVING)
            assert (await asyncio.wait_for(watch.read(), 5)).status == SERVING
            listed = await health.List(health_pb2.HealthListRequest(), timeout=5)
            assert dict(listed.statuses)[service_name].status == SERVING

            service.enter_graceful_shutdown()
            assert (await asyncio.wait_for(watch.read(), 5)).status == NOT_SERVING
            assert await asyncio.wait_for(watch.read(), 5) is aio.EOF
            # Shutting down is for good.
            service.set(service_name, SERVING)
            reply = await health.Check(
                health_pb2.HealthCheckRequest(service=service_name), timeout=5
            )
            assert reply.status == NOT_SERVING
            with pytest.raises(aio.AioRpcError) as unknown:
                await health.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=5)
            assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
