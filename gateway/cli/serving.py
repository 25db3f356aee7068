"""`ketenpoort serve`: run the gateway until SIGINT or SIGTERM; SIGHUP reloads the policy."""

from __future__ import annotations

import asyncio
import logging
import signal

from gateway.cli.partner_connect import connect_lines
from gateway.crypto.devkeys import init_dev_keys
from gateway.policyfiles import load_policy_dir
from gateway.registry.dev import register_dev_partners
from gateway.server.app import Gateway, start_gateway, start_metrics_endpoint
from gateway.server.config import GatewayConfig
from gateway.server.policy_reload import ReloadOutcome

log = logging.getLogger("ketenpoort.serve")


def ensure_dev_keys(config: GatewayConfig) -> None:
    """On the embedded default, create development keys on first start (and for partners
    added to the policy since)."""
    partners = sorted(load_policy_dir(config.policy_dir).partners)
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    init_dev_keys(config.keys_dir, partners)
    register_dev_partners(config.keys_dir, config.registry_path, partners)


async def serve_forever(config: GatewayConfig, *, embedded: bool) -> int:
    if embedded:
        ensure_dev_keys(config)
    gateway = await start_gateway(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[ReloadOutcome]] = set()
    loop.add_signal_handler(signal.SIGHUP, _reload_in_background, gateway, reloads)
    # Signals are handled before the gateway announces itself, so whoever waits for the
    # announcement (or the metrics endpoint) may send them.
    if config.metrics_port:
        start_metrics_endpoint(gateway.metrics, config.metrics_port)
    _announce(gateway, embedded)
    await stop.wait()
    print("ketenpoort: stopping (finishing calls in flight)")
    await gateway.stop(grace=5.0)
    return 0


def _reload_in_background(gateway: Gateway, running: set[asyncio.Task[ReloadOutcome]]) -> None:
    """SIGHUP: reload the policy; the reloader logs the outcome. The task is kept referenced
    until it ends, as the loop holds only a weak reference to it."""
    task: asyncio.Task[ReloadOutcome] = asyncio.get_running_loop().create_task(
        gateway.reload_policy("SIGHUP")
    )
    running.add(task)
    task.add_done_callback(running.discard)


def _announce(gateway: Gateway, embedded: bool) -> None:
    c = gateway.config
    lines = [
        f"ketenpoort: serving on {gateway.address} ({c.tls_mode.value})",
        f"  policy      {c.policy_dir} (version {gateway.policy.current.version[:19]}…)",
        "              " + _reload_note(c),
        f"  database    {c.database_url}",
        f"  keys        {c.keys_dir}" + ("  [development keys]" if embedded else ""),
    ]
    if c.metrics_port:
        lines.append(f"  metrics     http://127.0.0.1:{c.metrics_port}/metrics")
    lines += [
        "  health      grpc.health.v1.Health/Check; reflection is on",
        *connect_lines(c, gateway.address),
    ]
    if not gateway.sources:
        lines.append(
            "  no partner source systems are configured: partner fields will be unavailable"
        )
    if gateway.registry.missing_keys:
        lines.append(f"  partners without keys: {', '.join(gateway.registry.missing_keys)}")
    print("\n".join(lines), flush=True)


def _reload_note(c: GatewayConfig) -> str:
    if c.policy_reload_interval_s > 0:
        return f"reloaded on SIGHUP and on change (checked every {c.policy_reload_interval_s:g} s)"
    return "reloaded on SIGHUP"
