"""Claiming each token id once: the gateway's ``TokenAdmission`` under concurrent calls, and
the floor it improves on, one claim per durable transaction.

``TokenAdmission.admit`` is what the gateway awaits for every call after the token verified:
the call's ``jti`` is claimed in the shared database, and claims of concurrent calls share
one transaction (group commit). Here it runs alone on the database, driven by a closed loop
of ``concurrency`` asyncio tasks, as the gateway's calls drive it.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from loadgen import percentile, run_load
from sqlalchemy import Engine
from token_fixture import PARTNER, ROLE

from adapters.tokens import DEFAULT_LIFETIME_S
from gateway.broker.caller import Principal
from gateway.server.auth import VerifiedToken
from gateway.server.config import DEFAULT_TOKEN_LEEWAY_S
from gateway.server.token_replay import TokenAdmission
from gateway.store.token_guard import TokenClaim, claim_tokens


async def admission_point(
    engine: Engine, *, concurrency: int, seconds: float, warmup_s: float, thumbprint: str
) -> dict[str, Any]:
    """Claims per second, admit latency, group-commit batch and CPU per claim in this
    process (for PostgreSQL the server's own CPU is not in it)."""
    admission = TokenAdmission(engine, leeway_s=DEFAULT_TOKEN_LEEWAY_S)
    await admission.start()
    prefix = secrets.token_urlsafe(9)
    numbers = itertools.count()

    async def call() -> None:
        jti = f"{prefix}{next(numbers):012d}"
        await admission.admit(_verified(jti, thumbprint))

    marks: dict[str, float] = {}

    def on_measure() -> None:
        marks.update(cpu=time.process_time(), claims=admission.claims_committed,
                     batches=admission.batches_committed)

    stats = await run_load("admission", call, concurrency=concurrency, seconds=seconds,
                           warmup_s=warmup_s, on_measure=on_measure)
    # Calls still in flight at the deadline finish after it: CPU and claims both count them.
    cpu_s = time.process_time() - marks["cpu"]
    claims = admission.claims_committed - marks["claims"]
    batches = admission.batches_committed - marks["batches"]
    out: dict[str, Any] = stats.as_dict()
    out.update(
        claims=claims,
        batches=batches,
        mean_batch=round(claims / batches, 1) if batches else 0.0,
        cpu_us_per_claim=round(cpu_s / claims * 1e6, 1) if claims else 0.0,
    )
    return out


async def one_claim_per_commit(
    engine: Engine, *, seconds: float, warmup_s: float
) -> dict[str, Any]:
    """Claims one after another, each in its own transaction: what claiming would cost each
    call without group commit."""
    return await asyncio.to_thread(_serial_claims, engine, seconds, warmup_s)


def _serial_claims(engine: Engine, seconds: float, warmup_s: float) -> dict[str, Any]:
    until = datetime.now(UTC) + timedelta(seconds=DEFAULT_LIFETIME_S)
    clock = time.perf_counter
    warm_until = clock() + warmup_s
    while clock() < warm_until:
        claim_tokens(engine, [TokenClaim(os.urandom(32), until)])
    latencies: list[float] = []
    cpu = time.process_time()
    deadline = clock() + seconds
    while (began := clock()) < deadline:
        claim_tokens(engine, [TokenClaim(os.urandom(32), until)])
        ended = clock()
        if ended <= deadline:
            latencies.append(ended - began)
    cpu_s = time.process_time() - cpu
    latencies.sort()
    return {
        "rate": round(len(latencies) / seconds, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "completed": len(latencies),
        "cpu_us_per_claim": round(cpu_s / len(latencies) * 1e6, 1) if latencies else 0.0,
    }


def _verified(jti: str, thumbprint: str) -> VerifiedToken:
    """A token as TokenVerifier hands it on: the police's, bound to their certificate."""
    principal = Principal(
        partner_id=PARTNER,
        partner_type=PARTNER,
        role=ROLE,
        user_ref="",
        token_id=jti,
        expires_at=time.time() + DEFAULT_LIFETIME_S,
    )
    return VerifiedToken(principal, jti, key_id="bench", certificate=thumbprint)
