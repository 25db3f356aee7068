"""The break-glass review use case: the privacy officer lists break-glass disclosures and
closes each with a verdict and a comment.

A close appends the review's log record (durably) before it writes the review row; see
``gateway.store.reviews`` for why that order, and what the log holds after an interrupted or
lost close. The same code serves the gRPC service (appending through the log's writer) and
the command line (appending with ``append_sync``): the caller hands in ``append``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.errors import AlreadyEnded, CaseNotFound, InvalidRequest, choice_of
from gateway.broker.free_texts import FreeTexts, SealedText
from gateway.broker.log_events import AuditEvent, LogRecord, RecordKind, detail_of
from gateway.broker.log_positions import log_position
from gateway.broker.records import event
from gateway.crypto.free_text import KeyScope, TextClass, TextKind
from gateway.store.errors import CaseNotFound as CaseNotFoundInStore
from gateway.store.errors import CaseShredded
from gateway.store.reviews import (
    NotBreakGlassDisclosure,
    Review,
    ReviewAlreadyClosed,
    ReviewClosure,
    ReviewStatus,
    SealedComment,
    Verdict,
)

MAX_COMMENT_CHARS = 4000
DEFAULT_PAGE = 100
MAX_PAGE = 1000

Append = Callable[[AuditEvent], Awaitable[LogRecord]]


class BreakGlassDisclosureNotFound(CaseNotFound):
    """No break-glass disclosure record has that seq (reported as NOT_FOUND, like a case)."""


class ReviewClosed(AlreadyEnded):
    """The review was closed before, by this or another replica (FAILED_PRECONDITION)."""


@dataclass(frozen=True)
class ReviewPage:
    reviews: list[Review]
    # Pass as after_seq for the next page; 0 when there is none.
    next_after_seq: int


class ReviewComments:
    """Review comments under the privacy-officer text key of the reviewed case (the class a
    later rights feature opens to the privacy officer alone); a review closed after its case
    was shredded gets a key of its own, kept as long as the review."""

    def __init__(self, texts: FreeTexts) -> None:
        self._texts = texts

    def seal_comment(self, comment: str, disclosure: LogRecord) -> SealedComment:
        row_id = str(disclosure.seq)
        case_id = disclosure.event.case_id
        if case_id:
            try:
                sealed = self._seal(comment, row_id, KeyScope.CASE, case_id)
                return SealedComment(sealed.key_id, sealed.ciphertext)
            except (CaseShredded, CaseNotFoundInStore):
                pass  # the case's key is gone (or never was): the review's own key
        sealed = self._seal(comment, row_id, KeyScope.REVIEW, row_id)
        return SealedComment(sealed.key_id, sealed.ciphertext)

    def open_comments(self, stored: Sequence[tuple[SealedComment, int]]) -> list[str | None]:
        return self._texts.open_many(
            [(SealedText(s.key_id, s.ciphertext), str(seq)) for s, seq in stored],
            kind=TextKind.REVIEW_COMMENT,
        )

    def _seal(self, comment: str, row_id: str, scope: KeyScope, scope_id: str) -> SealedText:
        return self._texts.seal(
            comment,
            text_class=TextClass.PRIVACY_OFFICER,
            kind=TextKind.REVIEW_COMMENT,
            row_id=row_id,
            scope=scope,
            scope_id=scope_id,
        )


def reviewer_of(principal: Principal) -> str:
    """``<partner id>:<user reference>``, or the partner id alone when no user was named."""
    if principal.user_ref:
        return f"{principal.partner_id}:{principal.user_ref}"
    return principal.partner_id


class ReviewStore(Protocol):
    """The break-glass review queue as the use case reads and closes it
    (``gateway.store.reviews.BreakGlassReviews``). Blocking calls."""

    def count_open(self) -> int: ...

    def list_reviews(
        self, *, status: ReviewStatus = ReviewStatus.OPEN, after_seq: int = 0, limit: int = 100
    ) -> list[Review]: ...

    def open_disclosure(self, seq: int) -> LogRecord: ...

    def record_closure(self, disclosure: LogRecord, closure: ReviewClosure) -> Review: ...


class BreakGlassReviewQueue:
    """Lists and closes break-glass reviews; ``on_open_count`` hears the number still open
    after each list and close (for the gauge)."""

    def __init__(
        self,
        reviews: ReviewStore,
        append: Append,
        clock: Callable[[], datetime],
        texts: FreeTexts,
        on_open_count: Callable[[int], None] | None = None,
    ) -> None:
        self._reviews = reviews
        self._texts = texts
        self._append = append
        self._clock = clock
        self._on_open_count = on_open_count

    async def list(self, status: str = "", after_seq: int = 0, page_size: int = 0) -> ReviewPage:
        wanted = choice_of(ReviewStatus, "status", status, ReviewStatus.OPEN)
        log_position("after_seq", after_seq)
        if page_size > MAX_PAGE:
            raise InvalidRequest(f"page_size must be at most {MAX_PAGE}")
        limit = page_size or DEFAULT_PAGE
        found = await asyncio.to_thread(
            self._reviews.list_reviews, status=wanted, after_seq=after_seq, limit=limit + 1
        )
        page = found[:limit]
        await self.refresh_open_count()
        more = len(found) > limit
        return ReviewPage(page, page[-1].disclosure.seq if more and page else 0)

    async def close(
        self,
        who: Principal,
        trace: TraceContext,
        disclosure_seq: int,
        verdict: str,
        comment: str,
    ) -> Review:
        """Record the verdict on one break-glass disclosure: the log record first, then the
        row. Raises ``BreakGlassDisclosureNotFound`` or ``ReviewClosed``."""
        chosen = choice_of(Verdict, "verdict", verdict)
        log_position("disclosure_seq", disclosure_seq)
        _check_comment(comment)
        try:
            disclosure = await asyncio.to_thread(self._reviews.open_disclosure, disclosure_seq)
        except NotBreakGlassDisclosure as exc:
            raise BreakGlassDisclosureNotFound(str(exc)) from exc
        except ReviewAlreadyClosed as exc:
            raise ReviewClosed(str(exc)) from exc
        now = self._clock()
        record = await self._append(
            _review_event(
                who, trace, now, disclosure, chosen,
                self._texts.digest(TextKind.REVIEW_COMMENT, comment),
            )
        )
        closure = ReviewClosure(chosen, comment, reviewer_of(who), now, record.seq)
        try:
            review = await asyncio.to_thread(self._reviews.record_closure, disclosure, closure)
        except ReviewAlreadyClosed as exc:
            # Another replica's close won the race; its row names its record, not ours.
            raise ReviewClosed(str(exc)) from exc
        finally:
            await self.refresh_open_count()
        return review

    async def refresh_open_count(self) -> int:
        count = await asyncio.to_thread(self._reviews.count_open)
        if self._on_open_count is not None:
            self._on_open_count(count)
        return count


def _review_event(
    who: Principal,
    trace: TraceContext,
    at: datetime,
    disclosure: LogRecord,
    verdict: Verdict,
    digest: str,
) -> AuditEvent:
    reviewed = disclosure.event
    return event(
        RecordKind.BREAK_GLASS_REVIEW,
        principal=who,
        trace=trace,
        at=at,
        case_id=reviewed.case_id,
        subject_pseudonym=reviewed.subject_pseudonym,
        # The review is about one past disclosure, not a step of the case or the policy.
        phase="",
        policy_version="",
        detail=detail_of(reviewed_seq=disclosure.seq, verdict=verdict.value, comment_hmac=digest),
    )


def _check_comment(comment: str) -> None:
    if not comment.strip():
        raise InvalidRequest("a review needs a comment saying why")
    if len(comment) > MAX_COMMENT_CHARS:
        raise InvalidRequest(f"comment is longer than {MAX_COMMENT_CHARS} characters")
    if "\x00" in comment:
        raise InvalidRequest("comment must not contain NUL characters")
    try:
        comment.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest("comment is not valid text") from exc
