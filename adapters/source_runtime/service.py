"""The source runtime's service: the sealed source contract in front of a partner's system.

``RuntimeBackend`` is what adapters.source_server serves (a CallBackend): for each call it turns
the gateway's identity into a ``Person`` (only the identifiers that came), gives the adapter the
call's remaining time minus a margin (``Deadlines``), keeps a circuit breaker around the system
(a system that keeps failing is not asked again until a trial is due; meanwhile calls fail at
once with UNAVAILABLE), counts metrics and writes the access log (field ids, never values).

``start_runtime`` builds it all from a ``SourceConfig``: the catalogue and mapping (refusing to
start on a mapping problem), the adapter of the mapping's kind, the partner's keys (opening
sealed requests, sealing and signing answers to the gateway's key) and mutual TLS with the
partner's certificate, taking only callers whose certificates the configured CA issued.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from adapters.channels import TlsMaterial
from adapters.circuit_breaker import BreakerState, CircuitBreaker, CircuitOpen
from adapters.client import PartnerClient, PartnerCredentials
from adapters.gateway_keys import GatewayKeys
from adapters.gateway_trust import DEFAULT_LOG_ORIGIN
from adapters.source_requests import RequestOpening
from adapters.source_runtime.access_log import AccessLog
from adapters.source_runtime.adapter import NotKnown, Person, SystemAdapter, SystemUnavailable
from adapters.source_runtime.catalogue import load_catalogue
from adapters.source_runtime.config import Deadlines, SourceConfig
from adapters.source_runtime.mapping import ADAPTER_MODULES, MappingFile, load_mapping
from adapters.source_runtime.metrics import SourceMetrics
from adapters.source_server import (
    FETCH_FIELDS,
    AnswerSealing,
    FieldsAnswer,
    RunningSource,
    SourceCall,
    serve_source,
)
from gateway.api.v1 import common_pb2

__all__ = ["RunningRuntime", "RuntimeBackend", "open_adapter", "person_of", "start_runtime"]

log = logging.getLogger("ketenpoort.source_runtime")
T = TypeVar("T")


def person_of(identity: common_pb2.SubjectIdentity) -> Person:
    return Person(
        bsn=identity.bsn, name=identity.name, date_of_birth=identity.date_of_birth,
        address=identity.address, postcode=identity.postcode, reference=identity.reference,
    )


class RuntimeBackend:
    """Serves one adapter through the deadline, the breaker, the metrics and the access log."""

    def __init__(
        self,
        adapter: SystemAdapter,
        *,
        deadlines: Deadlines | None = None,
        breaker: CircuitBreaker | None = None,
        metrics: SourceMetrics | None = None,
        access_log: AccessLog | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.adapter = adapter
        self.deadlines = deadlines or Deadlines()
        self.metrics = metrics or SourceMetrics()
        self.breaker = breaker or CircuitBreaker(
            "system", on_change=self.metrics.breaker_changed
        )
        self.access_log = access_log or AccessLog()
        self._clock = clock

    async def fetch_fields(
        self, identity: common_pb2.SubjectIdentity, fields: Sequence[str], call: SourceCall
    ) -> FieldsAnswer:
        started = self._clock()
        outcome, answer = "unavailable", FieldsAnswer({})
        try:
            found = await self._ask(
                "fetch", call,
                lambda deadline: self.adapter.fetch(
                    person_of(identity), list(fields), deadline_s=deadline),
            )
            # Only asked fields: the labels stay the catalogue ids the gateway asked for.
            answer = FieldsAnswer(dict(found.values), frozenset(found.unavailable) & set(fields))
            outcome = "partial" if answer.unavailable else "answered"
            for name in answer.unavailable:
                self.metrics.unavailable_fields.labels(name).inc()
            return answer
        except NotKnown:
            outcome = "not_known"
            return answer
        except CircuitOpen:
            outcome = "circuit_open"
            raise SystemUnavailable("the circuit breaker is open") from None
        except TimeoutError:
            outcome = "deadline"
            raise
        finally:
            self._account(FETCH_FIELDS, call, outcome, started, fields, answer)

    async def lookup_subject(
        self, identity: common_pb2.SubjectIdentity, call: SourceCall
    ) -> tuple[bool, str]:
        started = self._clock()
        outcome = "unavailable"
        try:
            known, role = await self._ask(
                "lookup", call,
                lambda deadline: self.adapter.lookup(person_of(identity), deadline_s=deadline),
            )
            outcome = "known" if known else "not_known"
            return known, role
        except NotKnown:
            outcome = "not_known"
            return False, ""
        except CircuitOpen:
            outcome = "circuit_open"
            raise SystemUnavailable("the circuit breaker is open") from None
        except TimeoutError:
            outcome = "deadline"
            raise
        finally:
            self._account(call.operation, call, outcome, started)

    async def _ask(
        self, operation: str, call: SourceCall, ask: Callable[[float], Awaitable[T]]
    ) -> T:
        deadline = self.deadlines.for_call(call.time_remaining)
        if deadline <= 0:
            # No time left to ask the system and still answer before the gateway gives up.
            raise TimeoutError
        self.breaker.allow()
        began = self._clock()
        try:
            async with asyncio.timeout(deadline):
                result = await ask(deadline)
        except NotKnown:
            self.breaker.succeeded()
            raise
        except SystemUnavailable as exc:
            # Adapters word these generally, without values or identifiers (adapter.py).
            log.warning("the system could not answer a %s: %s", operation, exc)
            self.breaker.failed()
            raise
        except TimeoutError:
            log.warning("the system did not answer a %s within %.2fs", operation, deadline)
            self.breaker.failed()
            raise
        except asyncio.CancelledError:
            # The gateway gave up on the call: no verdict on the system, but a trial call
            # must report, or the breaker would wait for it for ever.
            if self.breaker.state is BreakerState.HALF_OPEN:
                self.breaker.failed()
            raise
        except Exception as exc:
            # An adapter maps its failures itself; one that escapes is a bug in the adapter,
            # answered as "unavailable" (never a crash, never a value). Its message may hold
            # a value, so only its type is logged.
            self.breaker.failed()
            log.error("the adapter failed on %s with %s", operation, type(exc).__name__)
            raise SystemUnavailable("the adapter failed") from None
        finally:
            self.metrics.system_seconds.labels(operation).observe(self._clock() - began)
        self.breaker.succeeded()
        return result

    def _account(
        self,
        operation: str,
        call: SourceCall,
        outcome: str,
        started: float,
        fields: Sequence[str] = (),
        answer: FieldsAnswer | None = None,
    ) -> None:
        self.metrics.calls.labels(operation, outcome).inc()
        self.access_log.record(
            operation=operation,
            reference=call.reference,
            outcome=outcome,
            identifiers=call.identifiers,
            fields=fields,
            supplied=answer.values.keys() if answer is not None else (),
            unavailable=answer.unavailable if answer is not None else (),
            purpose=call.purpose,
            recipient=call.recipient_id,
            duration_s=self._clock() - started,
        )


def open_adapter(
    mapping: MappingFile, system: Mapping[str, Any], base_dir: Path
) -> SystemAdapter:
    """The adapter of ``mapping.kind`` (its module adapters.systems.<kind>), connected as
    ``system`` (the configuration's [system] table) says."""
    module = importlib.import_module(f"adapters.systems.{ADAPTER_MODULES[mapping.kind]}")
    adapter: SystemAdapter = module.open_adapter(mapping, system, base_dir)
    return adapter


@dataclass
class RunningRuntime:
    source: RunningSource
    backend: RuntimeBackend
    gateway_client: PartnerClient | None = None  # fetches the gateway's keys, when configured

    @property
    def port(self) -> int:
        return self.source.port

    async def stop(self, grace: float | None = None) -> None:
        await self.source.stop(grace)
        await self.backend.adapter.close()
        if self.gateway_client is not None:
            await self.gateway_client.close()
        self.backend.access_log.close()


def server_credentials(config: SourceConfig) -> grpc.ServerCredentials:
    """Mutual TLS with the partner's certificate; only callers with a certificate the
    configured CA issued get through (the gateway's origin pinning does the rest)."""
    return grpc.ssl_server_credentials(
        [(config.tls.key.read_bytes(), config.tls.cert.read_bytes())],
        root_certificates=config.tls.ca.read_bytes(),
        require_client_auth=True,
    )


async def start_runtime(
    config: SourceConfig, *, serve_metrics: bool = True, listen: str | None = None
) -> RunningRuntime:
    """Everything ``ketenpoort source serve`` runs, started; raises MappingError,
    CatalogueError, ConfigError or OSError (a key file) before anything listens."""
    catalogue = load_catalogue(config.catalogue)
    mapping = load_mapping(config.mapping, catalogue)
    credentials = PartnerCredentials.from_key_dir(config.key_dir, config.partner_id, tls=False)
    gateway_keys, gateway_client = _gateway_keys(config, credentials)
    tls = server_credentials(config)
    metrics = SourceMetrics()
    adapter = open_adapter(mapping, config.system, config.base_dir)
    backend = RuntimeBackend(
        adapter,
        deadlines=config.deadlines,
        breaker=CircuitBreaker(
            config.partner_id, config.breaker, on_change=metrics.breaker_changed
        ),
        metrics=metrics,
        access_log=AccessLog(config.access_log),
    )
    try:
        source = await serve_source(
            backend,
            listen or config.listen,
            credentials=tls,
            sealing=AnswerSealing.from_credentials(
                credentials, gateway_keys, gateway_id=config.gateway_id
            ),
            requests=RequestOpening.from_credentials(
                credentials, gateway_id=config.gateway_id,
                accept_clear=config.accept_clear_requests,
            ),
        )
    except BaseException:
        await adapter.close()
        if gateway_client is not None:
            await gateway_client.close()
        raise
    if serve_metrics and config.metrics_address:
        metrics.serve(config.metrics_address)
    return RunningRuntime(source, backend, gateway_client)


def _gateway_keys(
    config: SourceConfig, credentials: PartnerCredentials
) -> tuple[GatewayKeys, PartnerClient | None]:
    """The gateway's sealing keys: from the configured key file, or fetched from the gateway
    and taken only from its signed statement (verified against the pinned signing keys)."""
    if config.gateway is None:
        return GatewayKeys.from_public_key_file(config.gateway_public_key), None
    own = PartnerCredentials.from_key_dir(
        config.key_dir, config.partner_id,
        gateway_origin=config.gateway.log_origin or DEFAULT_LOG_ORIGIN,
    )
    if not own.gateway_trust.signing_keys:
        raise ValueError(
            f"{config.key_dir}/gateway/signing.pub.pem is missing: the gateway's signing key "
            "pins its key statements; without it no fetched key is taken"
        )
    tls = TlsMaterial(
        ca_pem=config.tls.ca.read_bytes(), cert_pem=config.tls.cert.read_bytes(),
        key_pem=config.tls.key.read_bytes(),
    )
    client = PartnerClient(
        config.gateway.address, dataclasses.replace(own, tls=tls), role=config.gateway.role,
        audience=config.gateway_id, seal_submissions=False,
    )
    return GatewayKeys(client.gateway_keys, trust=own.gateway_trust), client
