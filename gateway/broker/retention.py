"""Retention: shred the case file of every case closed longer ago than the retention period.

The covenant lets the ZVH keep a case file for a fixed period after the case is closed
(``retention_days_after_closure``, two years by default); a case the ZVH declined at intake
was never worked and is kept for a shorter period (``declined_retention_days``, 90 days by
default), counted from the decline. A case in the closing phase whose
closure lies that long ago or longer is shredded: its data key is destroyed and its entries
and participants deleted, in one transaction with its RETENTION record (see
``gateway.store.retention`` for why a crash or a second replica can split neither). The record
names the case and the subject's pseudonym and, in its detail, the closure moment, the number
of entries deleted and the retention period applied; never a value.

The same use case serves ``ketenpoort retention run`` and the gateway's periodic task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.casefile import CLOSING_PHASE
from gateway.broker.ids import random_hex
from gateway.broker.log_events import AuditEvent, RecordKind, detail_of
from gateway.broker.records import event
from gateway.store.retention import DEFAULT_PAGE, DueCase, RecordOf, ShreddedCase
from gateway.tlog.notes import format_time

# The ZVH keeps the case file, so the ZVH shreds it; no person acts, so the role says system.
SYSTEM_PRINCIPAL = Principal(
    partner_id="zvh",
    partner_type="zvh",
    role="system",
    user_ref="retention",
    token_id="",
    expires_at=0,
)


@dataclass(frozen=True)
class RetentionOutcome:
    """One case a run shredded, or in a dry run would shred."""

    case_id: str
    closed_at: datetime
    entries: int
    # The case's RETENTION record; 0 in a dry run.
    log_seq: int


@dataclass(frozen=True)
class RetentionReport:
    now: datetime
    # Cases closed at or before this moment are due.
    cutoff: datetime
    dry_run: bool
    cases: tuple[RetentionOutcome, ...]
    # Listed as due but no longer so when claimed: shredded by another replica, or reopened.
    passed_over: int
    # SQLite: whether the write-ahead log was emptied after shredding (None: not applicable).
    wal_cleared: bool | None
    # The run was asked to stop before it had gone through every due case.
    stopped: bool


class Shredder(Protocol):
    """Finds the cases due for shredding and shreds one, with its record, in one
    transaction (``gateway.store.retention.CaseShredder``). Blocking calls."""

    def due(
        self,
        *,
        closed_by: datetime,
        closing_phase: str,
        after: DueCase | None = None,
        limit: int = DEFAULT_PAGE,
        declined_closed_by: datetime | None = None,
    ) -> list[DueCase]: ...

    def shred(self, case: DueCase, now: datetime, record_of: RecordOf) -> ShreddedCase | None: ...

    def clear_deleted(self) -> bool | None: ...


class Retention:
    def __init__(
        self,
        shredder: Shredder,
        *,
        retention_days: int,
        operation: str,
        principal: Principal = SYSTEM_PRINCIPAL,
        closing_phase: str = CLOSING_PHASE,
        page: int = DEFAULT_PAGE,
        declined_retention_days: int | None = None,
    ) -> None:
        """``declined_retention_days``: the period of cases declined at intake (None: the
        same as every other case)."""
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        if declined_retention_days is not None and declined_retention_days < 1:
            raise ValueError("declined_retention_days must be at least 1")
        self._shredder = shredder
        self._days = retention_days
        self._declined_days = declined_retention_days
        self._operation = operation
        self._principal = principal
        self._closing_phase = closing_phase
        self._page = page

    @property
    def retention_days(self) -> int:
        return self._days

    def cutoff(self, now: datetime) -> datetime:
        return now - timedelta(days=self._days)

    def run(
        self,
        now: datetime,
        *,
        dry_run: bool = False,
        should_stop: Callable[[], bool] = lambda: False,
        on_case: Callable[[RetentionOutcome], None] | None = None,
    ) -> RetentionReport:
        """Shred every due case (or, with ``dry_run``, only list them), oldest closure first.

        Blocking: run it on a worker thread from asyncio code. ``should_stop`` is asked
        between cases; ``on_case`` hears of each case as soon as it is done.
        """
        cutoff = self.cutoff(now)
        declined_cutoff = (
            None if self._declined_days is None else now - timedelta(days=self._declined_days)
        )
        # One trace for the run; each case's record is a span of it.
        trace_id = random_hex(16)
        done: list[RetentionOutcome] = []
        passed_over = 0
        after: DueCase | None = None
        stopped = False
        while not stopped:
            page = self._shredder.due(
                closed_by=cutoff,
                closing_phase=self._closing_phase,
                after=after,
                limit=self._page,
                declined_closed_by=declined_cutoff,
            )
            for case in page:
                if should_stop():
                    stopped = True
                    break
                outcome = self._one(case, now, trace_id, dry_run)
                if outcome is None:
                    passed_over += 1
                    continue
                done.append(outcome)
                if on_case is not None:
                    on_case(outcome)
            if len(page) < self._page:
                break
            after = page[-1]
        wal_cleared = None if dry_run or not done else self._shredder.clear_deleted()
        return RetentionReport(now, cutoff, dry_run, tuple(done), passed_over, wal_cleared, stopped)

    def _one(
        self, case: DueCase, now: datetime, trace_id: str, dry_run: bool
    ) -> RetentionOutcome | None:
        if dry_run:
            return RetentionOutcome(case.case_id, case.closed_at, case.entries, 0)

        def record_of(shredded: DueCase, at: datetime) -> AuditEvent:
            return self._event(shredded, at, trace_id)

        result = self._shredder.shred(case, now, record_of)
        if result is None:
            return None
        return RetentionOutcome(
            case.case_id, case.closed_at, result.case.entries, result.record.seq
        )

    def _event(self, case: DueCase, at: datetime, trace_id: str) -> AuditEvent:
        trace = TraceContext(trace_id=trace_id, span_id=random_hex(8), operation=self._operation)
        return event(
            RecordKind.RETENTION,
            principal=self._principal,
            trace=trace,
            at=at,
            case_id=case.case_id,
            subject_pseudonym=case.subject_pseudonym,
            phase=case.phase,
            # The period comes from the gateway's configuration, not from the policy.
            policy_version="",
            detail=detail_of(
                closed_at=format_time(case.closed_at),
                entries_deleted=case.entries,
                retention_days=(
                    self._declined_days
                    if case.declined and self._declined_days is not None
                    else self._days
                ),
            ),
        )
