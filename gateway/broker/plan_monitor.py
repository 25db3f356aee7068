"""Monitoring of the plan of approach: tells of actions due soon and escalates overdue ones.

A run asks the store for actions of open cases whose deadline comes within ``due_within``
(event ``action_due``, to the action's owner and the process director) or has passed while
the action is neither done nor cancelled (event ``action_overdue``: escalated to the process
director, and told to the owner). Each notice is claimed in the database before it is
published, so every action gets each event once, whichever replica runs first; a publish that
fails after the claim is logged and not repeated (the action stays listed as overdue in
ListPlanActions). Events name the case, the recipients, the kind and the moment only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from gateway.broker.case_events import CaseEventSink
from gateway.broker.case_plan_access import procesregie_partners
from gateway.broker.ports import CaseLookup
from gateway.core import CompiledPolicy
from gateway.store.case_plan import Notice

log = logging.getLogger("ketenpoort.plan")

DEFAULT_DUE_WITHIN = timedelta(days=2)


@dataclass(frozen=True)
class MonitorReport:
    due: int
    overdue: int


class PlanNotices(Protocol):
    """The notices of plan actions coming due (``gateway.store.case_plan``). Blocking."""

    def pending_notices(
        self, now: datetime, due_within: timedelta, limit: int = 500
    ) -> list[Notice]: ...

    def claim_notice(self, notice: Notice, at: datetime) -> bool:
        """Whether this replica is the one to tell of ``notice`` (claimed once, anywhere)."""
        ...


class PlanMonitor:
    def __init__(
        self,
        store: PlanNotices,
        cases: CaseLookup,
        events: CaseEventSink,
        policy: Callable[[], CompiledPolicy],
        *,
        due_within: timedelta = DEFAULT_DUE_WITHIN,
    ) -> None:
        if due_within < timedelta(0):
            raise ValueError("due_within must not be negative")
        self._store = store
        self._cases = cases
        self._events = events
        self._policy = policy
        self._due_within = due_within

    async def run_once(self, now: datetime) -> MonitorReport:
        notices = await asyncio.to_thread(self._store.pending_notices, now, self._due_within)
        sent = {"action_due": 0, "action_overdue": 0}
        for notice in notices:
            if not await asyncio.to_thread(self._store.claim_notice, notice, now):
                continue  # another replica told of it
            await self._publish(notice, now)
            sent[notice.kind.value] += 1
        return MonitorReport(due=sent["action_due"], overdue=sent["action_overdue"])

    async def _publish(self, notice: Notice, now: datetime) -> None:
        action = notice.action
        case = await asyncio.to_thread(self._cases.get_case, action.case_id)
        if case is None:
            return
        directors = procesregie_partners(case, self._policy())
        recipients = tuple(dict.fromkeys((*directors, action.owner_partner)))
        try:
            await self._events.publish(case.case_id, recipients, notice.kind.value, now)
        except Exception as exc:  # one failed publish must not stop the run
            log.error(
                "plan monitor: %s of action %s not published: %s",
                notice.kind.value,
                action.action_id,
                type(exc).__name__,
            )
