"""Resent registrations and case-file entries, recognised by the caller's request id.

A partner system that resends a call (after a timeout, a lost answer, or a reseal to a new
gateway key) sends the same request id. The first call claims the id in the transaction that
creates the case or entry (:mod:`gateway.store.request_ids`); a later call with the same
partner and id finds that claim and is answered as the first call was, changing nothing:

* Same operation and content (compared by a keyed digest, :mod:`gateway.crypto.request_digest`):
  the first call's case id or entry id. The log gets a record of kind ``replay`` naming the
  first call's record (``detail.replay_of``), never a second registration or case note. The
  replay waits for that record, which the first call writes after its commit; when it does
  not appear in time the call is refused with ``RequestInProgress`` and may be sent again.
* Other content or another operation: ``RequestIdReused``; nothing is done or logged.

Content is compared, not its form: a registration sent sealed and resent in clear (or resealed
to another key) with the same content is the same request. Ids are kept for a retention
window (``request_id_retention_s``); after it an id is free again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from gateway.broker.caller import Principal, TraceContext
from gateway.broker.context import BrokerContext
from gateway.broker.errors import InvalidRequest, RequestIdReused, RequestInProgress
from gateway.broker.log_events import LogRecord, RecordKind, detail_of
from gateway.core import CompiledPolicy
from gateway.crypto.request_digest import request_digest, request_digest_key, same_digest
from gateway.crypto.submissions import MAX_REQUEST_ID_CHARS
from gateway.store.errors import StoreError
from gateway.store.request_ids import PriorRequest, RequestClaim

__all__ = [
    "ADD_PERSON",
    "ADD_TO_CASE_FILE",
    "DEFAULT_REQUEST_ID_RETENTION",
    "REGISTER_CASE",
    "REQUEST_ID_REUSED",
    "RequestIds",
]

log = logging.getLogger("ketenpoort.requests")

REGISTER_CASE = "ExchangeService/RegisterCase"
ADD_TO_CASE_FILE = "ExchangeService/AddToCaseFile"
ADD_PERSON = "ExchangeService/AddPerson"
# Long enough for any partner's retries after a timeout or an outage of a few hours.
DEFAULT_REQUEST_ID_RETENTION = timedelta(hours=24)
DEFAULT_PRUNE_INTERVAL = timedelta(minutes=10)
# How long a resent call waits for the first call's log record: the first call commits and
# then writes it, which takes milliseconds unless the gateway is in trouble.
DEFAULT_ORIGINAL_WAIT_S = 5.0
REQUEST_ID_REUSED = (
    "this request_id was already used for another request; give every request its own id "
    "and reuse it only to resend the same request"
)
IN_PROGRESS = "the first call with this request_id has not finished yet; send it again shortly"
_ORIGINAL_KIND = {
    REGISTER_CASE: RecordKind.REGISTRATION,
    ADD_TO_CASE_FILE: RecordKind.CASE_NOTE,
    ADD_PERSON: RecordKind.PERSON_ADDED,
}
# The first call's record is written after its claim, at the gateway's clock; the margin
# covers a clock that stepped back in between.
_CLOCK_MARGIN = timedelta(minutes=5)
_PAGE = 1000


def check_request_id(request_id: str) -> None:
    """A request id is 1..128 printable characters."""
    if not 0 < len(request_id) <= MAX_REQUEST_ID_CHARS or not request_id.isprintable():
        raise InvalidRequest(
            f"request_id must be 1..{MAX_REQUEST_ID_CHARS} printable characters"
        )


class RequestIds:
    """Claims request ids for new work and answers calls that repeat one."""

    def __init__(
        self,
        ctx: BrokerContext,
        *,
        retention: timedelta = DEFAULT_REQUEST_ID_RETENTION,
        prune_interval: timedelta = DEFAULT_PRUNE_INTERVAL,
        original_wait_s: float = DEFAULT_ORIGINAL_WAIT_S,
    ) -> None:
        if retention <= timedelta(0):
            raise ValueError("the request id retention must be positive")
        self._ctx = ctx
        self._key = request_digest_key(ctx.keystore.pseudonym_key)
        self._retention = retention
        self._prune_interval = prune_interval
        self._original_wait_s = original_wait_s
        self._last_prune: datetime | None = None

    def claim(
        self,
        who: Principal,
        request_id: str,
        operation: str,
        content: Sequence[str],
        *,
        case_id: str,
        entry_id: str,
        now: datetime,
    ) -> RequestClaim:
        """The claim a call makes on its request id, with the case or entry it will create."""
        check_request_id(request_id)
        return RequestClaim(
            partner_id=who.partner_id,
            request_id=request_id,
            operation=operation,
            content_digest=request_digest(self._key, operation, content),
            case_id=case_id,
            entry_id=entry_id,
            at=now,
            expired_before=now - self._retention,
        )

    def check_same(self, claim: RequestClaim, prior: PriorRequest) -> None:
        """Raise ``RequestIdReused`` unless ``prior`` is the same request as ``claim``."""
        same = prior.operation == claim.operation and same_digest(
            prior.content_digest, claim.content_digest
        )
        if not same:
            # Identifiers only: never the request id (chosen by the caller) or the content.
            log.info("%s from %s reused a request id for another request",
                     claim.operation, claim.partner_id)
            raise RequestIdReused(REQUEST_ID_REUSED)

    async def replay(
        self,
        who: Principal,
        trace: TraceContext,
        policy: CompiledPolicy,
        prior: PriorRequest,
    ) -> LogRecord:
        """The record of a resent call: kind ``replay``, naming the first call's record."""
        original = await self._original_record(prior)
        detail = (
            detail_of(replay_of=original.seq, entry_id=prior.entry_id)
            if prior.entry_id
            else detail_of(replay_of=original.seq)
        )
        return await self._ctx.record(
            RecordKind.REPLAY,
            who,
            trace,
            policy,
            case_id=prior.case_id,
            subject_pseudonym=original.event.subject_pseudonym,
            phase=original.event.phase,
            detail=detail,
        )

    async def maybe_prune(self, now: datetime) -> None:
        """Forget expired request ids, at most once per prune interval (and once at start)."""
        if self._last_prune is not None and now - self._last_prune < self._prune_interval:
            return
        self._last_prune = now
        try:
            await asyncio.to_thread(self._ctx.cases.prune_request_ids, now - self._retention)
        except StoreError as exc:
            # The next interval tries again; claims clear expired ids themselves meanwhile.
            log.warning("pruning expired request ids failed: %s", exc)

    async def _original_record(self, prior: PriorRequest) -> LogRecord:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._original_wait_s
        delay = 0.01
        while True:
            found = await asyncio.to_thread(self._find_original, prior)
            if found is not None:
                return found
            if loop.time() >= deadline:
                raise RequestInProgress(IN_PROGRESS)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    def _find_original(self, prior: PriorRequest) -> LogRecord | None:
        kind = _ORIGINAL_KIND.get(prior.operation)
        if kind is None:
            return None
        after = 0
        while True:
            page = self._ctx.log.list_records(
                case_id=prior.case_id,
                kinds=[kind],
                since=prior.created_at - _CLOCK_MARGIN,
                after_seq=after,
                limit=_PAGE,
            )
            for record in page:
                # A case has one registration; its case notes each name their entry, and an
                # added person's record names the person id in the same place.
                if kind is RecordKind.REGISTRATION or (
                    dict(record.event.detail).get("entry_id") == prior.entry_id
                ):
                    return record
            if len(page) < _PAGE:
                return None
            after = page[-1].seq
