"""Storage of the ZVH's work on a case: intake, approach, regie, and the work-surface reads.

Every change is conditional on the state the use case decided on (the intake still pending,
the regie still held by whom the caller saw), so two directors acting at once cannot both
win: the second finds ``StateConflict`` and is told what changed. Each change adds its reason
entry (ciphertext) and its case events in the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, and_, insert, or_, select, update

from gateway.store.case_events import EventBell, insert_case_events
from gateway.store.cases import (
    CaseRow,
    EntryRow,
    entry_params,
    load_case,
    require_live_case,
)
from gateway.store.db import for_writing, translate_errors
from gateway.store.errors import CaseNotFound, StoreError
from gateway.store.tables import case_entries, case_participants, case_persons, cases

EVENT_INTAKE_DECIDED = "intake_decided"
EVENT_APPROACH_CHANGED = "approach_changed"
EVENT_REGIE_TRANSFERRED = "regie_transferred"
EVENT_REGIE_RETURNED = "regie_returned"


class RegieKind(StrEnum):
    PROCESREGIE = "procesregie"
    CASUSREGIE = "casusregie"


class StateConflict(StoreError):
    """The case changed between the caller's read and its write."""


@dataclass(frozen=True, slots=True)
class Holder:
    partner_id: str = ""
    user: str = ""


@dataclass(frozen=True, slots=True)
class CaseListing:
    """One page of a partner's cases; ``more`` when a further page exists."""

    cases: tuple[CaseRow, ...]
    more: bool


@dataclass(frozen=True, slots=True)
class ListFilter:
    partner_id: str
    user: str = ""
    phase: str = ""
    approach: str = ""
    assigned_to_me: bool = False
    # Cursor: the (created_at, case_id) of the last case of the previous page.
    after: tuple[datetime, str] | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class CasePersonRow:
    person_id: str
    role_in_case: str


class CaseWorkStore:
    def __init__(self, engine: Engine, bell: EventBell | None = None) -> None:
        self._engine = engine
        self._writer = for_writing(engine)
        self._bell = bell or EventBell()

    @translate_errors("case work: decide intake")
    def decide_intake(
        self,
        case_id: str,
        *,
        expected: Collection[str],
        intake: str,
        procesregie: Holder | None,
        close_in_phase: str | None,
        entry: EntryRow,
        now: datetime,
    ) -> CaseRow:
        """Set the intake state while it is one of ``expected``; ``procesregie`` assigns that
        regie, ``close_in_phase`` closes the case (phase and closure moment)."""
        values: dict[str, Any] = {"intake": intake}
        if procesregie is not None:
            values |= {
                "procesregie_partner": procesregie.partner_id,
                "procesregie_user": procesregie.user,
            }
        if close_in_phase is not None:
            values |= {"phase": close_in_phase, "closed_at": now}
        condition = cases.c.intake.in_(list(expected))
        return self._change(case_id, condition, values, [entry], EVENT_INTAKE_DECIDED, now)

    @translate_errors("case work: set approach")
    def set_approach(
        self, case_id: str, *, expected: str, approach: str, entry: EntryRow, now: datetime
    ) -> CaseRow:
        condition = cases.c.approach == expected
        values = {"approach": approach, "case_type": approach}
        return self._change(case_id, condition, values, [entry], EVENT_APPROACH_CHANGED, now)

    @translate_errors("case work: transfer regie")
    def transfer_regie(
        self,
        case_id: str,
        regie: RegieKind,
        *,
        expected: Holder,
        to: Holder,
        entries: Sequence[EntryRow],
        now: datetime,
    ) -> CaseRow:
        """Hand ``regie`` from ``expected`` (still the holder) to ``to``, keeping ``expected``
        as the previous holder."""
        col = cases.c
        condition = and_(
            col[f"{regie}_partner"] == expected.partner_id,
            col[f"{regie}_user"] == expected.user,
        )
        values = {
            f"{regie}_partner": to.partner_id,
            f"{regie}_user": to.user,
            f"{regie}_prev_partner": expected.partner_id,
            f"{regie}_prev_user": expected.user,
        }
        return self._change(case_id, condition, values, entries, EVENT_REGIE_TRANSFERRED, now)

    @translate_errors("case work: previous regie holder")
    def previous_holder(self, case_id: str, regie: RegieKind) -> Holder:
        col = cases.c
        with self._engine.begin() as conn:
            row = conn.execute(
                select(col[f"{regie}_prev_partner"], col[f"{regie}_prev_user"]).where(
                    col.case_id == case_id
                )
            ).first()
        if row is None:
            raise CaseNotFound(case_id)
        return Holder(row[0], row[1])

    @translate_errors("case work: return regie")
    def return_regie(
        self,
        case_id: str,
        regie: RegieKind,
        *,
        expected: Holder,
        previous: Holder,
        entries: Sequence[EntryRow],
        now: datetime,
    ) -> CaseRow:
        """Give ``regie`` back from ``expected`` to ``previous`` (both still as read)."""
        col = cases.c
        condition = and_(
            col[f"{regie}_partner"] == expected.partner_id,
            col[f"{regie}_user"] == expected.user,
            col[f"{regie}_prev_partner"] == previous.partner_id,
            col[f"{regie}_prev_user"] == previous.user,
        )
        values = {
            f"{regie}_partner": previous.partner_id,
            f"{regie}_user": previous.user,
            f"{regie}_prev_partner": "",
            f"{regie}_prev_user": "",
        }
        return self._change(case_id, condition, values, entries, EVENT_REGIE_RETURNED, now)

    def _change(
        self,
        case_id: str,
        condition: Any,
        values: dict[str, Any],
        entries: Sequence[EntryRow],
        event_kind: str,
        now: datetime,
    ) -> CaseRow:
        with self._writer.begin() as conn:
            require_live_case(conn, case_id)
            changed = conn.execute(
                update(cases)
                .where(cases.c.case_id == case_id, cases.c.shredded_at.is_(None), condition)
                .values(values)
            ).rowcount
            if changed == 0:
                raise StateConflict(f"case {case_id!r} changed meanwhile")
            if entries:
                conn.execute(insert(case_entries), [entry_params(e) for e in entries])
            insert_case_events(conn, case_id, event_kind, now)
            row = load_case(conn, case_id)
        self._bell.ring()
        return row

    @translate_errors("case work: list cases")
    def list_cases(self, f: ListFilter) -> CaseListing:
        """The partner's cases, newest registration first (see ListFilter)."""
        c = cases.c
        taking_part = select(case_participants.c.case_id).where(
            case_participants.c.partner_id == f.partner_id
        )
        query = select(c.case_id).where(c.case_id.in_(taking_part))
        if f.phase:
            query = query.where(c.phase == f.phase)
        if f.approach:
            query = query.where(c.approach == f.approach)
        if f.assigned_to_me:
            query = query.where(
                or_(_held(c, "procesregie", f), _held(c, "casusregie", f))
            )
        if f.after is not None:
            at, last = f.after
            query = query.where(
                or_(c.created_at < at, and_(c.created_at == at, c.case_id < last))
            )
        query = query.order_by(c.created_at.desc(), c.case_id.desc()).limit(f.limit + 1)
        with self._engine.begin() as conn:
            ids = conn.execute(query).scalars().all()
            rows = tuple(load_case(conn, case_id) for case_id in ids[: f.limit])
        return CaseListing(rows, len(ids) > f.limit)

    @translate_errors("case work: persons")
    def persons(self, case_id: str) -> list[CasePersonRow]:
        """The persons of the case that were not removed, in the order they were added."""
        p = case_persons.c
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(p.person_id, p.role_in_case)
                .where(p.case_id == case_id, p.removed_at.is_(None))
                .order_by(p.added_at, p.person_id)
            ).all()
        return [CasePersonRow(r.person_id, r.role_in_case) for r in rows]


def _held(c: Any, regie: str, f: ListFilter) -> Any:
    # Held by the caller: its partner, and its user where the regie names one.
    return and_(
        c[f"{regie}_partner"] == f.partner_id,
        or_(c[f"{regie}_user"] == "", c[f"{regie}_user"] == f.user),
    )

