"""Shared steps of the case-plan tests: a gateway with the plan policy, an event sink to
watch, a clock to move, and callers of CasePlanService."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from adapters.client import PartnerClient
from gateway.api.v1 import plan_pb2_grpc
from gateway.store.tables import audit_log, case_entries
from tests.integration.harness import Harness

ROLES = {
    "zvh": "process_director",
    "police": "case_director",
    "ggz": "chain_partner",
    "housing": "chain_partner",
    "municipality": "chain_partner",
}


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass(frozen=True)
class Event:
    case_id: str
    recipients: tuple[str, ...]
    kind: str
    at: datetime


@dataclass
class RecordingSink:
    """An in-memory CaseEventSink: the seam where the case event stream plugs in."""

    events: list[Event] = field(default_factory=list)

    async def publish(
        self, case_id: str, recipients: Sequence[str], kind: str, at: datetime
    ) -> None:
        self.events.append(Event(case_id, tuple(recipients), kind, at))

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]


class PlanCaller:
    """One partner calling CasePlanService over its own mutual-TLS channel."""

    def __init__(self, harness: Harness, partner: str, role: str | None = None) -> None:
        self.partner = partner
        self.client: PartnerClient = harness.client(partner, role or ROLES[partner])
        self._channel = harness.channel(partner)
        self._stub = plan_pb2_grpc.CasePlanServiceStub(self._channel)  # type: ignore[no-untyped-call]

    async def __call__(self, method: str, request: Any) -> Any:
        return await getattr(self._stub, method)(
            request, metadata=self.client.metadata(), timeout=10
        )

    async def close(self) -> None:
        await self._channel.close(None)
        await self.client.close()


def log_bodies(harness: Harness) -> list[str]:
    with harness.gateway.engine.begin() as conn:
        return [str(b) for b in conn.execute(select(audit_log.c.body)).scalars()]


def log_kinds(harness: Harness, case_id: str) -> list[str]:
    with harness.gateway.engine.begin() as conn:
        return [
            str(k)
            for k in conn.execute(
                select(audit_log.c.kind)
                .where(audit_log.c.case_id == case_id)
                .order_by(audit_log.c.seq)
            ).scalars()
        ]


def stored_entries(harness: Harness, case_id: str) -> dict[str, list[bytes]]:
    """field -> ciphertexts of the case's entries, as the database holds them."""
    found: dict[str, list[bytes]] = {}
    with harness.gateway.engine.begin() as conn:
        for row in conn.execute(
            select(case_entries.c.field, case_entries.c.ciphertext).where(
                case_entries.c.case_id == case_id
            )
        ):
            found.setdefault(row.field, []).append(bytes(row.ciphertext))
    return found
