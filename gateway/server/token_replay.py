"""Admitting a verified token: once only, and only while nothing it rests on is revoked.

Every call claims its token's ``jti`` in the shared database. Claims from concurrent calls
share one transaction (group commit, as the accountability log does), so the cost per call
is a share of one commit, not a commit each. The transaction also reads the newest
revocation id; when it moved, the revocation list is re-read before any call of the batch
is admitted, so a revocation made on any replica holds from the next call on. When the
database cannot be reached the call is refused (fail closed), never admitted unchecked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from gateway.server.auth import AuthRefused, RefusalReason, VerifiedToken
from gateway.store.errors import StoreError
from gateway.store.token_guard import (
    NO_REVOCATIONS,
    Revocations,
    TokenClaim,
    claim_tokens,
    load_revocations,
    prune_token_uses,
    token_hash,
)

__all__ = ["TokenAdmission"]

log = logging.getLogger("ketenpoort.auth")

DEFAULT_PRUNE_INTERVAL_S = 60.0
_Pending = tuple[TokenClaim, "asyncio.Future[bool]"]


class TokenAdmission:
    def __init__(
        self,
        engine: Engine,
        *,
        leeway_s: int,
        prune_interval_s: float = DEFAULT_PRUNE_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._leeway = leeway_s
        self._prune_interval = prune_interval_s
        self._clock = clock
        self._pending: list[_Pending] = []
        self._flushing = False
        self._revocations: Revocations = NO_REVOCATIONS
        self._last_prune = clock()
        self._tasks: set[asyncio.Task[None]] = set()
        # Committed claim transactions and the claims they held: their ratio is the mean
        # group-commit batch, the share of one commit a call pays.
        self.batches_committed = 0
        self.claims_committed = 0

    @property
    def revocations(self) -> Revocations:
        return self._revocations

    async def start(self) -> None:
        self._revocations = await asyncio.to_thread(load_revocations, self._engine)

    async def admit(self, token: VerifiedToken) -> None:
        """Raise AuthRefused when the token was used before or rests on a revocation."""
        who = token.principal
        # Kept until the token could no longer pass the expiry check anyway.
        until = datetime.fromtimestamp(who.expires_at + self._leeway, UTC) + timedelta(seconds=1)
        claim = TokenClaim(token_hash(who.partner_id, token.jti), until)
        try:
            fresh = await self._claim(claim)
        except StoreError:
            raise AuthRefused(
                RefusalReason.CHECK_UNAVAILABLE,
                "the gateway cannot check tokens right now; retry later",
                partner_id=who.partner_id,
                certificate=token.certificate,
                role=who.role,
            ) from None
        self._check_revocations(token)
        if not fresh:
            raise AuthRefused(
                RefusalReason.REPLAYED,
                "token was already used; use a new token for every call",
                partner_id=who.partner_id,
                certificate=token.certificate,
                role=who.role,
            )

    def _check_revocations(self, token: VerifiedToken) -> None:
        revoked = self._revocations
        who = token.principal
        reason: RefusalReason | None = None
        if revoked.partner_revoked(who.partner_id):
            reason = RefusalReason.REVOKED_PARTNER
        elif token.certificate and revoked.certificate_revoked(who.partner_id, token.certificate):
            reason = RefusalReason.REVOKED_CERTIFICATE
        elif revoked.key_revoked(who.partner_id, token.key_id):
            reason = RefusalReason.REVOKED_KEY
        if reason is not None:
            raise AuthRefused(
                reason,
                reason.value.replace("_", " "),
                partner_id=who.partner_id,
                certificate=token.certificate,
                key_id=token.key_id,
                role=who.role,
            )

    async def _claim(self, claim: TokenClaim) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((claim, future))
        if not self._flushing:
            self._flushing = True
            task = asyncio.get_running_loop().create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._flush_batch(batch)
                await self._maybe_prune()
        finally:
            self._flushing = False

    async def _flush_batch(self, batch: list[_Pending]) -> None:
        try:
            result = await asyncio.to_thread(claim_tokens, self._engine, [c for c, _ in batch])
            if result.revocation_generation != self._revocations.generation:
                self._revocations = await asyncio.to_thread(load_revocations, self._engine)
        except StoreError as exc:
            log.error("token check failed: %s", exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(StoreError("token check failed"))
            return
        self.batches_committed += 1
        self.claims_committed += len(batch)
        for (_, future), fresh in zip(batch, result.fresh, strict=True):
            if not future.done():
                future.set_result(fresh)

    async def _maybe_prune(self) -> None:
        now = self._clock()
        if now - self._last_prune < self._prune_interval:
            return
        self._last_prune = now
        try:
            await asyncio.to_thread(
                prune_token_uses, self._engine, datetime.fromtimestamp(now, UTC)
            )
        except StoreError as exc:
            log.warning("pruning used token ids failed: %s", exc)
