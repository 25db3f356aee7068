"""The collaborators the use cases need, handed in from one wiring module (server/app.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.log_events import LogRecord, RecordKind
from gateway.broker.ports import AccountabilityLog, CaseReader, CaseStore
from gateway.broker.records import event
from gateway.broker.sources import Source
from gateway.core import CompiledPolicy
from gateway.crypto.envelope import KekLookup
from gateway.crypto.keystore import KeyEncryptionKey


class CaseKeys(KekLookup, Protocol):
    """The gateway keys the use cases need: a ``Keystore``, or in a serving gateway a
    ``LiveKeystore`` whose key-encryption keys follow rotation."""

    @property
    def current_kek(self) -> KeyEncryptionKey: ...

    @property
    def pseudonym_key(self) -> bytes: ...


@dataclass(frozen=True)
class SealingKey:
    """A partner's registered HPKE public key."""

    key: X25519PublicKey
    key_id: str


class PolicyHolder:
    """The compiled policy in force. Swapping is one reference assignment, so a request
    that already read `current` finishes under the version it started with."""

    def __init__(self, policy: CompiledPolicy) -> None:
        self._policy = policy
        self._lock = threading.Lock()

    @property
    def current(self) -> CompiledPolicy:
        return self._policy

    def swap(self, policy: CompiledPolicy) -> None:
        with self._lock:
            self._policy = policy


@dataclass(frozen=True)
class BrokerContext:
    """What every use case is handed. The case store, the reader and the log are the
    protocols of ``gateway.broker.ports``: the gateway wires in the database-backed ones,
    the use-case tests in-memory fakes."""

    policy: PolicyHolder
    cases: CaseStore
    reader: CaseReader
    log: AccountabilityLog
    keystore: CaseKeys
    sealing_keys: Callable[[], Mapping[str, SealingKey]]  # partner id -> key
    sources: Mapping[str, Source]  # partner type -> its source adapter
    source_deadline_s: float
    clock: Callable[[], datetime]

    async def record(
        self,
        kind: RecordKind,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        *,
        case_id: str,
        subject_pseudonym: str,
        phase: str,
        refusal_code: str = "",
        detail: tuple[tuple[str, str], ...] = (),
        subject_id_type: str = "",
    ) -> LogRecord:
        """Write the accountability record of an event that is no field decision (a case-file
        change, a hold), under the policy the request read when it started; never a value."""
        return await self.log.append(
            event(
                kind,
                principal=who,
                trace=trace,
                at=self.clock(),
                case_id=case_id,
                subject_pseudonym=subject_pseudonym,
                phase=phase,
                policy_version=policy.version,
                status="refused" if refusal_code else "ok",
                refusal_code=refusal_code,
                detail=detail,
                subject_id_type=subject_id_type,
            )
        )
