"""The partner's stream of case events (CaseService.WatchCaseEvents).

Events are rows of ``case_events`` (``gateway.store.case_events``), written with the change
they report, so the stream reads the table: an event written by another replica sharing the
database arrives as surely as one written here. A watcher reads what is stored after its
cursor, then waits for this process's bell (rung after every local change) or the poll
interval, whichever comes first, and reads again. ``close`` ends every watch cleanly, so a
stopping gateway ends its streams with OK and clients reconnect elsewhere with their cursor.

A watch also ends when the caller's token expires: the partner's right to hear of its cases is
checked again (a withdrawn partner or key gets no new token) when the client reconnects with a
fresh token, and participation when it names a case.

The use cases that tell partners of something (a meeting planned, an action due or overdue)
publish through ``CaseEventSink``, handed in from the wiring module; ``CaseEvents`` is the
gateway's. An event names the case, its recipients (partner ids), its kind and its moment,
never a value of the case file.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.case_access import CaseAccess
from gateway.broker.context import BrokerContext
from gateway.broker.errors import InvalidRequest
from gateway.store.case_events import MAX_PAGE, CaseEventRow

DEFAULT_POLL_S = 1.0


class CaseEventKind(StrEnum):
    MEETING_PLANNED = "meeting_planned"
    # An action's deadline comes within the monitoring's notice period.
    ACTION_DUE = "action_due"
    # An action's deadline passed and it is neither done nor cancelled: escalated to the
    # process director (and told to the owner).
    ACTION_OVERDUE = "action_overdue"


class CaseEventSink(Protocol):
    async def publish(
        self, case_id: str, recipients: Sequence[str], kind: str, at: datetime
    ) -> None: ...


class Bell(Protocol):
    """Wakes the readers of this process after a local change (``EventBell``)."""

    def listen(self) -> asyncio.Event: ...

    def forget(self, event: asyncio.Event) -> None: ...


class EventStore(Protocol):
    """The case events (``gateway.store.case_events.CaseEventStore``). Blocking calls."""

    @property
    def bell(self) -> Bell: ...

    def publish(
        self, case_id: str, recipients: Collection[str] | None, kind: str, at: datetime
    ) -> None: ...

    def read(
        self, partner_id: str, after_id: int, case_id: str = "", limit: int = MAX_PAGE
    ) -> list[CaseEventRow]: ...


class CaseEvents:
    def __init__(
        self,
        ctx: BrokerContext,
        store: EventStore,
        *,
        poll_s: float = DEFAULT_POLL_S,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if poll_s <= 0:
            raise ValueError("poll_s must be positive")
        self._ctx = ctx
        self._access = CaseAccess(ctx)
        self._store = store
        self._poll_s = poll_s
        self._closing = asyncio.Event()
        self._wall_clock = wall_clock

    async def publish(
        self, case_id: str, recipients: Collection[str] | None, kind: str, at: datetime
    ) -> None:
        """Add an event in a transaction of its own (``CaseEventStore.publish`` with a
        connection joins the caller's transaction instead)."""
        await asyncio.to_thread(self._store.publish, case_id, recipients, kind, at)

    def close(self) -> None:
        """End every watch (the gateway is stopping)."""
        self._closing.set()

    async def watch(
        self, who: Principal, trace: TraceContext, after_id: int, case_id: str = ""
    ) -> AsyncIterator[CaseEventRow]:
        """The caller's events after ``after_id`` (of one case, if given), until closed."""
        if after_id < 0:
            raise InvalidRequest("after_event_id must be 0 or more")
        if case_id:
            policy = self._ctx.policy.current
            await self._access.participating_case(who, trace, policy, case_id, "watch")
        bell = self._store.bell.listen()
        try:
            cursor = after_id
            while not self._closing.is_set() and self._left(who) > 0:
                bell.clear()
                rows = await asyncio.to_thread(self._store.read, who.partner_id, cursor, case_id)
                for row in rows:
                    cursor = row.event_id
                    yield row
                if rows:
                    continue  # maybe more than a page: read on before waiting
                await self._wait(bell, min(self._poll_s, self._left(who)))
        finally:
            self._store.bell.forget(bell)

    def _left(self, who: Principal) -> float:
        """Seconds until the caller's token expires (a principal without expiry: no limit)."""
        if not who.expires_at:
            return float("inf")
        return who.expires_at - self._wall_clock()

    async def _wait(self, bell: asyncio.Event, timeout: float) -> None:
        closing = asyncio.ensure_future(self._closing.wait())
        rung = asyncio.ensure_future(bell.wait())
        try:
            await asyncio.wait(
                {closing, rung}, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (closing, rung):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
