"""The plan's parts of a case's detail (CaseService.GetCase): its meetings and its open
actions, read as the plan's own calls read them (the same rules on who sees a description or
a decision), through the extension point ``gateway.broker.case_work.CaseDetailPart``. GetCase
has read the case and checked the caller's participation: the parts read only the plan."""

from __future__ import annotations

from gateway.broker.caller import Principal
from gateway.broker.case_plan import ActionView, CasePlan, MeetingView
from gateway.store.case_plan import LIVE_STATUSES
from gateway.store.cases import CaseRow

MEETINGS = "meetings"
OPEN_ACTIONS = "open_actions"


class MeetingsPart:
    name = MEETINGS

    def __init__(self, plan: CasePlan) -> None:
        self._plan = plan

    async def read(self, case: CaseRow, who: Principal) -> tuple[MeetingView, ...]:
        return tuple(await self._plan.meetings_of(case, who))


class OpenActionsPart:
    name = OPEN_ACTIONS

    def __init__(self, plan: CasePlan) -> None:
        self._plan = plan

    async def read(self, case: CaseRow, who: Principal) -> tuple[ActionView, ...]:
        views = await self._plan.actions_of(case, who)
        return tuple(v for v in views if v.action.status in LIVE_STATUSES)
