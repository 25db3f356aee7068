"""Wiring: builds the gateway from its configuration and serves it over grpc.aio.

This is the one module that knows every edge: it opens the store and the keystore, loads the
policy and the partner registry, connects the partners' source systems, and hands the use
cases their collaborators. A reloaded policy brings a fresh partner registry with it, as the
policy names the partners and their roles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
from grpc import aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server
from sqlalchemy import Engine

from adapters.channels import TlsMaterial
from adapters.grpc_source import GrpcSource
from gateway.api.v1 import (
    accountability_pb2,
    accountability_pb2_grpc,
    exchange_pb2,
    exchange_pb2_grpc,
)
from gateway.broker.break_glass_review import BreakGlassReviewQueue
from gateway.broker.casefile import CaseFile
from gateway.broker.context import BrokerContext, PolicyHolder
from gateway.broker.disclosure import Disclosures
from gateway.broker.disclosure_export import DisclosureExports
from gateway.broker.holds import ConfidentialityHolds
from gateway.broker.sources import Source
from gateway.core import CompiledPolicy
from gateway.crypto.keystore import Keystore
from gateway.crypto.layout import CaPaths, GatewayKeyPaths
from gateway.policyfiles import load_policy_dir
from gateway.reports.access_request import SubjectAccessReports
from gateway.server.accountability_service import AccountabilityService
from gateway.server.auth import TokenVerifier
from gateway.server.config import GatewayConfig, TlsMode
from gateway.server.exchange_service import ExchangeService
from gateway.server.interceptors import AuthInterceptor
from gateway.server.log_watch import LogWatch
from gateway.server.metrics import Metrics
from gateway.server.partners import PartnerRegistry, load_registry
from gateway.server.policy_reload import (
    PolicyReloader,
    ReloadOutcome,
    describe_issue,
    policy_snapshot,
)
from gateway.server.retention_task import RetentionTask, start_retention
from gateway.store.audit_log import AuditLog, CheckpointSigner
from gateway.store.cases import CaseRepository
from gateway.store.db import create_engine_for, init_schema
from gateway.store.holds import HoldStore
from gateway.store.partner_export import PartnerExportStore
from gateway.store.reviews import BreakGlassReviews
from gateway.store.snapshots import CaseSnapshots

log = logging.getLogger("ketenpoort.server")

SERVICE_NAMES = (
    exchange_pb2.DESCRIPTOR.services_by_name["ExchangeService"].full_name,
    accountability_pb2.DESCRIPTOR.services_by_name["AccountabilityService"].full_name,
)


@dataclass
class PartnerDirectory:
    """The partner registry in force, replaced together with the policy that names them."""

    current: PartnerRegistry


@dataclass
class Gateway:
    """A running gateway. Create with `start_gateway`, stop with `stop()`."""

    config: GatewayConfig
    server: aio.Server
    port: int
    policy: PolicyHolder
    partners: PartnerDirectory
    reloader: PolicyReloader
    log: AuditLog
    metrics: Metrics
    health: health.HealthServicer
    sources: dict[str, Source]
    engine: Engine
    snapshots: CaseSnapshots
    log_watch: LogWatch | None = None
    retention: RetentionTask | None = None

    @property
    def address(self) -> str:
        host = self.config.listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    @property
    def registry(self) -> PartnerRegistry:
        return self.partners.current

    async def reload_policy(self, trigger: str = "request") -> ReloadOutcome:
        """Reload the policy directory now; a broken policy leaves the one in force serving."""
        return await self.reloader.reload(trigger)

    async def stop(self, grace: float | None = 1.0) -> None:
        await self.reloader.stop()
        if self.log_watch is not None:
            await self.log_watch.stop()
        if self.retention is not None:
            await self.retention.stop()
        self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.log.close()
        await self.snapshots.close()
        for source in self.sources.values():
            await source.close()
        self.engine.dispose()
        self.metrics.up.set(0)


def utc_now() -> datetime:
    return datetime.now(UTC)


async def start_gateway(
    config: GatewayConfig,
    *,
    policy: CompiledPolicy | None = None,
    sources: dict[str, Source] | None = None,
    metrics: Metrics | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Gateway:
    """Start serving. `sources` (partner type -> adapter) overrides the configured endpoints;
    `policy` the policy read from `config.policy_dir`; `clock` the time the case file and the
    log are written with (and break-glass windows measured by)."""
    metrics = metrics or Metrics()
    # Taken before the files are read, so a change made during start-up is reloaded.
    on_disk = policy_snapshot(config.policy_dir)
    compiled = policy or _load_policy(config.policy_dir)
    holder = PolicyHolder(compiled)
    metrics.policy_in_force(compiled.version)
    keystore = Keystore.open(config.keys_dir)
    partners = PartnerDirectory(load_registry(compiled, config.keys_dir))

    engine = create_engine_for(config.database_url)
    await asyncio.to_thread(init_schema, engine)
    audit = AuditLog(
        engine,
        signer=CheckpointSigner(keystore.signing_key, config.log_origin),
        checkpoint_every=config.checkpoint_every_records,
        checkpoint_interval_s=config.checkpoint_interval_s,
        on_batch=lambda b: metrics.log_batch_committed(b.size, b.seconds, b.append_seconds),
    )
    await audit.start()
    log_watch = LogWatch(audit, metrics, interval_s=config.audit_verify_interval_s)
    log_watch.start()
    source_map = sources if sources is not None else _connect_sources(config, compiled)
    snapshots = CaseSnapshots(engine)
    review_queue = BreakGlassReviewQueue(
        BreakGlassReviews(engine), audit.append, clock, metrics.open_break_glass_reviews
    )
    await review_queue.refresh_open_count()
    exports = DisclosureExports(
        PartnerExportStore(engine),
        audit.append,
        clock,
        policy=lambda: holder.current,
        source_partners=[endpoint.partner_id for endpoint in config.sources],
    )
    hold_store = HoldStore(engine)
    subject_access = SubjectAccessReports(
        audit, hold_store, lambda: holder.current, keystore.pseudonym_key, clock
    )

    ctx = BrokerContext(
        policy=holder,
        cases=CaseRepository(engine),
        snapshots=snapshots,
        log=audit,
        keystore=keystore,
        sealing_keys=lambda: partners.current.sealing_keys,
        sources=source_map,
        source_deadline_s=config.source_deadline_s,
        clock=clock,
    )

    casefile = CaseFile(ctx)
    disclosures = Disclosures(ctx, casefile, metrics.source_call)
    holds = ConfidentialityHolds(ctx, hold_store)
    verifier = TokenVerifier(
        lambda: partners.current.partners,
        audience=config.audience,
        algorithms=config.algorithms,
        leeway_s=config.token_leeway_s,
        max_lifetime_s=config.max_token_lifetime_s,
    )
    server = aio.server(
        interceptors=[AuthInterceptor(verifier, metrics)],
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
        ],
    )
    exchange_pb2_grpc.add_ExchangeServiceServicer_to_server(  # type: ignore[no-untyped-call]
        ExchangeService(casefile, disclosures, metrics, exports=exports, holds=holds), server
    )
    accountability_pb2_grpc.add_AccountabilityServiceServicer_to_server(  # type: ignore[no-untyped-call]
        AccountabilityService(audit, metrics, reviews=review_queue, subject_access=subject_access),
        server,
    )
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = _bind(server, config)
    await server.start()
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def put_in_force(new: CompiledPolicy) -> None:
        # The registry (partners and their keys, as the new policy names them) is read
        # before anything changes; then both are swapped with no await in between.
        registry = await asyncio.to_thread(load_registry, new, config.keys_dir)
        partners.current = registry
        holder.swap(new)
        verifier.forget()  # cached tokens were checked against the old partners' keys

    reloader = PolicyReloader(
        config.policy_dir,
        holder,
        metrics,
        interval_s=config.policy_reload_interval_s,
        apply=put_in_force,
        loaded=on_disk,
    )
    if policy is None:
        # The directory is watched only when the gateway read its policy from it; a policy
        # handed in (tests, benchmarks) stays until reload_policy() is called.
        reloader.start()
    retention = start_retention(engine, config, metrics, clock)
    metrics.up.set(1)
    return Gateway(
        config,
        server,
        port,
        holder,
        partners,
        reloader,
        audit,
        metrics,
        health_servicer,
        dict(source_map),
        engine,
        snapshots,
        log_watch=log_watch,
        retention=retention,
    )


def _load_policy(directory: Path) -> CompiledPolicy:
    compiled = load_policy_dir(directory)
    for warning in compiled.warnings:
        log.warning("%s", describe_issue(directory, warning))
    return compiled


def start_metrics_endpoint(metrics: Metrics, port: int, addr: str = "127.0.0.1") -> None:
    start_http_server(port, addr=addr, registry=metrics.registry)


def _bind(server: aio.Server, config: GatewayConfig) -> int:
    if config.tls_mode is TlsMode.INSECURE:
        port = server.add_insecure_port(config.listen)
    else:
        port = server.add_secure_port(
            config.listen, server_credentials(config.keys_dir, config.tls_mode)
        )
    if port == 0:
        raise OSError(f"cannot listen on {config.listen}")
    return port


def server_credentials(keys_dir: Path, mode: TlsMode) -> grpc.ServerCredentials:
    paths = GatewayKeyPaths.under(keys_dir)
    ca = CaPaths.under(keys_dir)
    return grpc.ssl_server_credentials(
        [(paths.tls_key.read_bytes(), paths.tls_cert.read_bytes())],
        root_certificates=ca.cert.read_bytes() if mode is TlsMode.MUTUAL else None,
        require_client_auth=mode is TlsMode.MUTUAL,
    )


def gateway_client_tls(keys_dir: Path) -> TlsMaterial:
    """TLS material the gateway presents to partner source systems (mutual TLS)."""
    paths = GatewayKeyPaths.under(keys_dir)
    return TlsMaterial(
        ca_pem=CaPaths.under(keys_dir).cert.read_bytes(),
        cert_pem=paths.tls_cert.read_bytes(),
        key_pem=paths.tls_key.read_bytes(),
    )


def _connect_sources(config: GatewayConfig, policy: CompiledPolicy) -> dict[str, Source]:
    sources: dict[str, Source] = {}
    tls = gateway_client_tls(config.keys_dir) if any(s.tls for s in config.sources) else None
    for endpoint in config.sources:
        partner_type = policy.partner(endpoint.partner_id).type
        if partner_type in sources:
            log.warning("a second source for partner type %s is ignored", partner_type)
            continue
        sources[partner_type] = GrpcSource(endpoint.address, tls if endpoint.tls else None)
    return sources
