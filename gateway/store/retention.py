"""Shredding a closed case at the end of its retention period, together with its log record.

One transaction per case
    The case's RETENTION record is appended to the accountability log, the case is claimed
    (``UPDATE cases SET shredded_at = now, wrapped_data_key = '' WHERE case_id = ? AND
    shredded_at IS NULL AND phase = <closing phase> AND closed_at = <as listed>``), its
    entries and participants are deleted, and then it commits. The shredding and its record
    land together or not at all: whatever crashes when, there is never a shredded case
    without its record nor a record of a case that was not shredded, so nothing has to be
    reconciled after a restart.

Several replicas at once
    The claim is conditional. Of replicas racing for one case exactly one changes the row;
    the others change nothing and roll back, their record with the rest. The record goes
    first because the log's head lock is the first lock every shredder takes (on SQLite the
    database write lock), so shredders queue there and cannot deadlock with each other. What
    the record says is checked by the transaction itself: the claim pins the phase and the
    closure moment it reports, and the entries deleted must number what it reports; an entry
    added after the case was listed rolls the attempt back, and it is made again with the
    count found. A write that adds to a case share-locks its row (``cases._require_live_case``),
    so it either commits before the shredding deletes, or sees the case shredded.

What is kept, what goes
    Kept: the case row with its id, subject pseudonym, type, phase, registering partner and
    dates, the wrapped key emptied and ``shredded_at`` set. Log records name the case by id
    and keep their meaning, and a request that arrives late is told that the case's data was
    deleted at the end of its retention period instead of "no such case". The registering
    partner is the same fact the case's registration record keeps in the log.
    Deleted: the entries (every value of the case file, as ciphertext) and the participants;
    emptied: the case's free-text keys (``text_keys``: the keys of its hold reasons, break-glass
    justifications and review comments), so those texts close with the case.
    The participant list is not the subject's data, but it links the subject's pseudonym to
    the partners that took part (that a mental-health or addiction-care provider was invited
    says something about the subject), nothing needs it once the case is shredded (every use
    case refuses a shredded case before it looks at participation), and what each partner
    did in the case stays in the log.

Why crypto-shredding holds where deleted bytes linger
    A deleted row can outlive its deletion as bytes: in SQLite's free pages and write-ahead
    log, in PostgreSQL's dead tuples until their space is reused, in WAL archives and in
    backups. The entries are AES-256-GCM ciphertexts under the case's data key, whose only
    stored copy (wrapped) is overwritten in the same transaction: without it no lingering
    ciphertext opens. On SQLite the files are cleaned too: ``secure_delete`` is on for every
    connection (``db.py``; it zeroes deleted content and freed pages, also the stale cell
    copies page splits leave when entries are written), and ``clear_deleted`` runs a TRUNCATE
    checkpoint that moves the zeroed pages into the database file and empties the WAL.
    PostgreSQL cannot zero what it deletes. A wrapped key that lingers there, in a WAL archive
    or in a backup still opens while the key-encryption key that wrapped it exists, and so do
    the ciphertexts beside it: for those copies shredding is complete once that KEK is retired
    (rotate it, rewrap the live cases' keys, delete the old key file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select

from gateway.broker.log_events import AuditEvent, LogRecord
from gateway.store.audit_writer import ChainWriter, EncodedEvent
from gateway.store.db import translate_errors
from gateway.store.errors import StoreError
from gateway.store.sqlite_checkpoint import is_sqlite_file
from gateway.store.tables import (
    case_entries,
    case_events,
    case_meeting_partners,
    case_meetings,
    case_participants,
    cases,
    plan_actions,
    text_keys,
)

# The intake state of a case the ZVH declined (gateway.broker.regie.Intake.DECLINED).
DECLINED = "declined"

DEFAULT_PAGE = 100
# Attempts at one case whose entries keep changing between listing and shredding.
MAX_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class DueCase:
    """A closed case whose retention period has ended, as listed before it is shredded."""

    case_id: str
    subject_pseudonym: str
    phase: str
    closed_at: datetime
    # Entries the case holds; once shredded, the number deleted.
    entries: int
    # Declined at intake: due after the shorter period for declined cases.
    declined: bool = False


@dataclass(frozen=True, slots=True)
class ShreddedCase:
    case: DueCase
    shredded_at: datetime
    record: LogRecord


# Builds the RETENTION event of a case shredded at the given moment.
RecordOf = Callable[[DueCase, datetime], AuditEvent]


@dataclass(frozen=True, slots=True)
class _Recount:
    found: int


class CaseShredder:
    """Lists cases due for shredding and shreds them one transaction each (see module doc)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        mark = "?" if self._sqlite else "%s"
        self._claim_sql = (
            f"UPDATE {cases.name} SET shredded_at = {mark}, wrapped_data_key = {mark} "
            f"WHERE case_id = {mark} AND shredded_at IS NULL AND phase = {mark} "
            f"AND closed_at = {mark}"
        )
        self._delete_entries_sql = f"DELETE FROM {case_entries.name} WHERE case_id = {mark}"
        # The case's free-text keys (hold reasons, justifications, review comments) go with it.
        self._shred_text_keys_sql = (
            f"UPDATE {text_keys.name} SET wrapped_data_key = {mark}, shredded_at = {mark} "
            f"WHERE case_id = {mark} AND shredded_at IS NULL"
        )
        self._delete_participants_sql = (
            f"DELETE FROM {case_participants.name} WHERE case_id = {mark}"
        )
        # The plan goes with the participants: who owned which action and sat at which
        # meeting says as much about the subject as who took part (their texts were entries).
        self._delete_plan_sql = (
            f"DELETE FROM {plan_actions.name} WHERE case_id = {mark}",
            f"DELETE FROM {case_meeting_partners.name} WHERE meeting_id IN "
            f"(SELECT meeting_id FROM {case_meetings.name} WHERE case_id = {mark})",
            f"DELETE FROM {case_meetings.name} WHERE case_id = {mark}",
        )
        # Which partners heard of the case says who took part, like the participant list.
        self._delete_events_sql = f"DELETE FROM {case_events.name} WHERE case_id = {mark}"

    @translate_errors("retention: listing cases due for shredding")
    def due(
        self,
        *,
        closed_by: datetime,
        closing_phase: str,
        after: DueCase | None = None,
        limit: int = DEFAULT_PAGE,
        declined_closed_by: datetime | None = None,
    ) -> list[DueCase]:
        """Unshredded cases in ``closing_phase`` closed at or before ``closed_by`` (a case
        declined at intake: at or before ``declined_closed_by``, when given), oldest closure
        first; page with ``after`` (the last case of the previous page)."""
        _require_aware(closed_by)
        c = cases.c
        entries = (
            select(func.count())
            .select_from(case_entries)
            .where(case_entries.c.case_id == c.case_id)
            .scalar_subquery()
        )
        due_by = c.closed_at <= closed_by
        if declined_closed_by is not None:
            _require_aware(declined_closed_by)
            due_by = or_(due_by, and_(c.intake == DECLINED, c.closed_at <= declined_closed_by))
        query = select(
            c.case_id, c.subject_pseudonym, c.phase, c.closed_at, entries, c.intake
        ).where(
            c.shredded_at.is_(None),
            c.phase == closing_phase,
            c.closed_at.is_not(None),
            due_by,
        )
        if after is not None:
            query = query.where(
                or_(
                    c.closed_at > after.closed_at,
                    and_(c.closed_at == after.closed_at, c.case_id > after.case_id),
                )
            )
        query = query.order_by(c.closed_at, c.case_id).limit(limit)
        with self._engine.begin() as conn:
            rows = conn.execute(query).all()
        return [DueCase(r[0], r[1], r[2], r[3], int(r[4]), r[5] == DECLINED) for r in rows]

    def shred(self, case: DueCase, now: datetime, record_of: RecordOf) -> ShreddedCase | None:
        """Shred ``case`` and append its record in one transaction.

        Returns None when the case is no longer as listed: another replica shredded it, or it
        was reopened or closed again since. Raises ``StoreError`` when the database fails;
        then nothing of the attempt remains, or (a commit whose outcome is unknown) all of it.
        """
        _require_aware(now)
        listed = case
        for _ in range(MAX_ATTEMPTS):
            outcome = self._attempt(listed, now, record_of)
            if not isinstance(outcome, _Recount):
                return outcome
            listed = replace(listed, entries=outcome.found)
        raise StoreError(f"case {case.case_id!r}: entries kept changing while it was shredded")

    def _attempt(
        self, case: DueCase, now: datetime, record_of: RecordOf
    ) -> ShreddedCase | _Recount | None:
        item = EncodedEvent.of(record_of(case, now))
        try:
            pooled = self._engine.raw_connection()
        except Exception as exc:
            raise StoreError("retention: no database connection") from exc
        try:
            cursor = pooled.cursor()
            try:
                if self._sqlite:
                    # On already for every connection (db.py); the shredding does not
                    # depend on how the engine was made.
                    cursor.execute("PRAGMA secure_delete = ON")
                # A writer of its own: whatever it keeps between batches is this attempt's.
                # The record's time is ``now``; recorded_at is the wall clock, as the log's
                # own writer keeps it.
                records, _ = ChainWriter(self._engine).write_batch(
                    pooled, [item], datetime.now(UTC)
                )
                cursor.execute(
                    self._claim_sql,
                    (self._time(now), b"", case.case_id, case.phase, self._time(case.closed_at)),
                )
                if cursor.rowcount != 1:
                    pooled.rollback()
                    return None
                cursor.execute(self._delete_entries_sql, (case.case_id,))
                deleted = cursor.rowcount
                if deleted != case.entries:
                    pooled.rollback()
                    return _Recount(deleted)
                cursor.execute(self._delete_participants_sql, (case.case_id,))
                for statement in self._delete_plan_sql:
                    cursor.execute(statement, (case.case_id,))
                cursor.execute(self._delete_events_sql, (case.case_id,))
                cursor.execute(
                    self._shred_text_keys_sql, (b"", self._time(now), case.case_id)
                )
                pooled.commit()
                return ShreddedCase(case, now, records[0])
            finally:
                cursor.close()
        except StoreError:
            _roll_back(pooled)
            raise
        except Exception as exc:
            _roll_back(pooled)
            raise StoreError(f"retention: shredding case {case.case_id!r} failed") from exc
        finally:
            pooled.close()

    @translate_errors("retention: clearing deleted data from the database files")
    def clear_deleted(self) -> bool | None:
        """Empty SQLite's write-ahead log into the database file (TRUNCATE checkpoint).

        True when the WAL was emptied, False when a reader kept it from being (the zeroed
        pages then reach the file at a later checkpoint), None where there is no file to
        clean (PostgreSQL, an in-memory database).
        """
        if not is_sqlite_file(self._engine):
            return None
        pooled = self._engine.raw_connection()
        try:
            cursor = pooled.cursor()
            try:
                busy, _frames, _copied = cursor.execute(
                    "PRAGMA wal_checkpoint(TRUNCATE)"
                ).fetchone()
            finally:
                cursor.close()
        finally:
            pooled.close()
        return int(busy) == 0

    def _time(self, moment: datetime) -> Any:
        # The text form SQLAlchemy's SQLite DateTime type stores (naive UTC), which the
        # claim compares with; PostgreSQL compares timestamptz values.
        moment = moment.astimezone(UTC)
        return moment.isoformat(" ", "microseconds")[:26] if self._sqlite else moment


def _roll_back(pooled: Any) -> None:
    try:
        pooled.rollback()
    except Exception:
        # A connection that cannot roll back is not handed out again.
        pooled.invalidate()


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime; retention works with aware UTC times only")
