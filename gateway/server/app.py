"""Wiring: builds the gateway from its configuration and serves it over grpc.aio.

This is the one module that knows every edge: it opens the store and the keystore, loads the
policy and the partner registry, connects the partners' source systems, and hands the use
cases their collaborators. A reloaded policy brings a fresh partner registry with it, as the
policy names the partners and their roles.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from grpc import aio
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server
from sqlalchemy import Engine

from adapters.channels import TlsMaterial
from gateway.api.v1 import (
    accountability_pb2,
    accountability_pb2_grpc,
    cases_pb2,
    cases_pb2_grpc,
    exchange_pb2,
    exchange_pb2_grpc,
    plan_pb2,
    plan_pb2_grpc,
)
from gateway.broker.break_glass_review import BreakGlassReviewQueue, ReviewComments
from gateway.broker.case_events import CaseEvents, CaseEventSink
from gateway.broker.case_persons import CasePersons
from gateway.broker.case_plan import CasePlan
from gateway.broker.case_plan_parts import MeetingsPart, OpenActionsPart
from gateway.broker.case_work import CaseWork
from gateway.broker.casefile import CaseFile
from gateway.broker.completion import finish_running_work
from gateway.broker.context import BrokerContext, PolicyHolder, SealingKey
from gateway.broker.disclosure import Disclosures
from gateway.broker.disclosure_export import DisclosureExports
from gateway.broker.free_texts import FreeTexts
from gateway.broker.holds import ConfidentialityHolds
from gateway.broker.plan_monitor import PlanMonitor
from gateway.broker.request_ids import RequestIds
from gateway.broker.signed_gateway_keys import SignedGatewayKeys
from gateway.broker.source_origin import AnswerOrigins
from gateway.broker.source_requests import RequestSealer, SourceRequestPolicy
from gateway.broker.sources import Source
from gateway.broker.submission_gate import SubmissionGate
from gateway.core import CompiledPolicy
from gateway.crypto.keystore import Keystore
from gateway.crypto.layout import CaPaths, GatewayKeyPaths
from gateway.crypto.live_keystore import LiveKeystore
from gateway.crypto.provider import HpkeRecipient, KeyRing
from gateway.policyfiles import load_policy_dir
from gateway.reports.access_request import SubjectAccessReports
from gateway.runtime.key_refresh import follow_key_changes
from gateway.runtime.log_watch import LogWatch
from gateway.runtime.plan_monitor import PlanMonitorTask
from gateway.runtime.policy_reload import (
    PolicyReloader,
    ReloadOutcome,
    Snapshot,
    describe_issue,
    policy_snapshot,
)
from gateway.runtime.readiness import Liveness, Readiness, ReadinessChecks, ServingReport
from gateway.runtime.registry_reload import RegistryReloader
from gateway.runtime.retention import RetentionTask, start_retention
from gateway.runtime.rewrap import RewrapTask, start_rewrap
from gateway.server import health
from gateway.server.accountability_service import AccountabilityService
from gateway.server.auth import RegisteredPartner, TokenVerifier
from gateway.server.auth_refusals import refusal_recorder
from gateway.server.case_plan_service import PLAN_PART_WRITERS, CasePlanService
from gateway.server.case_service import CaseService
from gateway.server.config import GatewayConfig, TlsMode
from gateway.server.exchange_service import ExchangeService
from gateway.server.interceptors import AuthInterceptor
from gateway.server.limit_interceptor import CallerKeys, LimitInterceptor
from gateway.server.limit_report import LimitReport
from gateway.server.limits import CallLimiter, LimitedCalls
from gateway.server.metrics import Metrics
from gateway.server.partners import PartnerRegistry
from gateway.server.policy_subprocess import load_checked_apart
from gateway.server.probe_server import ProbeServer
from gateway.server.request_checks import MalformedRequestLog, RequestChecks
from gateway.server.request_log import RequestLogInterceptor
from gateway.server.startup import Startup
from gateway.server.tls_reload import LISTEN_OPTIONS, ReloadingCertificates, tls_files
from gateway.server.token_replay import TokenAdmission
from gateway.server.witness_desk import WitnessDesk
from gateway.sources.breaker import guard_sources
from gateway.sources.grpc_source import GrpcSource
from gateway.sources.source_certificates import SourceCertificates, probe_context
from gateway.store.audit_log import AuditLog, CheckpointSigner
from gateway.store.case_events import CaseEventStore, EventBell
from gateway.store.case_plan import CasePlanStore
from gateway.store.case_work import CaseWorkStore
from gateway.store.cases import CaseRepository
from gateway.store.checkpoint_file import CheckpointFile, read_notes
from gateway.store.db import create_engine_for, init_schema
from gateway.store.holds import HoldStore
from gateway.store.partner_export import PartnerExportStore
from gateway.store.persons import PersonDirectory
from gateway.store.reviews import BreakGlassReviews
from gateway.store.snapshots import CaseSnapshots
from gateway.store.text_keys import TextKeyStore

log = logging.getLogger("ketenpoort.server")

# How long stopping waits for work that runs to completion (gateway.broker.completion).
WORK_FINISH_TIMEOUT_S = 10.0
SERVICE_NAMES = (
    exchange_pb2.DESCRIPTOR.services_by_name["ExchangeService"].full_name,
    accountability_pb2.DESCRIPTOR.services_by_name["AccountabilityService"].full_name,
    plan_pb2.DESCRIPTOR.services_by_name["CasePlanService"].full_name,
    cases_pb2.DESCRIPTOR.services_by_name["CaseService"].full_name,
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
    health: health.HealthService
    sources: dict[str, Source]
    engine: Engine
    snapshots: CaseSnapshots
    log_watch: LogWatch | None = None
    retention: RetentionTask | None = None
    rewrap: RewrapTask | None = None
    registry_reloader: RegistryReloader | None = None
    admission: TokenAdmission | None = None
    keystore: Keystore | None = None
    signer: CheckpointSigner | None = None
    limit_report: LimitReport | None = None
    plan_monitor: PlanMonitorTask | None = None
    case_events: CaseEvents | None = None
    readiness: Readiness | None = None
    liveness: Liveness | None = None
    readiness_checks: ReadinessChecks | None = None
    probe: ProbeServer | None = None

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

    async def reload_registry(self) -> str:
        """Re-read the partner registry now; a broken file leaves the registry in force."""
        if self.registry_reloader is None:
            raise RuntimeError("this gateway has no registry reloader")
        return (await self.registry_reloader.reload()).value

    def refresh_keys(self) -> bool:
        """Follow a rotation or retirement of the gateway's keys made while serving (by
        ``ketenpoort keys``): the next checkpoint is signed with the current log-signing key,
        and the log trusts every usable and retired one. True when a key changed."""
        if self.keystore is None or self.signer is None:
            return False
        return follow_key_changes(self.keystore, self.signer, self.log)

    @property
    def probe_port(self) -> int | None:
        return self.probe.port if self.probe is not None else None

    async def stop(self, grace: float | None = 1.0, *, drain_s: float | None = None) -> None:
        """Drain, then stop: for ``drain_s`` (default: the configured ``drain_s``) the gateway
        still serves every call but reports NOT_SERVING (health Check, /readyz), so load
        balancers take it out of rotation first; then calls in flight get ``grace`` seconds."""
        if self.readiness is not None:
            self.readiness.drain()
        self.health.enter_graceful_shutdown()
        drain = self.config.health.drain_s if drain_s is None else drain_s
        if drain > 0:
            await asyncio.sleep(drain)
        if self.readiness_checks is not None:
            await self.readiness_checks.stop()
        await self.reloader.stop()
        if self.registry_reloader is not None:
            await self.registry_reloader.stop()
        if self.log_watch is not None:
            await self.log_watch.stop()
        if self.retention is not None:
            await self.retention.stop()
        if self.rewrap is not None:
            await self.rewrap.stop()
        if self.plan_monitor is not None:
            await self.plan_monitor.stop()
        if self.case_events is not None:
            # Event streams end with OK, so their clients resume elsewhere with their cursor.
            self.case_events.close()
        await self.server.stop(grace)
        # Registrations and entries whose callers gave up still finish with their records.
        await finish_running_work(WORK_FINISH_TIMEOUT_S)
        if self.limit_report is not None:
            # The calls turned away since the last window, before the log closes.
            await self.limit_report.stop()
        await self.log.close()
        await self.snapshots.close()
        for source in self.sources.values():
            await source.close()
        self.engine.dispose()
        if self.keystore is not None:
            self.keystore.close()
        self.metrics.up.set(0)
        if self.liveness is not None:
            await self.liveness.task.stop()
        if self.probe is not None:
            self.probe.close()


def utc_now() -> datetime:
    return datetime.now(UTC)


async def start_gateway(
    config: GatewayConfig,
    *,
    policy: CompiledPolicy | None = None,
    sources: dict[str, Source] | None = None,
    metrics: Metrics | None = None,
    clock: Callable[[], datetime] = utc_now,
    hpke_keys: Callable[[], KeyRing[HpkeRecipient]] | None = None,
    case_events: CaseEventSink | None = None,
) -> Gateway:
    """Start serving. `sources` (partner type -> adapter) overrides the configured endpoints;
    `policy` the policy read from `config.policy_dir`; `clock` the time the case file and the
    log are written with (and break-glass windows measured by); `hpke_keys` the keystore's
    ring of the keys partners seal submissions to; `case_events` where the events of a case
    (a meeting planned, an action due or overdue) are published (default: dropped).

    One builder per part, in order; when a step fails, what the earlier ones opened is closed
    again (gateway.server.startup) and the step's error is raised."""
    metrics = metrics or Metrics()
    async with Startup() as opened:
        # The probe port answers first: /livez while the gateway starts, /readyz 503 until ready.
        probes = _open_probes(config, opened)
        policies = _load_policy_and_partners(config, policy, metrics)
        keystore = _open_keys(config, opened)
        stores = await _open_stores(config, keystore, metrics, opened)
        services = await _build_services(
            config, policies, keystore, stores, metrics, opened,
            sources=sources, clock=clock, hpke_keys=hpke_keys, case_events=case_events,
        )
        served = await _start_server(config, policies, stores, services, metrics, opened, clock)
        tasks = await _start_background(
            config, policies, stores, services, served, probes, metrics, opened,
            watch_policy=policy is None, clock=clock,
        )
        metrics.up.set(1)
    return Gateway(
        config,
        served.server,
        served.port,
        policies.holder,
        policies.partners,
        tasks.reloader,
        stores.audit,
        metrics,
        served.health,
        dict(services.sources),
        stores.engine,
        stores.snapshots,
        log_watch=stores.log_watch,
        retention=tasks.retention,
        rewrap=tasks.rewrap,
        registry_reloader=policies.registry_reloader,
        admission=served.admission,
        keystore=keystore,
        signer=stores.signer,
        limit_report=served.limit_report,
        plan_monitor=tasks.plan_monitor,
        case_events=services.event_stream,
        readiness=probes.readiness,
        liveness=probes.liveness,
        readiness_checks=tasks.readiness_checks,
        probe=probes.server,
    )


@dataclass
class _Probes:
    readiness: Readiness
    liveness: Liveness
    server: ProbeServer | None


def _open_probes(config: GatewayConfig, opened: Startup) -> _Probes:
    """Readiness (not ready until the start completes), the liveness heartbeat, and the
    plain-HTTP probe port when ``probe_address`` is set."""
    readiness, liveness = Readiness(), Liveness()
    server = _open_probe(config, readiness, liveness)
    if server is not None:
        opened.opened("the probe port", server.close)
    liveness.task.start()
    opened.opened("the liveness heartbeat", liveness.task.stop)
    return _Probes(readiness, liveness, server)


def _open_probe(
    config: GatewayConfig, readiness: Readiness, liveness: Liveness
) -> ProbeServer | None:
    """The plain-HTTP probe port, serving; None when ``probe_address`` is ""."""
    if not config.health.probe_address:
        return None
    host, port = config.health.probe_host_port
    try:
        probe = ProbeServer(host, port, live=liveness.problem, ready=readiness.problems)
    except OSError as exc:
        raise OSError(f"cannot serve probes on {config.health.probe_address}: {exc}") from exc
    probe.start()
    return probe


@dataclass
class _Policies:
    holder: PolicyHolder
    partners: PartnerDirectory
    registry_reloader: RegistryReloader
    # The policy files as they were before they were read (a change during start-up reloads).
    on_disk: Snapshot


def _load_policy_and_partners(
    config: GatewayConfig, policy: CompiledPolicy | None, metrics: Metrics
) -> _Policies:
    """The policy in force (``policy``, or read from the policy directory) and the partner
    registry joined with it. Opens nothing."""
    # Taken before the files are read, so a change made during start-up is reloaded.
    on_disk = policy_snapshot(config.policy_dir)
    compiled = policy or _load_policy(config.policy_dir, config.max_policy_file_bytes)
    holder = PolicyHolder(compiled)
    metrics.policy_in_force(compiled.version)
    partners: PartnerDirectory
    registry_reloader = RegistryReloader(
        config.registry_path,
        lambda: holder.current,
        lambda registry: setattr(partners, "current", registry),
        metrics,
        interval_s=config.policy_reload_interval_s,
    )
    partners = PartnerDirectory(registry_reloader.load_initial())
    return _Policies(holder, partners, registry_reloader, on_disk)


def _open_keys(config: GatewayConfig, opened: Startup) -> Keystore:
    """The gateway's keystore (key directory or PKCS#11 token)."""
    if config.certificate_bound_tokens and config.tls_mode is not TlsMode.MUTUAL:
        raise ValueError("certificate-bound tokens need tls_mode mtls")
    keystore = Keystore.open(config.keys_dir, config.key_provider)
    opened.opened("the keystore", keystore.close)
    return keystore


@dataclass
class _Stores:
    keystore: Keystore
    engine: Engine
    signer: CheckpointSigner
    checkpoint_file: CheckpointFile
    audit: AuditLog
    # The case file's key-encryption keys, following rotations while serving.
    keys: LiveKeystore
    snapshots: CaseSnapshots
    log_watch: LogWatch


async def _open_stores(
    config: GatewayConfig, keystore: Keystore, metrics: Metrics, opened: Startup
) -> _Stores:
    """The database (at the current schema revision), the accountability log and its writer,
    the checkpoint file, and the log watch (not yet started)."""
    engine = create_engine_for(config.database_url)
    opened.opened("the database engine", engine.dispose)
    # Refuses a database at another schema revision (ketenpoort db upgrade).
    await asyncio.to_thread(init_schema, engine)
    signer = CheckpointSigner(keystore.signing_keys().current, config.log_origin)
    checkpoint_file = CheckpointFile(config.checkpoints_path, config.replica_id or None)
    audit = AuditLog(
        engine,
        signer=signer,
        # Every usable and retired log-signing key: the log verifies across rotations.
        trusted_keys=keystore.log_verification_keys(),
        checkpoint_every=config.checkpoint_every_records,
        checkpoint_interval_s=config.checkpoint_interval_s,
        on_batch=lambda b: metrics.log_batch_committed(b.size, b.seconds, b.append_seconds),
        # Every checkpoint this replica signs is in its checkpoint file before it is served.
        on_checkpoint=lambda c: checkpoint_file.append(c.note),
    )
    await audit.start()
    opened.opened("the log writer", audit.close)
    # The case file's key-encryption keys follow rotation and retirement while serving; each
    # look also moves the checkpoint signer along (follow_key_changes).
    keys = LiveKeystore(keystore, refresh=lambda: follow_key_changes(keystore, signer, audit))
    snapshots = CaseSnapshots(engine)
    opened.opened("the case snapshots", snapshots.close)
    # Reads a standing log alarm now: signing stays stopped from the first record on.
    log_watch = LogWatch(
        audit,
        metrics,
        interval_s=config.audit_verify_interval_s,
        checkpoint_dir=config.checkpoints_path,
        checkpoint_file=checkpoint_file,
    )
    return _Stores(keystore, engine, signer, checkpoint_file, audit, keys, snapshots, log_watch)


@dataclass
class _Services:
    sources: Mapping[str, Source]
    ctx: BrokerContext
    plan_store: CasePlanStore
    event_stream: CaseEvents
    events: CaseEventSink
    exchange: ExchangeService
    accountability: AccountabilityService
    case_plan: CasePlanService
    cases: CaseService


async def _build_services(
    config: GatewayConfig,
    policies: _Policies,
    keystore: Keystore,
    stores: _Stores,
    metrics: Metrics,
    opened: Startup,
    *,
    sources: dict[str, Source] | None,
    clock: Callable[[], datetime],
    hpke_keys: Callable[[], KeyRing[HpkeRecipient]] | None,
    case_events: CaseEventSink | None,
) -> _Services:
    """The use cases and the gRPC servicers over them, with the partners' source systems."""
    holder, partners = policies.holder, policies.partners
    engine, audit, keys = stores.engine, stores.audit, stores.keys
    # Opens what partners seal to the gateway; the ring is asked for on every use, so keys
    # rotated or retired while serving take effect at once.
    submissions = SubmissionGate(
        hpke_keys or keystore.hpke_keys, require_sealed=config.require_sealed_submissions
    )
    source_map = (
        sources
        if sources is not None
        else _connect_sources(
            config,
            holder.current,
            submissions,
            # The registry in force, asked on every request: rotations and reloads of partner
            # sealing keys reach the next request to a source.
            request_sealer(
                config, lambda: partners.current.sealing_keys, metrics.source_request
            ),
            lambda: partners.current.partners,
            metrics,
        )
    )
    for source in source_map.values():
        opened.opened("a source connection", source.close)
    texts = FreeTexts(TextKeyStore(engine), keys, clock)
    review_queue = BreakGlassReviewQueue(
        BreakGlassReviews(engine, ReviewComments(texts)),
        audit.append,
        clock,
        texts,
        metrics.open_break_glass_reviews,
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
    persons = PersonDirectory(engine)
    subject_access = SubjectAccessReports(
        audit, hold_store, lambda: holder.current, keystore.pseudonym_key, clock, persons
    )

    # Rung after every change that writes case events: wakes this replica's event streams.
    bell = EventBell()
    ctx = BrokerContext(
        policy=holder,
        cases=CaseRepository(engine, bell),
        reader=stores.snapshots,
        log=audit,
        keystore=keys,
        sealing_keys=lambda: partners.current.sealing_keys,
        sources=source_map,
        source_deadline_s=config.source_deadline_s,
        clock=clock,
    )

    request_ids = RequestIds(ctx, retention=timedelta(seconds=config.request_id_retention_s))
    plan_store = CasePlanStore(engine, bell)
    casefile = CaseFile(ctx, texts=texts, requests=request_ids, persons=plan_store)
    disclosures = Disclosures(
        ctx, casefile, metrics.source_call, require_request_nonce=config.require_request_nonce
    )
    holds = ConfidentialityHolds(ctx, hold_store, texts, persons)
    event_stream = CaseEvents(
        ctx, CaseEventStore(engine, bell), poll_s=config.case_event_poll_s
    )
    # The plan's events go to the partners' event stream unless the caller hands in a sink.
    events: CaseEventSink = case_events or event_stream
    case_plan = CasePlan(ctx, casefile, plan_store, events)
    case_work = CaseWork(
        ctx,
        casefile,
        CaseWorkStore(engine, bell),
        detail_parts=(MeetingsPart(case_plan), OpenActionsPart(case_plan)),
    )
    exchange = ExchangeService(
        casefile,
        disclosures,
        metrics,
        persons=CasePersons(ctx, casefile, request_ids),
        exports=exports,
        holds=holds,
        submissions=submissions,
        # The HPKE keys signed with the log-signing keys, again when either ring changes.
        signed_keys=SignedGatewayKeys(
            hpke_keys or keystore.hpke_keys, keystore.signing_keys, config.log_origin
        ),
        witnesses=WitnessDesk(
            audit, engine, lambda: partners.current.partners, stores.checkpoint_file
        ),
    )
    accountability = AccountabilityService(
        audit,
        metrics,
        reviews=review_queue,
        subject_access=subject_access,
        outside_checkpoints=lambda: read_notes(config.checkpoints_path),
        max_message_bytes=config.max_message_bytes,
    )
    cases = CaseService(
        case_work,
        event_stream,
        metrics,
        max_watchers_per_partner=config.limits.max_case_watchers_per_partner,
        part_writers=PLAN_PART_WRITERS,
    )
    return _Services(
        source_map, ctx, plan_store, event_stream, events,
        exchange, accountability, CasePlanService(case_plan, metrics), cases,
    )


@dataclass
class _Served:
    server: aio.Server
    port: int
    health: health.HealthService
    # Readiness and the log alarm as health statuses (NOT_SERVING until ready).
    serving: ServingReport
    admission: TokenAdmission
    limit_report: LimitReport


async def _start_server(
    config: GatewayConfig,
    policies: _Policies,
    stores: _Stores,
    services: _Services,
    metrics: Metrics,
    opened: Startup,
    clock: Callable[[], datetime],
) -> _Served:
    """The gRPC server with its interceptors, services, health and reflection, listening."""
    holder, partners, audit = policies.holder, policies.partners, stores.audit
    verifier = TokenVerifier(
        lambda: partners.current.partners,
        lambda: partners.current.by_certificate,
        audience=config.audience,
        algorithms=config.algorithms,
        leeway_s=config.token_leeway_s,
        max_lifetime_s=config.max_token_lifetime_s,
        require_binding=config.certificate_bound_tokens,
    )
    admission = TokenAdmission(stores.engine, leeway_s=config.token_leeway_s)
    await admission.start()
    interceptor = AuthInterceptor(
        verifier,
        admission,
        metrics,
        refusal_recorder(audit.append, lambda: holder.current.version, clock),
        mutual_tls=config.tls_mode is TlsMode.MUTUAL,
    )
    limit_interceptor, limit_report = _call_limits(config, partners, metrics, audit, holder, clock)
    server = aio.server(
        # The call limits come first: a call over its partner's limit costs no token check.
        # Then authentication, then parsing and the string checks (request_checks).
        interceptors=[
            # Outermost: one request line and server span per call, whatever turns it away.
            RequestLogInterceptor(),
            limit_interceptor,
            interceptor,
            RequestChecks(MalformedRequestLog(metrics.registry)),
        ],
        options=[
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            *config.limits.server_options(),
            *LISTEN_OPTIONS,
        ],
        maximum_concurrent_rpcs=config.limits.max_concurrent_rpcs,
    )
    exchange_pb2_grpc.add_ExchangeServiceServicer_to_server(  # type: ignore[no-untyped-call]
        services.exchange, server
    )
    accountability_pb2_grpc.add_AccountabilityServiceServicer_to_server(  # type: ignore[no-untyped-call]
        services.accountability, server
    )
    plan_pb2_grpc.add_CasePlanServiceServicer_to_server(  # type: ignore[no-untyped-call]
        services.case_plan, server
    )
    cases_pb2_grpc.add_CaseServiceServicer_to_server(  # type: ignore[no-untyped-call]
        services.cases, server
    )
    health_servicer = health.HealthService(max_watchers=config.limits.max_health_watchers)
    health_servicer.add_to_server(server)
    serving = ServingReport(health_servicer, SERVICE_NAMES, SERVICE_NAMES[1], metrics.ready)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    opened.opened("the gRPC server", functools.partial(server.stop, None))
    port = _bind(server, config)
    await server.start()
    return _Served(server, port, health_servicer, serving, admission, limit_report)


@dataclass
class _Background:
    reloader: PolicyReloader
    retention: RetentionTask
    rewrap: RewrapTask
    plan_monitor: PlanMonitorTask
    readiness_checks: ReadinessChecks


async def _start_background(
    config: GatewayConfig,
    policies: _Policies,
    stores: _Stores,
    services: _Services,
    served: _Served,
    probes: _Probes,
    metrics: Metrics,
    opened: Startup,
    *,
    watch_policy: bool,
    clock: Callable[[], datetime],
) -> _Background:
    """The background tasks (gateway.runtime), started; readiness and health reported from
    the first readiness check on."""
    holder, partners, registry_reloader = (
        policies.holder, policies.partners, policies.registry_reloader
    )
    engine, log_watch = stores.engine, stores.log_watch
    # NOT_SERVING until the readiness checks pass; the accountability service also while
    # the log alarm stands (raised now or later).
    probes.readiness.on_change = served.serving.ready
    log_watch.on_state = served.serving.log_ok
    log_watch.start()
    opened.opened("the log watch", log_watch.stop)

    async def put_in_force(new: CompiledPolicy) -> None:
        # The registry (partners and their keys, as the new policy names them) is joined
        # before anything changes; then both are swapped with no await in between.
        partners.current = registry_reloader.joined_with(new)
        holder.swap(new)

    reloader = PolicyReloader(
        config.policy_dir,
        holder,
        metrics,
        interval_s=config.policy_reload_interval_s,
        apply=put_in_force,
        loaded=policies.on_disk,
        # Checked in a process of its own first: parsing a broken file holds no request up.
        load=functools.partial(load_checked_apart, max_file_bytes=config.max_policy_file_bytes),
    )
    if watch_policy:
        # The directory is watched only when the gateway read its policy from it; a policy
        # handed in (tests, benchmarks) stays until reload_policy() is called.
        reloader.start()
        opened.opened("the policy watcher", reloader.stop)
        registry_reloader.start()
        opened.opened("the registry watcher", registry_reloader.stop)
    retention = start_retention(engine, config, metrics, clock)
    opened.opened("the retention task", retention.stop)
    rewrap = start_rewrap(engine, stores.keys, config, metrics)
    opened.opened("the re-wrap task", rewrap.stop)
    plan_monitor = PlanMonitorTask(
        PlanMonitor(
            services.plan_store,
            services.ctx.cases,
            services.events,
            lambda: holder.current,
            due_within=timedelta(seconds=config.action_due_notice_s),
        ),
        interval_s=config.plan_monitor_interval_s,
        clock=clock,
    )
    plan_monitor.start()
    opened.opened("the plan monitor", plan_monitor.stop)
    served.limit_report.start()
    opened.opened("the limit report", served.limit_report.stop)
    readiness_checks = ReadinessChecks(
        probes.readiness,
        engine=engine,
        log_writer=stores.audit,
        keys=stores.keystore,
        policy_version=lambda: holder.current.version,
        disk=_disk_paths(config),
        min_free_mb=config.health.min_free_disk_mb,
        interval_s=config.health.readiness_interval_s,
    )
    await readiness_checks.check_now()
    probes.readiness.started()
    readiness_checks.task.start()
    opened.opened("the readiness checks", readiness_checks.stop)
    return _Background(reloader, retention, rewrap, plan_monitor, readiness_checks)


def _disk_paths(config: GatewayConfig) -> dict[str, Path]:
    """Where the gateway writes files: the readiness check wants room there."""
    paths = {"checkpoint files": config.checkpoints_path}
    if config.database_url.startswith("sqlite:///"):
        database = config.database_url.removeprefix("sqlite:///").split("?", 1)[0]
        if database and not database.startswith(":memory:"):
            paths["database file"] = Path(database).parent
    return paths


def _call_limits(
    config: GatewayConfig,
    partners: PartnerDirectory,
    metrics: Metrics,
    audit: AuditLog,
    policy: PolicyHolder,
    clock: Callable[[], datetime],
) -> tuple[LimitInterceptor, LimitReport]:
    """The call limits of this replica (gateway.server.limits): the interceptor that admits
    or turns away each call, and the task that writes the calls turned away to the log."""
    limited = LimitedCalls(clock())
    callers = CallerKeys(
        lambda: partners.current.by_certificate,
        lambda: partners.current.partners,
        mutual_tls=config.tls_mode is TlsMode.MUTUAL,
    )
    interceptor = LimitInterceptor(
        CallLimiter(config.limits.limit_of),
        limited,
        callers,
        metrics,
        request_timeout_s=config.limits.request_timeout_s,
    )
    report = LimitReport(
        limited,
        audit.append,
        lambda: policy.current.version,
        clock,
        interval_s=config.limits.report_interval_s,
    )
    return interceptor, report


def _load_policy(directory: Path, max_file_bytes: int) -> CompiledPolicy:
    compiled = load_policy_dir(directory, max_file_bytes=max_file_bytes)
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
    # Certificate, key and CA are taken again when their files change (tls_reload).
    return ReloadingCertificates(
        tls_files(keys_dir, mode), require_client_auth=mode is TlsMode.MUTUAL
    ).credentials()


def gateway_client_tls(keys_dir: Path) -> TlsMaterial:
    """TLS material the gateway presents to partner source systems (mutual TLS)."""
    paths = GatewayKeyPaths.under(keys_dir)
    return TlsMaterial(
        ca_pem=CaPaths.under(keys_dir).cert.read_bytes(),
        cert_pem=paths.tls_cert.read_bytes(),
        key_pem=paths.tls_key.read_bytes(),
    )


def request_sealer(
    config: GatewayConfig,
    keys: Callable[[], Mapping[str, SealingKey]],
    on_request: Callable[[str, str], None] | None = None,
) -> RequestSealer:
    """How this gateway seals requests to source partners: to ``keys()`` (partner id ->
    current registered sealing key), as the gateway its partners address (``audience``), under
    ``seal_source_requests`` and the partners whose [[sources]] entry allows clear requests;
    ``on_request(partner, sealing)`` counts each request (Metrics.source_request)."""
    if not config.seal_source_requests:
        log.warning("seal_source_requests is off: every source is asked in clear")
    policy = SourceRequestPolicy(
        seal=config.seal_source_requests,
        clear_allowed=frozenset(s.partner_id for s in config.sources if s.allow_clear_requests),
    )
    return RequestSealer(
        keys,
        gateway_id=config.audience,
        policy=policy,
        on_request=on_request,
    )


def source_origins(
    config: GatewayConfig, partners: Callable[[], Mapping[str, RegisteredPartner]]
) -> AnswerOrigins:
    """How this gateway checks that source answers come from their partner: signed by a token
    key ``partners()`` (the registry in force) holds for it, unless the [[sources]] entry allows
    unsigned answers."""
    allowed = frozenset(s.partner_id for s in config.sources if s.allow_unsigned_answers)
    for partner_id in sorted(allowed):
        log.warning("the source of %s may answer unsigned (allow_unsigned_answers)", partner_id)
    return AnswerOrigins(partners, gateway_id=config.audience, unsigned_allowed=allowed)


def source_certificates(
    keys_dir: Path, partners: Callable[[], Mapping[str, RegisteredPartner]]
) -> SourceCertificates:
    """How this gateway pins each source's connection to a certificate ``partners()`` holds
    for the source's partner, looking with its own client certificate."""
    paths = GatewayKeyPaths.under(keys_dir)
    probe = probe_context(CaPaths.under(keys_dir).cert.read_bytes(), paths.tls_cert, paths.tls_key)
    return SourceCertificates(partners, probe)


def _connect_sources(
    config: GatewayConfig,
    policy: CompiledPolicy,
    answers: SubmissionGate,
    requests: RequestSealer,
    partners: Callable[[], Mapping[str, RegisteredPartner]],
    metrics: Metrics,
) -> dict[str, Source]:
    """The configured sources by partner type, each behind its circuit breaker."""
    sources: dict[str, Source] = {}
    partner_ids: dict[str, str] = {}
    tls = gateway_client_tls(config.keys_dir) if any(s.tls for s in config.sources) else None
    origins = source_origins(config, partners)
    certificates = source_certificates(config.keys_dir, partners) if tls is not None else None
    for endpoint in config.sources:
        partner_type = policy.partner(endpoint.partner_id).type
        if partner_type in sources:
            log.warning("a second source for partner type %s is ignored", partner_type)
            continue
        sources[partner_type] = GrpcSource(
            endpoint.address,
            tls if endpoint.tls else None,
            partner_id=endpoint.partner_id,
            answers=answers,
            requests=requests,
            origins=origins,
            certificates=certificates if endpoint.tls else None,
        )
        partner_ids[partner_type] = endpoint.partner_id
    return guard_sources(sources, partner_ids, config.breaker_for, metrics)
