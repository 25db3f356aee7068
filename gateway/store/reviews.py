"""The privacy officer's review queue of break-glass disclosures.

A disclosure made under a break-glass purpose (a log record of kind ``disclosure`` with
``break_glass`` true) is open for review until ``break_glass_reviews`` holds a row for its
seq. Closing a review takes two writes, in this order:

1. the review's own log record (kind ``break_glass_review``, detail ``reviewed_seq``,
   ``verdict`` and ``comment_hmac``, a keyed digest; never the comment) is appended and
   committed;
2. the row is inserted and names that record as ``review_seq``.

The row's primary key on ``disclosure_seq`` decides between closes that race on several
gateway replicas: the second insert fails with a unique violation, and that close is told the
review is already closed. If a process stops between the two writes, the review is still open
and closing it again works.

So the log may hold more than one review record for a disclosure (one per interrupted or
losing close). The row names the one that counts: read a review through this table, never by
taking the newest review record from the log. The comment text lives only in the row,
encrypted by a ``CommentCipher`` (the gateway's: under the privacy-officer text key of the
reviewed case, ``gateway.crypto.free_text``); the record holds its keyed digest, which proves
the row's comment unchanged since the review to whoever holds the gateway's keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Engine, Select, func, insert, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gateway.broker.log_events import LogRecord, RecordKind
from gateway.store.audit_event import parse_event
from gateway.store.db import for_writing, translate_errors
from gateway.store.errors import StoreError
from gateway.store.tables import audit_log, break_glass_reviews

__all__ = [
    "BreakGlassReviews",
    "CommentCipher",
    "SealedComment",
    "NotBreakGlassDisclosure",
    "Review",
    "ReviewAlreadyClosed",
    "ReviewClosure",
    "ReviewStatus",
    "Verdict",
]

MAX_LIST_LIMIT = 10_000

# The bare column, so that SQLite sees the partial index's own condition: SQLAlchemy would
# write "break_glass = 1" there, which SQLite does not match to "WHERE break_glass".
_BREAK_GLASS = text(f"{audit_log.name}.break_glass")


class ReviewStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    ALL = "all"


class Verdict(StrEnum):
    JUSTIFIED = "justified"
    NOT_JUSTIFIED = "not_justified"


class NotBreakGlassDisclosure(StoreError):
    """The seq names no break-glass disclosure record, so there is nothing to review."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"log record {seq} is not a break-glass disclosure")
        self.seq = seq


class ReviewAlreadyClosed(StoreError):
    """The review of this break-glass disclosure was closed before (possibly just now, by
    another replica)."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"the review of break-glass disclosure {seq} is already closed")
        self.seq = seq


@dataclass(frozen=True, slots=True)
class SealedComment:
    """A review comment as stored: the id of its text key and its ciphertext."""

    key_id: str
    ciphertext: bytes


class CommentCipher(Protocol):
    """Encrypts review comments for storage and opens them again."""

    def seal_comment(self, comment: str, disclosure: LogRecord) -> SealedComment: ...

    def open_comments(
        self, stored: Sequence[tuple[SealedComment, int]]
    ) -> list[str | None]:
        """Each (comment, reviewed seq) in clear, or None where its key was shredded."""
        ...


@dataclass(frozen=True, slots=True)
class ReviewClosure:
    """The privacy officer's verdict on one break-glass disclosure."""

    verdict: Verdict
    # None when it can no longer be read: its key was shredded with the case.
    comment: str | None
    # "<partner id>:<user reference>" of the reviewer.
    reviewed_by: str
    reviewed_at: datetime
    # Seq of the review's own log record.
    review_seq: int


@dataclass(frozen=True, slots=True)
class Review:
    disclosure: LogRecord
    closure: ReviewClosure | None

    @property
    def status(self) -> ReviewStatus:
        return ReviewStatus.OPEN if self.closure is None else ReviewStatus.CLOSED


_COLUMNS = (
    audit_log.c.seq,
    audit_log.c.body,
    audit_log.c.prev_hash,
    audit_log.c.record_hash,
    audit_log.c.recorded_at,
    break_glass_reviews.c.disclosure_seq.label("reviewed"),
    break_glass_reviews.c.verdict,
    break_glass_reviews.c.comment_ciphertext,
    break_glass_reviews.c.comment_key_id,
    break_glass_reviews.c.reviewed_by,
    break_glass_reviews.c.reviewed_at,
    break_glass_reviews.c.review_seq,
)


def _queue(*columns: Any) -> Select[Any]:
    """Break-glass disclosures joined with their reviews, through the partial index."""
    t, r = audit_log.c, break_glass_reviews.c
    return (
        select(*columns)
        .select_from(audit_log.outerjoin(break_glass_reviews, r.disclosure_seq == t.seq))
        .where(_BREAK_GLASS, t.kind == RecordKind.DISCLOSURE.value)
    )


def _filtered(query: Select[Any], status: ReviewStatus) -> Select[Any]:
    reviewed = break_glass_reviews.c.disclosure_seq
    if status is ReviewStatus.OPEN:
        return query.where(reviewed.is_(None))
    if status is ReviewStatus.CLOSED:
        return query.where(reviewed.is_not(None))
    return query


def _review(row: Any, comment: str | None) -> Review:
    record = _record(row)
    if row.reviewed is None:
        return Review(record, None)
    closure = ReviewClosure(
        verdict=Verdict(row.verdict),
        comment=comment,
        reviewed_by=row.reviewed_by,
        reviewed_at=row.reviewed_at,
        review_seq=int(row.review_seq),
    )
    return Review(record, closure)


def _record(row: Any) -> LogRecord:
    return LogRecord(
        int(row.seq), parse_event(row.body), row.prev_hash, row.record_hash, row.recorded_at
    )


class BreakGlassReviews:
    """Synchronous access to the review queue; call it through ``asyncio.to_thread`` from a
    server. Writing the review's log record is the caller's step (see the module doc)."""

    def __init__(self, engine: Engine, comments: CommentCipher) -> None:
        self._engine = engine
        self._writer = for_writing(engine)
        self._comments = comments

    @translate_errors("listing break-glass reviews")
    def list_reviews(
        self,
        *,
        status: ReviewStatus = ReviewStatus.OPEN,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[Review]:
        """Reviews of break-glass disclosures with a seq above ``after_seq``, by seq."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        query = _filtered(_queue(*_COLUMNS), ReviewStatus(status))
        query = query.where(audit_log.c.seq > after_seq).order_by(audit_log.c.seq).limit(limit)
        with self._engine.begin() as conn:
            rows = conn.execute(query).all()
        closed = [r for r in rows if r.reviewed is not None]
        opened = self._comments.open_comments(
            [(SealedComment(r.comment_key_id, bytes(r.comment_ciphertext)), int(r.seq))
             for r in closed]
        )
        comments = {int(r.seq): c for r, c in zip(closed, opened, strict=True)}
        return [_review(row, comments.get(int(row.seq))) for row in rows]

    @translate_errors("counting open break-glass reviews")
    def count_open(self) -> int:
        query = _filtered(_queue(func.count()), ReviewStatus.OPEN)
        with self._engine.begin() as conn:
            return int(conn.execute(query).scalar_one())

    @translate_errors("reading a break-glass disclosure")
    def open_disclosure(self, seq: int) -> LogRecord:
        """The break-glass disclosure record ``seq`` whose review is open.

        Raises ``NotBreakGlassDisclosure`` or ``ReviewAlreadyClosed``. Another replica may
        close the review right after this returns; ``record_closure`` catches that.
        """
        query = _queue(*_COLUMNS).where(audit_log.c.seq == seq)
        with self._engine.begin() as conn:
            row = conn.execute(query).one_or_none()
        if row is None:
            raise NotBreakGlassDisclosure(seq)
        if row.reviewed is not None:
            raise ReviewAlreadyClosed(seq)
        return _record(row)

    def record_closure(self, disclosure: LogRecord, closure: ReviewClosure) -> Review:
        """Close the review by inserting its row; ``ReviewAlreadyClosed`` if one exists.

        The review's log record (``closure.review_seq``) must be committed first.
        """
        if closure.comment is None:
            raise ValueError("a review is closed with a comment")
        sealed = self._comments.seal_comment(closure.comment, disclosure)
        values = {
            "disclosure_seq": disclosure.seq,
            "verdict": closure.verdict.value,
            "comment_ciphertext": sealed.ciphertext,
            "comment_key_id": sealed.key_id,
            "reviewed_by": closure.reviewed_by,
            "reviewed_at": closure.reviewed_at,
            "review_seq": closure.review_seq,
        }
        try:
            self._insert(values)
        except IntegrityError as exc:
            # The primary key is the only constraint valid input can hit; confirm that it
            # was a row for this seq before calling the review closed.
            if self._is_closed(disclosure.seq):
                raise ReviewAlreadyClosed(disclosure.seq) from exc
            raise StoreError("closing a break-glass review failed") from exc
        return Review(disclosure, closure)

    def _insert(self, values: dict[str, Any]) -> None:
        try:
            with self._writer.begin() as conn:
                conn.execute(insert(break_glass_reviews).values(values))
        except IntegrityError:
            raise  # record_closure tells a unique violation from other failures
        except SQLAlchemyError as exc:
            raise StoreError("closing a break-glass review failed") from exc

    @translate_errors("reading a break-glass review")
    def _is_closed(self, seq: int) -> bool:
        query = select(break_glass_reviews.c.disclosure_seq).where(
            break_glass_reviews.c.disclosure_seq == seq
        )
        with self._engine.begin() as conn:
            return conn.execute(query).first() is not None
