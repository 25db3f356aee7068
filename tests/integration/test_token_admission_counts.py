"""TokenAdmission counts what it commits: every claim, fresh or replayed, and the
transactions that held them, so that an operator can read the mean group-commit batch."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.broker.caller import Principal
from gateway.server.auth import AuthRefused, RefusalReason, VerifiedToken
from gateway.server.token_replay import TokenAdmission
from gateway.store.db import create_engine_for, init_schema

CALLS = 12


def _token(jti: str) -> VerifiedToken:
    principal = Principal("police", "police", "case_director", "", jti, time.time() + 60)
    return VerifiedToken(principal, jti, key_id="k1", certificate="")


async def test_claims_and_their_transactions_are_counted(db_url: str) -> None:
    engine = create_engine_for(db_url)
    try:
        init_schema(engine)
        admission = TokenAdmission(engine, leeway_s=0)
        await admission.start()
        assert (admission.claims_committed, admission.batches_committed) == (0, 0)

        await asyncio.gather(*(admission.admit(_token(f"jti-{n:04d}")) for n in range(CALLS)))
        assert admission.claims_committed == CALLS
        # Concurrent calls share transactions.
        assert 1 <= admission.batches_committed < CALLS
        batches = admission.batches_committed

        with pytest.raises(AuthRefused) as refused:
            await admission.admit(_token("jti-0000"))
        assert refused.value.reason is RefusalReason.REPLAYED
        # A replay is a claim the transaction committed, and found taken.
        assert admission.claims_committed == CALLS + 1
        assert admission.batches_committed == batches + 1
    finally:
        engine.dispose()
