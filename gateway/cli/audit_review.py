"""`ketenpoort audit review list | close`: the privacy officer's break-glass review queue.

`list` prints the break-glass disclosures whose review is open (or closed, or all); `close`
records a verdict and a comment on one. The commands find database and keys the way
`ketenpoort audit verify` does. `close` appends the review's log record itself (signing
checkpoints with the gateway's log key when the key directory holds it), so it works beside
running gateways and without one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine

from gateway.broker.break_glass_review import (
    MAX_PAGE,
    BreakGlassDisclosureNotFound,
    BreakGlassReviewQueue,
    ReviewClosed,
    ReviewComments,
)
from gateway.broker.caller import Principal, TraceContext
from gateway.broker.errors import InvalidRequest
from gateway.broker.free_texts import FreeTexts
from gateway.broker.log_events import AuditEvent, LogRecord
from gateway.cli.gateway_state import (
    add_state_args,
    checkpoint_journal,
    config_of,
    log_signer,
    opened_database,
)
from gateway.crypto.errors import CryptoError
from gateway.crypto.keystore import Keystore
from gateway.server.config import ConfigError
from gateway.store.audit_log import AuditLog
from gateway.store.reviews import BreakGlassReviews, Review, ReviewStatus, Verdict
from gateway.store.text_keys import TextKeyStore
from gateway.tlog.notes import format_time

# The ZVH's privacy officer acts for the ZVH, the only partner the shipped policy gives the
# privacy_officer role.
OFFICER_PARTNER = "zvh"
OFFICER_ROLE = "privacy_officer"
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2


def add_parsers(audit: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    review = audit.add_parser(
        "review", help="the privacy officer's review of break-glass disclosures"
    ).add_subparsers(title="review commands")

    listing = review.add_parser("list", help="break-glass disclosures and their reviews")
    add_state_args(listing)
    listing.add_argument(
        "--status",
        choices=[s.value for s in ReviewStatus],
        default=ReviewStatus.OPEN.value,
        help="which reviews (default: open)",
    )
    listing.set_defaults(run=run_list)

    close = review.add_parser(
        "close", help="close the review of one break-glass disclosure with a verdict"
    )
    add_state_args(close)
    close.add_argument("seq", type=int, help="log seq of the break-glass disclosure")
    close.add_argument("--verdict", required=True, choices=[v.value for v in Verdict])
    close.add_argument(
        "--comment",
        required=True,
        help="why (kept encrypted beside the log; the log holds its keyed digest)",
    )
    close.add_argument(
        "--reviewer",
        default=OFFICER_ROLE,
        help="user reference of the reviewing officer, never a name (default: privacy_officer)",
    )
    close.set_defaults(run=run_close)


@contextmanager
def _open(args: argparse.Namespace) -> Iterator[BreakGlassReviewQueue]:
    """The review queue on the database and its log; the log signs checkpoints when the log
    key is at hand. The gateway's keys open and seal the comments (encrypted at rest)."""
    config = config_of(args)
    try:
        keystore = Keystore.open(config.keys_dir, config.key_provider)
    except CryptoError as exc:
        raise ConfigError(
            f"review comments are encrypted; the gateway's keys are needed: {exc}"
        ) from exc
    try:
        with opened_database(config) as engine:
            yield _queue(
                engine,
                AuditLog(
                    engine, signer=log_signer(config), on_checkpoint=checkpoint_journal(config)
                ),
                keystore,
            )
    finally:
        keystore.close()


def run_list(args: argparse.Namespace) -> int:
    with _open(args) as queue:
        shown = asyncio.run(_print_all(queue, args.status))
    print(f"{shown} {args.status} review(s)")
    return 0


async def _print_all(queue: BreakGlassReviewQueue, status: str) -> int:
    after, shown = 0, 0
    while True:
        page = await queue.list(status, after, MAX_PAGE)
        for review in page.reviews:
            print(describe(review))
        shown += len(page.reviews)
        if not page.next_after_seq:
            return shown
        after = page.next_after_seq


def describe(review: Review) -> str:
    """One review as lines of identifiers; the comment, free text, is indented below."""
    record, e = review.disclosure, review.disclosure.event
    line = (
        f"seq={record.seq} {format_time(e.occurred_at)} partner={e.partner_id} role={e.role} "
        f"purpose={e.purpose} case={e.case_id} justification={e.justification_ref or '-'} "
        f"status={review.status.value}"
    )
    closure = review.closure
    if closure is None:
        return line
    return (
        f"{line} verdict={closure.verdict.value} by={closure.reviewed_by} "
        f"at={format_time(closure.reviewed_at)} review_seq={closure.review_seq}\n"
        f"    comment: {_comment(closure.comment)}"
    )


def _comment(comment: str | None) -> str:
    if comment is None:
        return "(deleted with the case at the end of its retention period)"
    return comment


def run_close(args: argparse.Namespace) -> int:
    officer = Principal(
        partner_id=OFFICER_PARTNER,
        partner_type=OFFICER_PARTNER,
        role=OFFICER_ROLE,
        user_ref=args.reviewer,
        token_id="",
        expires_at=0,
    )
    trace = TraceContext.from_traceparent(None, operation="ketenpoort audit review close")
    with _open(args) as queue:
        try:
            review = asyncio.run(queue.close(officer, trace, args.seq, args.verdict, args.comment))
        except InvalidRequest as exc:
            print(f"ketenpoort audit review close: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except (BreakGlassDisclosureNotFound, ReviewClosed) as exc:
            print(f"ketenpoort audit review close: {exc}", file=sys.stderr)
            return EXIT_REFUSED
    assert review.closure is not None
    print(
        f"review of seq={args.seq} closed: {review.closure.verdict.value}, "
        f"recorded as log record {review.closure.review_seq}"
    )
    return 0


def _queue(engine: Engine, log: AuditLog, keystore: Keystore) -> BreakGlassReviewQueue:
    def append_now(event: AuditEvent) -> LogRecord:
        return log.append_sync([event])[0]

    async def append(event: AuditEvent) -> LogRecord:
        # Committed before it returns, like the gateway's writer; no writer thread needed.
        return await asyncio.to_thread(append_now, event)

    texts = FreeTexts(TextKeyStore(engine), keystore, _now)
    return BreakGlassReviewQueue(
        BreakGlassReviews(engine, ReviewComments(texts)), append, _now, texts
    )


def _now() -> datetime:
    return datetime.now(UTC)
