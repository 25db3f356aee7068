"""Events about a case that partners are told of (a meeting planned, an action due or overdue).

The use cases publish through ``CaseEventSink``, handed in from the wiring module; the
gateway's case event stream implements it. An event names the case, its recipients (partner
ids), its kind and its moment, never a value of the case file: a partner that is told reads
what it may through the calls it has (ListPlanActions, RequestDisclosure).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol

__all__ = ["CaseEventKind", "CaseEventSink", "NoCaseEvents"]


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


class NoCaseEvents:
    """A sink that drops every event: a gateway without an event stream."""

    async def publish(
        self, case_id: str, recipients: Sequence[str], kind: str, at: datetime
    ) -> None:
        return None
