"""A partner's export of its own disclosures (AVG art. 30 accounting; the Wpg duty to record
every disclosure of police data).

As *recipient* a partner gets the disclosure and triage records made to it, with its own
user references. As *source* it gets the records in which fields its system supplied were
disclosed or masked, with only those fields and without the recipient's user reference,
which belongs to another organisation.

A record names a field's source by partner type, since the gateway fetches a type's fields
from one system. Where several partners share a type (the RvdK and a GI are both child
protection), the source view is for the partner that runs that system: the one named by a
``[[sources]]`` entry of the configuration, or else the only partner of the type. Any other
partner of the type is refused (and the refusal recorded): the records would show it what
another organisation's data was disclosed for, to whom and about which subject.

An export covers the records up to the log head at its start, so it is a fixed set: pages
are read one at a time (memory stays at a page) and a cut-off export resumes with
``after_seq`` from the last page it received.

The export's own log record (kind ``log_export``) is written, durably, before the first page
leaves, as every disclosure's record is: a stream cut off half-way, or a gateway that stops
mid-stream, then still leaves the export on record. The record names the role, the period,
the seq range and the number of records the export holds; a resumed export is a new export
with its own record.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.errors import InvalidRequest, Refused, choice_of
from gateway.broker.log_events import AuditEvent, FieldEntry, LogRecord, RecordKind, detail_of
from gateway.broker.log_positions import log_position
from gateway.broker.records import event
from gateway.core import CompiledPolicy, UnknownPartner
from gateway.store.partner_export import (
    RELEASED_OUTCOMES,
    ExportScope,
    ExportView,
)
from gateway.tlog.notes import format_time

DEFAULT_PAGE = 500
MAX_PAGE = 1000
NOT_SOURCE_OPERATOR = "not_source_operator"

Append = Callable[[AuditEvent], Awaitable[LogRecord]]

# RFC 3339 date-time (section 5.6), or a full date meaning its first instant in UTC.
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2}))?"
)
_RELEASED = frozenset(o.value for o in RELEASED_OUTCOMES)


@dataclass(frozen=True)
class ExportRequest:
    role: str = ""
    since: str = ""
    until: str = ""
    after_seq: int = 0
    page_size: int = 0


@dataclass(frozen=True)
class ExportedRecord:
    """One record as the exporting partner may see it."""

    record: LogRecord
    # Every field (recipient view) or only the caller's released fields (source view).
    fields: tuple[FieldEntry, ...]
    # The recipient's user reference; "" in a source export.
    user_ref: str


@dataclass(frozen=True)
class ExportPage:
    records: list[ExportedRecord]
    # Resume after this seq; on the last page, the last seq the export covered.
    last_seq: int
    done: bool


@dataclass(frozen=True)
class Export:
    """A started export: its log record is written; ``pages()`` streams it."""

    scope: ExportScope
    count: int
    after_seq: int
    page_size: int
    log_seq: int
    _store: ExportStore

    async def pages(self) -> AsyncIterator[ExportPage]:
        after, delivered = self.after_seq, 0
        while True:
            records = await asyncio.to_thread(self._store.page, self.scope, after, self.page_size)
            delivered += len(records)
            done = delivered >= self.count or len(records) < self.page_size
            if records:
                after = records[-1].seq
            if done:
                after = max(after, self.scope.through_seq)
            yield ExportPage(
                [shown for r in records if (shown := _shown(self.scope, r)) is not None],
                after,
                done,
            )
            if done:
                return


class ExportStore(Protocol):
    """The log as a partner's export reads it (``gateway.store.partner_export``). Blocking."""

    def count(self, scope: ExportScope, after_seq: int) -> int: ...

    def head_seq(self) -> int: ...

    def page(self, scope: ExportScope, after_seq: int, limit: int) -> list[LogRecord]: ...


class DisclosureExports:
    """``policy`` gives the policy in force; ``source_partners`` are the partners the
    configuration names as running a source system (``[[sources]]``)."""

    def __init__(
        self,
        store: ExportStore,
        append: Append,
        clock: Callable[[], datetime],
        *,
        policy: Callable[[], CompiledPolicy],
        source_partners: Collection[str] = (),
    ) -> None:
        self._store = store
        self._append = append
        self._clock = clock
        self._policy = policy
        self._source_partners = frozenset(source_partners)

    async def start(self, who: Principal, trace: TraceContext, req: ExportRequest) -> Export:
        """Check the request, fix the export's extent and record it in the log."""
        view = choice_of(ExportView, "role", req.role, ExportView.RECIPIENT)
        since, until = _instant("since", req.since), _instant("until", req.until)
        if since is not None and until is not None and since >= until:
            raise InvalidRequest("since must be before until")
        if req.page_size > MAX_PAGE:
            raise InvalidRequest(f"page_size must be at most {MAX_PAGE}")
        log_position("after_seq", req.after_seq)
        if view is ExportView.SOURCE:
            await self._require_source_operator(who, trace)
        party = who.partner_id if view is ExportView.RECIPIENT else who.partner_type
        through = await asyncio.to_thread(self._store.head_seq)
        scope = ExportScope(view, party, since, until, through)
        count = await asyncio.to_thread(self._store.count, scope, req.after_seq)
        record = await self._append(_export_event(who, trace, self._clock(), scope, req, count))
        return Export(
            scope, count, req.after_seq, req.page_size or DEFAULT_PAGE, record.seq, self._store
        )

    async def _require_source_operator(self, who: Principal, trace: TraceContext) -> None:
        policy = self._policy()
        if runs_source(policy, self._source_partners, who):
            return
        record = await self._append(
            event(
                RecordKind.REFUSAL,
                principal=who,
                trace=trace,
                at=self._clock(),
                case_id="",
                subject_pseudonym="",
                phase="",
                policy_version=policy.version,
                status="refused",
                refusal_code=NOT_SOURCE_OPERATOR,
                detail=detail_of(role=ExportView.SOURCE.value),
            )
        )
        raise Refused(
            NOT_SOURCE_OPERATOR,
            "another partner of this type runs the source system its records name",
            record.seq,
        )


def runs_source(policy: CompiledPolicy, source_partners: Collection[str], who: Principal) -> bool:
    """Whether ``who`` runs the source system of its partner type: named so by the
    configuration, or, where the configuration names no partner of the type, its only
    partner."""
    configured = {p for p in source_partners if _type_of(policy, p) == who.partner_type}
    if configured:
        return who.partner_id in configured
    same_type = [p.id for p in policy.partners.values() if p.type == who.partner_type]
    return same_type == [who.partner_id]


def _type_of(policy: CompiledPolicy, partner_id: str) -> str | None:
    try:
        return policy.partner(partner_id).type
    except UnknownPartner:
        return None


def _shown(scope: ExportScope, record: LogRecord) -> ExportedRecord | None:
    e = record.event
    if scope.view is ExportView.RECIPIENT:
        return ExportedRecord(record, e.fields, e.user_ref)
    own = tuple(f for f in e.fields if f.source == scope.party and f.outcome in _RELEASED)
    # The query selects only records with such a field; this keeps the promise if it did not.
    return ExportedRecord(record, own, "") if own else None


def _export_event(
    who: Principal,
    trace: TraceContext,
    at: datetime,
    scope: ExportScope,
    req: ExportRequest,
    count: int,
) -> AuditEvent:
    return event(
        RecordKind.LOG_EXPORT,
        principal=who,
        trace=trace,
        at=at,
        case_id="",
        subject_pseudonym="",
        phase="",
        policy_version="",
        detail=detail_of(
            role=scope.view.value,
            since=format_time(scope.since) if scope.since else "",
            until=format_time(scope.until) if scope.until else "",
            after_seq=req.after_seq,
            through_seq=scope.through_seq,
            count=count,
        ),
    )


def _instant(name: str, text: str) -> datetime | None:
    """An RFC 3339 time (or a date: its first instant, UTC); None when empty."""
    if not text:
        return None
    if _DATE_TIME.fullmatch(text) is None:
        raise InvalidRequest(
            f"{name} must be an RFC 3339 time such as 2025-03-01T00:00:00Z, or a date"
        )
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        # An offset can carry a time at the edge of the calendar past year 1 or 9999.
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidRequest(f"{name} is not a valid date or time") from exc
