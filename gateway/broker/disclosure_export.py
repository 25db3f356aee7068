"""A partner's export of its own disclosures (AVG art. 30 accounting; the Wpg duty to record
every disclosure of police data).

As *recipient* a partner gets the disclosure and triage records made to it, with its own
user references. As *source* it gets the records in which fields its system supplied were
disclosed or masked, with only those fields and without the recipient's user reference,
which belongs to another organisation.

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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.errors import InvalidRequest
from gateway.broker.records import event
from gateway.store.audit_event import AuditEvent, FieldEntry, RecordKind, detail_of, format_time
from gateway.store.audit_writer import LogRecord
from gateway.store.partner_export import (
    RELEASED_OUTCOMES,
    ExportScope,
    ExportView,
    PartnerExportStore,
)

DEFAULT_PAGE = 500
MAX_PAGE = 1000

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
    _store: PartnerExportStore

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


class DisclosureExports:
    def __init__(
        self, store: PartnerExportStore, append: Append, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._append = append
        self._clock = clock

    async def start(self, who: Principal, trace: TraceContext, req: ExportRequest) -> Export:
        """Check the request, fix the export's extent and record it in the log."""
        view = _view(req.role)
        since, until = _instant("since", req.since), _instant("until", req.until)
        if since is not None and until is not None and since >= until:
            raise InvalidRequest("since must be before until")
        if req.page_size > MAX_PAGE:
            raise InvalidRequest(f"page_size must be at most {MAX_PAGE}")
        party = who.partner_id if view is ExportView.RECIPIENT else who.partner_type
        through = await asyncio.to_thread(self._store.head_seq)
        scope = ExportScope(view, party, since, until, through)
        count = await asyncio.to_thread(self._store.count, scope, req.after_seq)
        record = await self._append(_export_event(who, trace, self._clock(), scope, req, count))
        return Export(
            scope, count, req.after_seq, req.page_size or DEFAULT_PAGE, record.seq, self._store
        )


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


def _view(role: str) -> ExportView:
    try:
        return ExportView(role or ExportView.RECIPIENT)
    except ValueError as exc:
        raise InvalidRequest(
            f"role must be one of {', '.join(v.value for v in ExportView)}"
        ) from exc


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
    except ValueError as exc:
        raise InvalidRequest(f"{name} is not a valid date or time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
