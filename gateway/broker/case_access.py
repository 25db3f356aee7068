"""Who may act on a case, and refusing a request on one with its record written first.

Every use case on a case refuses the same way: a shredded case before anything else (its
participants were deleted with it), then a caller that does not take part in the case, then
a caller without the regie an action needs. Each refusal is a ``refusal`` record under the
policy the request read when it started, committed before the error is raised.
"""

from __future__ import annotations

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.case_reading import SHREDDED_MESSAGE, CaseReading
from gateway.broker.context import BrokerContext
from gateway.broker.errors import CaseShredded, Refused
from gateway.broker.log_events import RecordKind
from gateway.broker.regie import is_procesregisseur, takes_part
from gateway.core import CompiledPolicy
from gateway.store.cases import CaseRow

SHREDDED_CODE = "case_shredded"
# The refusal code of an action that needs the case's procesregie.
NOT_PROCESREGISSEUR = "not_procesregisseur"
NOT_PARTICIPANT = "not_participant"
# The refusal code of a change that needs either regie of the case (its persons).
NOT_REGISSEUR = "not_regisseur"


class CaseAccess:
    def __init__(self, ctx: BrokerContext) -> None:
        self._ctx = ctx
        self._reading = CaseReading(ctx)

    async def participating_case(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case_id: str,
        action: str,
    ) -> CaseRow:
        """The case's row, if the caller takes part in it and it was not shredded; otherwise
        a refusal logged under the request's policy."""
        case = await self._reading.case(case_id)
        await self.refuse_if_shredded(who, trace, policy, case)
        await self.require_participant(who, trace, policy, case, action)
        return case

    async def log_refusal(
        self, who: Principal, trace: TraceContext, policy: CompiledPolicy, case: CaseRow, code: str
    ) -> int:
        """Write the refusal record of a request on ``case``; its seq."""
        record = await self._ctx.record(
            RecordKind.REFUSAL,
            who,
            trace,
            policy,
            case_id=case.case_id,
            subject_pseudonym=case.subject_pseudonym,
            phase=case.phase,
            refusal_code=code,
        )
        return record.seq

    async def shredded(
        self, who: Principal, trace: TraceContext, policy: CompiledPolicy, case: CaseRow
    ) -> CaseShredded:
        """Log the refusal of a request on a shredded case; the error to raise. Also for a
        case the store finds shredded mid-change (``gateway.store.errors.CaseShredded``)."""
        seq = await self.log_refusal(who, trace, policy, case, SHREDDED_CODE)
        return CaseShredded(SHREDDED_MESSAGE, seq)

    async def refuse_if_shredded(
        self, who: Principal, trace: TraceContext, policy: CompiledPolicy, case: CaseRow
    ) -> None:
        """Refuse, and log the refusal of, any request on a case whose data was shredded at
        the end of its retention period: before participation is checked (its participants
        were deleted with it) and before any source is asked."""
        if case.shredded_at is not None:
            raise await self.shredded(who, trace, policy, case)

    async def require_participant(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case: CaseRow,
        action: str,
    ) -> None:
        """Refuse, with a logged refusal, a caller that does not take part in ``case`` (the
        ZVH takes part in every case: ``gateway.broker.regie.takes_part``)."""
        if takes_part(case, who):
            return
        seq = await self.log_refusal(who, trace, policy, case, NOT_PARTICIPANT)
        raise Refused(
            NOT_PARTICIPANT,
            f"partner does not take part in this case and may not {action} it",
            seq,
        )

    async def require_procesregisseur(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        case: CaseRow,
        action: str,
    ) -> None:
        """Refuse, with a logged refusal, a caller that is not the case's procesregisseur: a
        ``process_director`` claim counts only for the holder of the procesregie."""
        if is_procesregisseur(case, who):
            return
        seq = await self.log_refusal(who, trace, policy, case, NOT_PROCESREGISSEUR)
        raise Refused(
            NOT_PROCESREGISSEUR,
            f"only the case's procesregisseur (the holder of its procesregie) {action} a case",
            seq,
        )
