"""`ketenpoort serve`: run the gateway until SIGINT or SIGTERM; SIGHUP reloads the policy."""

from __future__ import annotations

import asyncio
import logging
import signal

from gateway.cli.partner_connect import connect_lines
from gateway.core.errors import PolicyError
from gateway.crypto.devkeys import init_dev_keys
from gateway.crypto.errors import CryptoError
from gateway.policyfiles import load_policy_dir
from gateway.registry.dev import register_dev_partners
from gateway.runtime.policy_reload import ReloadOutcome
from gateway.server.app import Gateway, start_gateway, start_metrics_endpoint
from gateway.server.config import ConfigError, GatewayConfig
from gateway.server.logging_setup import logging_configured
from gateway.server.preflight import StartupRefused, check_gateway, in_use, one_line_summary
from gateway.server.tracing_setup import TracingUnavailable, start_tracing

log = logging.getLogger("ketenpoort.serve")


def ensure_dev_keys(config: GatewayConfig) -> None:
    """On the embedded default, create development keys on first start (and for partners
    added to the policy since)."""
    partners = sorted(load_policy_dir(config.policy_dir).partners)
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    init_dev_keys(config.keys_dir, partners)
    register_dev_partners(config.keys_dir, config.registry_path, partners)


async def serve_forever(config: GatewayConfig, *, embedded: bool) -> int:
    with logging_configured(config.logging):
        return await _checked_serve(config, embedded)


async def _checked_serve(config: GatewayConfig, embedded: bool) -> int:
    # Every start-up problem is one line on stderr (ConfigError: the file, exit 2;
    # StartupRefused: what it names, exit 1; gateway.cli.main), never a traceback.
    if embedded:
        try:
            ensure_dev_keys(config)
        except (CryptoError, PolicyError, OSError) as exc:
            raise StartupRefused(f"development keys in {config.keys_dir}: {exc}") from None
    problems = await asyncio.to_thread(check_gateway, config)
    if problems:
        raise StartupRefused(one_line_summary(problems))
    try:
        tracing = start_tracing(config.tracing)
    except TracingUnavailable as exc:
        raise ConfigError(str(exc)) from None
    try:
        return await _serve(config, embedded)
    finally:
        if tracing is not None:
            tracing.stop()


async def _serve(config: GatewayConfig, embedded: bool) -> int:
    try:
        gateway = await start_gateway(config)
    except Exception as exc:
        log.debug("the gateway did not start", exc_info=True)
        raise StartupRefused(start_failure(config, exc)) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[ReloadOutcome]] = set()
    loop.add_signal_handler(signal.SIGHUP, _reload_in_background, gateway, reloads)
    # Signals are handled before the gateway announces itself, so whoever waits for the
    # announcement (or the metrics endpoint) may send them.
    endpoint = config.metrics_endpoint
    if endpoint is not None:
        start_metrics_endpoint(gateway.metrics, endpoint.port, endpoint.host)
    _announce(gateway, embedded)
    await stop.wait()
    print("ketenpoort: stopping (finishing calls in flight)")
    await gateway.stop(grace=5.0)
    return 0


def start_failure(config: GatewayConfig, exc: Exception) -> str:
    """One line for what stopped a start the checks before it let through (a race for the
    address, a database gone in between)."""
    if isinstance(exc, RuntimeError) and "bind" in str(exc).lower():
        return f"listen: {in_use(config.listen)}"
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"the gateway did not start: {type(exc).__name__}: {text}"[:500]


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
    if c.metrics_endpoint is not None:
        lines.append(f"  metrics     {c.metrics_endpoint.url}")
    if gateway.probe_port is not None:
        host = c.health.probe_host_port[0]
        lines.append(f"  probes      http://{host}:{gateway.probe_port}/livez and /readyz")
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
