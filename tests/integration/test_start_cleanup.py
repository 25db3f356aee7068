"""A start that fails at a later step closes what the earlier steps opened: no thread, task,
database connection or port is left behind, and the step's own error is what the caller
sees. The failures are real ones: a source the policy does not know, a gRPC address another
socket holds, a setting a background task refuses, a database that cannot be reached."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.core import UnknownPartner
from gateway.server.app import start_gateway
from gateway.server.config import GatewayConfig, SourceEndpoint
from gateway.server.health_settings import HealthSettings
from gateway.server.metrics import Metrics
from gateway.store.errors import StoreError
from tests.integration.harness import gateway_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _held_port() -> Iterator[int]:
    """A port a plain socket listens on (without SO_REUSEPORT: nobody can share it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _threads() -> set[str]:
    # The event loop's executor keeps its worker threads for reuse; they hold nothing.
    return {
        t.name for t in threading.enumerate()
        if t.is_alive() and not t.name.startswith(("asyncio_", "ThreadPoolExecutor"))
    }


def _open_files_under(directory: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def _fails_and_leaves_nothing(
    config: GatewayConfig, error: type[BaseException], match: str, data: Path
) -> None:
    threads, tasks = _threads(), asyncio.all_tasks()
    metrics = Metrics()
    with pytest.raises(error, match=match):
        await start_gateway(config, metrics=metrics)
    # Stopped tasks may take one turn of the loop to be gone.
    await asyncio.sleep(0)
    assert asyncio.all_tasks() <= tasks, asyncio.all_tasks() - tasks
    assert _threads() <= threads, _threads() - threads
    assert _open_files_under(data) == []
    probe_port = config.health.probe_host_port[1]
    assert _port_is_free(probe_port), "the probe port was left open"
    assert metrics.registry.get_sample_value("ketenpoort_up") == 0


def _config(tmp_path: Path, dev_keys: Path, **changes: object) -> tuple[GatewayConfig, Path]:
    data = tmp_path / "data"
    url = f"sqlite:///{data / 'ketenpoort.db'}"
    probes = HealthSettings(probe_address=f"127.0.0.1:{_free_port()}")
    return gateway_config(url, dev_keys, health=probes, **changes), data


async def test_a_source_the_policy_does_not_know(tmp_path: Path, dev_keys: Path) -> None:
    # Fails while the services are built: the log writer and engine are open by then.
    config, data = _config(
        tmp_path, dev_keys, sources=(SourceEndpoint("nobody-known", "127.0.0.1:1"),)
    )
    await _fails_and_leaves_nothing(config, UnknownPartner, "nobody-known", data)


async def test_a_grpc_address_another_socket_holds(tmp_path: Path, dev_keys: Path) -> None:
    with _held_port() as port:
        config, data = _config(tmp_path, dev_keys, listen=f"127.0.0.1:{port}")
        await _fails_and_leaves_nothing(config, RuntimeError, "Failed to bind", data)


async def test_a_background_task_that_refuses_its_setting(
    tmp_path: Path, dev_keys: Path
) -> None:
    # The last step: server started, log watch and policy/registry watchers running.
    config, data = _config(
        tmp_path, dev_keys, retention_interval_s=-1.0, policy_reload_interval_s=0.05
    )
    await _fails_and_leaves_nothing(config, ValueError, "interval_s must be 0", data)


async def test_a_database_that_cannot_be_reached(tmp_path: Path, dev_keys: Path) -> None:
    config, data = _config(tmp_path, dev_keys)
    closed = _free_port()
    config = config.with_overrides(
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:{closed}/none"
    )
    await _fails_and_leaves_nothing(config, StoreError, "creating the schema failed", data)


async def test_a_taken_probe_port_opens_nothing(tmp_path: Path, dev_keys: Path) -> None:
    with _held_port() as port:
        config, data = _config(tmp_path, dev_keys)
        config = config.with_overrides(health=HealthSettings(probe_address=f"127.0.0.1:{port}"))
        threads = _threads()
        with pytest.raises(OSError, match="cannot serve probes on"):
            await start_gateway(config)
        assert _threads() <= threads
        assert not (data / "ketenpoort.db").exists(), "the database was opened"
