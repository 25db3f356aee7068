"""Load against gateway processes and the check that their log accounts for every answer.

Clients remember every answer they received: its kind, its id (disclosure or triage id) and
the seq of the record the gateway named. Afterwards the whole log is read straight from the
database and verified with the gateway's own log-signing key.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.broker.log_events import LogRecord, RecordKind
from gateway.cli.main import main as ketenpoort
from gateway.crypto.keystore import Keystore
from gateway.store import AuditLog, VerifyResult, create_engine_for

PURPOSE = "analysis_and_plan"
PHASE = "case_meeting"
PAGE = 5000


@dataclass(frozen=True)
class Answer:
    kind: RecordKind
    id: str  # the disclosure id or triage id the client received
    seq: int  # the record the answer names


Call = Callable[[], Awaitable[Answer]]


async def run_jobs(jobs: Sequence[Call], workers: int, answers: list[Answer]) -> list[Exception]:
    """Run ``jobs`` on ``workers`` concurrent tasks; answers are appended as they arrive and
    a worker stops at its first failure, which is returned."""
    pending = iter(jobs)
    failures: list[Exception] = []

    async def worker() -> None:
        for job in pending:
            try:
                answers.append(await job())
            except Exception as exc:  # the caller decides whether a failure is expected
                failures.append(exc)
                return

    await asyncio.gather(*(worker() for _ in range(workers)))
    return failures


@dataclass(frozen=True)
class LogContents:
    verified: VerifyResult
    records: list[LogRecord]


def read_log(database_url: str, keys: Path) -> LogContents:
    """Every record, by seq, and the result of verifying chain, tree and checkpoints against
    the gateway's log-signing key."""
    engine = create_engine_for(database_url)
    try:
        log = AuditLog(engine, trusted_keys=[Keystore.open(keys).signing_key.public_key()])
        verified = log.verify()
        records: list[LogRecord] = []
        while batch := log.list_records(after_seq=records[-1].seq if records else 0, limit=PAGE):
            records.extend(batch)
        return LogContents(verified, records)
    finally:
        engine.dispose()


def verify_with_cli(database_url: str, keys: Path) -> int:
    """`ketenpoort audit verify`, as an operator runs it; its exit status."""
    return ketenpoort(["audit", "verify", "--db", database_url, "--keys", str(keys)])


def check_accounts_for(contents: LogContents, answers: Sequence[Answer]) -> None:
    """The log verifies, its seqs run 1..N, and each answer has exactly one record of its
    kind and id, at the seq the answer named."""
    verified, records = contents.verified, contents.records
    assert verified.ok, verified
    assert verified.signatures_checked and verified.checkpoints_checked >= 1, verified
    assert verified.records_checked == len(records)
    assert [r.seq for r in records] == list(range(1, len(records) + 1))

    by_seq = {r.seq: r for r in records}
    for answer in answers:
        record = by_seq.get(answer.seq)
        assert record is not None, f"no record at seq {answer.seq} for {answer}"
        assert (record.event.kind, record.event.disclosure_id) == (answer.kind, answer.id)

    for kind in {a.kind for a in answers}:
        received = Counter(a.id for a in answers if a.kind is kind)
        assert all(n == 1 for n in received.values()), "an id was answered twice"
        logged = Counter(r.event.disclosure_id for r in records if r.event.kind is kind)
        assert all(logged[i] == 1 for i in received), f"a {kind} id has no or several records"
