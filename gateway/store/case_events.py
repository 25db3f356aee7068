"""Case events: what happened to a case, one row per partner that takes part in it.

A partner's work surface streams its events (CaseService.WatchCaseEvents). The rows hold the
case id, the kind and the moment, never personal data; the state itself is read with GetCase.

Written in the transaction of the change they report, so an event exists exactly when its
change does. Readers page by ``id``; for that to be safe across replicas, ids must become
visible in increasing order. On PostgreSQL two transactions can take ids 7 and 8 and commit
8 first, and a reader that saw 8 would skip 7 for good; so every writer of events takes one
transaction-scoped advisory lock first and ids commit in order. Case changes are human
actions, a few a second at most, so the serialisation costs nothing that matters. SQLite has
one writer at a time anyway.

Readers are woken in-process by an ``EventBell`` rung after a commit, and poll besides (other
replicas ring no bell here).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select, text

from gateway.store.db import for_writing, translate_errors
from gateway.store.tables import case_events, case_participants

# The advisory lock key of event writers on PostgreSQL (any constant the gateway uses once).
_PG_EVENT_LOCK = 0x6B70_6576  # "kpev"
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class CaseEventRow:
    event_id: int
    case_id: str
    partner_id: str
    kind: str
    at: datetime


class EventBell:
    """Wakes the event readers of this process; ``ring`` may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def ring(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    def listen(self) -> asyncio.Event:
        """An event set at the next ``ring``; call ``forget`` with it when done."""
        event = asyncio.Event()
        with self._lock:
            self._waiters.add((asyncio.get_running_loop(), event))
        return event

    def forget(self, event: asyncio.Event) -> None:
        with self._lock:
            self._waiters = {w for w in self._waiters if w[1] is not event}


def insert_case_events(
    conn: Connection,
    case_id: str,
    kind: str,
    at: datetime,
    recipients: Collection[str] | None = None,
) -> None:
    """Add the event ``kind`` of case ``case_id`` for each recipient partner, inside the
    caller's transaction. ``recipients`` None: every partner taking part in the case now.

    Make it the transaction's last write: on PostgreSQL it takes the event writers' lock,
    held until commit, and a transaction that then waited for a row lock could deadlock with
    one that holds that row and waits for the event lock."""
    if recipients is None:
        recipients = (
            conn.execute(
                select(case_participants.c.partner_id).where(
                    case_participants.c.case_id == case_id
                )
            )
            .scalars()
            .all()
        )
    partners = sorted(set(recipients))
    if not partners:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_EVENT_LOCK})
    conn.execute(
        insert(case_events),
        [{"case_id": case_id, "partner_id": p, "kind": kind, "at": at} for p in partners],
    )


class CaseEventStore:
    """Writes and reads case events; see the module docstring."""

    def __init__(self, engine: Engine, bell: EventBell | None = None) -> None:
        self._engine = engine
        self._writer = for_writing(engine)
        self.bell = bell or EventBell()

    @translate_errors("case events: publish")
    def publish(
        self,
        case_id: str,
        recipients: Collection[str] | None,
        kind: str,
        at: datetime,
        conn: Connection | None = None,
    ) -> None:
        """Add an event for ``recipients`` (None: every participant of the case). With
        ``conn`` the rows join the caller's transaction (and readers here are woken now; they
        find the rows once it commits, or at their next poll); without, in one of their own."""
        if conn is not None:
            insert_case_events(conn, case_id, kind, at, recipients)
        else:
            with self._writer.begin() as own:
                insert_case_events(own, case_id, kind, at, recipients)
        self.bell.ring()

    @translate_errors("case events: read")
    def read(
        self, partner_id: str, after_id: int, case_id: str = "", limit: int = MAX_PAGE
    ) -> list[CaseEventRow]:
        """The partner's events with an id above ``after_id``, oldest first."""
        c = case_events.c
        query = select(case_events).where(c.partner_id == partner_id, c.id > after_id)
        if case_id:
            query = query.where(c.case_id == case_id)
        query = query.order_by(c.id).limit(min(max(limit, 1), MAX_PAGE))
        with self._engine.begin() as conn:
            rows = conn.execute(query).all()
        return [CaseEventRow(r.id, r.case_id, r.partner_id, r.kind, r.at) for r in rows]
