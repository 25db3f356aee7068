"""The accountability log: a hash-chained, append-only record of every decision.

Each record is durably committed before the answer it accounts for leaves the gateway. To keep
that promise at a high rate, appends are group-committed: ``append`` queues its event and
waits; one writer thread takes everything queued (up to ``max_batch``) the moment its previous
commit ends, writes it in a single transaction and only then releases the callers. While one
batch is being committed the event loop keeps serving and queueing the next, so batches grow
with load and the disk's commit latency is shared instead of paid per record. When appends
arrived while a batch was being committed, the gateway is busy and more are on their way; the
writer then waits ``commit_delay_s`` (a millisecond) before it takes the next batch, as
PostgreSQL's ``commit_delay`` does, because every commit costs the process far more than a
record does. Otherwise the writer commits an append the moment it arrives. Several gateway
processes may append to one PostgreSQL database; see ``audit_writer`` for how the chain stays
whole.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, func, select

from gateway.broker.log_events import (
    AuditEvent,
    LogRecord,
    RecordKind,
)
from gateway.store.audit_event import parse_event
from gateway.store.audit_proofs import (
    ConsistencyProofData,
    InclusionProofData,
    ProofUnavailable,
    TreeReader,
    newest_checkpoint,
    prove_consistency,
    prove_inclusion,
    stored_checkpoint,
)
from gateway.store.audit_verify import (
    DEFAULT_VERIFY_CHUNK,
    VerifiedPrefix,
    VerifyResult,
    verify_chain,
)
from gateway.store.audit_writer import ChainWriter, CheckpointPolicy, EncodedEvent, WriterSession
from gateway.store.checkpoints import (
    Checkpoint,
    CheckpointError,
    CheckpointSigner,
    open_checkpoint,
)
from gateway.store.db import translate_errors
from gateway.store.errors import AuditLogClosed, AuditWriteError, StoreError
from gateway.store.sqlite_checkpoint import WalCheckpointer, is_sqlite_file
from gateway.store.tables import audit_log, log_head

__all__ = [
    "AuditLog",
    "BatchStats",
    "ChainHead",
    "Checkpoint",
    "CheckpointSigner",
    "ConsistencyProofData",
    "InclusionProofData",
    "ProofUnavailable",
    "VerifiedPrefix",
    "VerifyResult",
    "parse_event",
]

DEFAULT_MAX_BATCH = 256
# How long a busy writer waits for more appends before it commits a batch (group commit).
DEFAULT_COMMIT_DELAY_S = 0.001
DEFAULT_BATCH_HISTORY = 1024
MAX_LIST_LIMIT = 10_000
DEFAULT_CHECKPOINT_EVERY = 1000
DEFAULT_CHECKPOINT_INTERVAL_S = 10.0


@dataclass(frozen=True, slots=True)
class ChainHead:
    last_seq: int
    last_hash: str


@dataclass(frozen=True, slots=True)
class BatchStats:
    """What one committed batch cost; handed to the ``on_batch`` hook for metrics."""

    size: int
    seconds: float
    last_seq: int
    # Per record, seconds from its append to the commit that made it durable.
    append_seconds: tuple[float, ...] = ()


class _Pending:
    """One append: its events (more than one for ``append_many``, committed together) and
    the future that gets their records."""

    __slots__ = ("items", "future", "enqueued")

    def __init__(
        self, items: tuple[EncodedEvent, ...], future: asyncio.Future[list[LogRecord]]
    ) -> None:
        self.items = items
        self.future = future
        self.enqueued = time.perf_counter()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _resolve(pending: list[_Pending], records: list[LogRecord]) -> None:
    start = 0
    for p in pending:
        end = start + len(p.items)
        if not p.future.done():
            p.future.set_result(records[start:end])
        start = end


def _fail(pending: list[_Pending], cause: BaseException) -> None:
    for p in pending:
        if not p.future.done():
            # One exception object per caller: a shared one would collect every
            # caller's traceback.
            error = AuditWriteError(f"batch of {len(pending)} records not committed")
            error.__cause__ = cause
            p.future.set_exception(error)


def _fail_closed(pending: list[_Pending]) -> None:
    for p in pending:
        if not p.future.done():
            p.future.set_exception(AuditLogClosed("audit log writer stopped before commit"))


def _finish(stopped: asyncio.Future[None]) -> None:
    if not stopped.done():
        stopped.set_result(None)


class AuditLog:
    """Appends, queries and verifies the accountability log on one engine.

    ``on_batch`` is called in the writer thread after every commit; keep it as cheap as a
    metrics update. It cannot fail a committed batch: an exception from it is counted in
    ``hook_failures`` and otherwise ignored.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        commit_delay_s: float = DEFAULT_COMMIT_DELAY_S,
        clock: Callable[[], datetime] = _utc_now,
        on_batch: Callable[[BatchStats], None] | None = None,
        batch_history: int = DEFAULT_BATCH_HISTORY,
        signer: CheckpointSigner | None = None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S,
        trusted_keys: Sequence[Ed25519PublicKey] = (),
        on_checkpoint: Callable[[Checkpoint], object] | None = None,
    ) -> None:
        """``signer`` signs checkpoints every ``checkpoint_every`` records or
        ``checkpoint_interval_s`` seconds; ``trusted_keys`` (the signer's own key is always
        trusted) check them in ``verify``, e.g. keys that signed before a rotation.
        ``on_checkpoint`` gets each checkpoint this process signs once it is committed and
        before anyone is told of it (the checkpoint file outside the database)."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if not 0 <= commit_delay_s <= 0.1:
            raise ValueError("commit_delay_s must be between 0 and 0.1 seconds")
        self._engine = engine
        policy = (
            None
            if signer is None
            else CheckpointPolicy(signer, checkpoint_every, checkpoint_interval_s)
        )
        self._chain = ChainWriter(engine, policy)
        self._chain.on_checkpoint = on_checkpoint
        self._checkpoint_policy = policy
        keys = list(trusted_keys)
        if signer is not None:
            keys.insert(0, signer.public_key)
        self.trusted_keys: tuple[Ed25519PublicKey, ...] = tuple(keys)
        self.checkpoint_failures = 0
        self._max_batch = max_batch
        self._commit_delay = commit_delay_s
        self._clock = clock
        self._on_batch = on_batch
        self._stats_lock = threading.Lock()
        # Sizes of the most recent committed batches, oldest first.
        self.last_batch_sizes: deque[int] = deque(maxlen=batch_history)
        self.batches_committed = 0
        self.records_committed = 0
        # Batches whose commit waited ``commit_delay_s`` for more appends.
        self.delayed_batches = 0
        self.hook_failures = 0
        # time.monotonic() of the newest commit that failed and of the newest that succeeded
        # (readiness: ``writer_problem``).
        self._last_failed_commit: float | None = None
        self._last_commit: float | None = None
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._accepting = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._checkpointer = WalCheckpointer(engine) if is_sqlite_file(engine) else None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the writer thread; appends are then accepted from the running event loop."""
        if self._thread is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._stopped = self._loop.create_future()
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run,
            args=(self._loop, self._queue, self._stopped),
            name="audit-log-writer",
            daemon=True,
        )
        self._accepting = True
        if self._checkpointer is not None:
            self._checkpointer.start()
        self._thread.start()

    async def close(self) -> None:
        """Stop accepting appends, commit everything already queued, then stop the writer."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._accepting = False
        self._queue.put(None)
        assert self._stopped is not None
        await asyncio.shield(self._stopped)
        thread.join()
        if self._checkpointer is not None:
            self._checkpointer.close()

    async def __aenter__(self) -> AuditLog:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def queued(self) -> int:
        """Events waiting for the writer (the log lag, in records)."""
        return self._queue.qsize()

    # -- appending ------------------------------------------------------------------------

    async def append(self, event: AuditEvent) -> LogRecord:
        """Queue one event and return its record once the batch holding it is committed.

        Raises ``AuditWriteError`` when that batch could not be committed: the caller must
        then not let the answer leave.
        """
        if not self._accepting:
            raise AuditLogClosed("audit log writer is not running")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            raise StoreError("audit log used from an event loop other than the one it started on")
        return (await self._enqueue(loop, (event,)))[0]

    async def append_many(self, events: Sequence[AuditEvent]) -> list[LogRecord]:
        """Queue several events as one append: they are committed in the same transaction,
        one after another in the chain, and their records returned in order. A disclosure
        about several persons writes its records so, at the cost of one commit."""
        if not events:
            return []
        if not self._accepting:
            raise AuditLogClosed("audit log writer is not running")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            raise StoreError("audit log used from an event loop other than the one it started on")
        return await self._enqueue(loop, tuple(events))

    async def _enqueue(
        self, loop: asyncio.AbstractEventLoop, events: tuple[AuditEvent, ...]
    ) -> list[LogRecord]:
        # Serialised here, once; the writer only hashes and inserts.
        items = tuple(EncodedEvent.of(e) for e in events)
        future: asyncio.Future[list[LogRecord]] = loop.create_future()
        self._queue.put(_Pending(items, future))
        return await future

    def append_sync(self, events: Sequence[AuditEvent]) -> list[LogRecord]:
        """Append events from synchronous code, ``max_batch`` per transaction."""
        items = [EncodedEvent.of(e) for e in events]
        records: list[LogRecord] = []
        for start in range(0, len(items), self._max_batch):
            records.extend(self._write(self._chain.write, items[start : start + self._max_batch]))
        return records

    def _run(
        self,
        loop: asyncio.AbstractEventLoop,
        pending_queue: queue.SimpleQueue[_Pending | None],
        stopped: asyncio.Future[None],
    ) -> None:
        session = WriterSession(self._chain, defer_checkpoints=self._checkpointer is not None)
        try:
            self._drain(loop, pending_queue, session)
            # An orderly stop leaves every record under a signed checkpoint.
            self._checkpoint(session, force=True)
        finally:
            # Reached early only if the writer itself broke: then nobody may wait forever.
            self._accepting = False
            left: list[_Pending] = []
            while True:
                try:
                    item = pending_queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    left.append(item)
            try:
                session.close()
            finally:
                try:
                    if left:
                        loop.call_soon_threadsafe(_fail_closed, left)
                    loop.call_soon_threadsafe(_finish, stopped)
                except RuntimeError:
                    pass  # the event loop is already closed; nobody waits any more

    def _drain(
        self,
        loop: asyncio.AbstractEventLoop,
        pending_queue: queue.SimpleQueue[_Pending | None],
        session: WriterSession,
    ) -> None:
        stopping = False
        busy = False
        while not stopping:
            if busy and self._commit_delay > 0 and pending_queue.qsize() < self._max_batch:
                # Appends arrived while the last batch was being committed: the gateway is
                # busy and more are on their way, so give them a moment to join this batch.
                time.sleep(self._commit_delay)
                self.delayed_batches += 1
            first = self._next(pending_queue, session)
            if first is None:
                break
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    more = pending_queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            # A caller that gave up has no answer to account for.
            live = [p for p in batch if not p.future.cancelled()]
            busy = False
            if live:
                busy = self._write_pending(loop, pending_queue, session, live)
                if self._checkpointer is not None:
                    self._checkpointer.poke()

    def _next(
        self, pending_queue: queue.SimpleQueue[_Pending | None], session: WriterSession
    ) -> _Pending | None:
        """The next append; while none comes, sign the checkpoints the interval calls for."""
        policy = self._checkpoint_policy
        if policy is None:
            return pending_queue.get()
        while True:
            try:
                return pending_queue.get(timeout=policy.interval_s / 2)
            except queue.Empty:
                self._checkpoint(session, force=False)

    def _checkpoint(self, session: WriterSession, *, force: bool) -> Checkpoint | None:
        if self._checkpoint_policy is None:
            return None
        try:
            return session.checkpoint(self._clock(), force=force)
        except Exception:
            # Records stay chained; the next batch or tick tries again.
            self.checkpoint_failures += 1
            return None

    def _write_pending(
        self,
        loop: asyncio.AbstractEventLoop,
        pending_queue: queue.SimpleQueue[_Pending | None],
        session: WriterSession,
        live: list[_Pending],
    ) -> bool:
        """Write a batch and release its callers; true if appends arrived meanwhile."""
        try:
            records = self._write(
                session.write,
                [item for p in live for item in p.items],
                [p.enqueued for p in live for _ in p.items],
            )
        except Exception as exc:
            self._last_failed_commit = time.monotonic()
            outcome: tuple[Callable[..., None], object] = (_fail, exc)
        else:
            outcome = (_resolve, records)
        # Looked at before the callers are released, so that a caller's own next append
        # does not count as company.
        arrived = not pending_queue.empty()
        try:
            loop.call_soon_threadsafe(outcome[0], live, outcome[1])
        except RuntimeError:
            pass  # the event loop is already closed; nobody waits any more
        return arrived

    def _write(
        self,
        write: Callable[[Sequence[EncodedEvent], datetime], list[LogRecord]],
        items: Sequence[EncodedEvent],
        enqueued: Sequence[float] = (),
    ) -> list[LogRecord]:
        started = time.perf_counter()
        records = write(items, self._clock())
        done = time.perf_counter()
        self._last_commit = time.monotonic()
        stats = BatchStats(
            len(records),
            done - started,
            records[-1].seq,
            tuple(done - at for at in enqueued),
        )
        with self._stats_lock:
            self.last_batch_sizes.append(stats.size)
            self.batches_committed += 1
            self.records_committed += stats.size
        if self._on_batch is not None:
            try:
                self._on_batch(stats)
            except Exception:
                self.hook_failures += 1
        return records

    def writer_problem(self, hold_s: float) -> str | None:
        """Why this log cannot take appends now, or None: the writer is not running, or its
        newest commit failed less than ``hold_s`` seconds ago and none succeeded since (after
        that the failure no longer counts, so that the next append can show a recovery)."""
        thread = self._thread
        if thread is None or not thread.is_alive() or not self._accepting:
            return "the log writer is not running"
        failed, committed = self._last_failed_commit, self._last_commit
        if failed is None or (committed is not None and committed > failed):
            return None
        if time.monotonic() - failed < hold_s:
            return "the newest log commit failed"
        return None

    # -- signing stopped ------------------------------------------------------------------

    def suspend_checkpoints(self, reason: str) -> None:
        """Sign no checkpoint until ``resume_checkpoints``: the log failed a check, and a
        signature now would vouch for it."""
        self._chain.suspended = reason or "suspended"

    def resume_checkpoints(self) -> None:
        """Sign again (after an operator cleared the alarm, perhaps accepting a log rolled
        back behind what this process signed before)."""
        self._chain.last_checkpoint = None
        self._chain.suspended = None

    @property
    def checkpoints_suspended(self) -> str | None:
        """Why checkpoint signing is stopped, or None while it runs."""
        return self._chain.suspended

    @property
    def checkpoint_publish_failures(self) -> int:
        """Checkpoints committed whose ``on_checkpoint`` hook failed."""
        return self._chain.publish_failures

    # -- reading --------------------------------------------------------------------------

    @translate_errors("listing accountability records")
    def list_records(
        self,
        *,
        partner_id: str | None = None,
        case_id: str | None = None,
        subject_pseudonym: str | None = None,
        kinds: Collection[RecordKind] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[LogRecord]:
        """Records matching every given filter, by seq; page with ``after_seq``.

        ``since`` (inclusive) and ``until`` (exclusive) bound the event time ``occurred_at``,
        which is part of the hashed body, unlike the commit time ``recorded_at``.
        """
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}")
        t = audit_log.c
        query = select(t.seq, t.body, t.prev_hash, t.record_hash, t.recorded_at).where(
            t.seq > after_seq
        )
        if partner_id is not None:
            query = query.where(t.partner_id == partner_id)
        if case_id is not None:
            query = query.where(t.case_id == case_id)
        if subject_pseudonym is not None:
            query = query.where(t.subject_pseudonym == subject_pseudonym)
        if kinds is not None:
            query = query.where(t.kind.in_([RecordKind(k).value for k in kinds]))
        if since is not None:
            query = query.where(t.occurred_at >= since)
        if until is not None:
            query = query.where(t.occurred_at < until)
        query = query.order_by(t.seq).limit(limit)
        with self._engine.begin() as conn:
            rows = conn.execute(query).all()
        return [
            LogRecord(r.seq, parse_event(r.body), r.prev_hash, r.record_hash, r.recorded_at)
            for r in rows
        ]

    @translate_errors("counting accountability records")
    def count(self) -> int:
        with self._engine.begin() as conn:
            return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())

    @translate_errors("reading the chain head")
    def head(self) -> ChainHead:
        """The chain head: the last committed seq and its record hash (for checkpoints)."""
        with self._engine.begin() as conn:
            row = conn.execute(select(log_head.c.last_seq, log_head.c.last_hash)).one()
        return ChainHead(int(row.last_seq), row.last_hash)

    @translate_errors("verifying the accountability log")
    def verify(
        self,
        *,
        chunk_size: int = DEFAULT_VERIFY_CHUNK,
        external: Sequence[str] = (),
        resume: VerifiedPrefix | None = None,
        require_checkpoint: bool = False,
        external_source: str = "kept outside the database",
    ) -> VerifyResult:
        """Recompute chain, tree and checkpoints against the trusted keys; see
        ``verify_chain``."""
        return verify_chain(
            self._engine,
            chunk_size=chunk_size,
            trusted_keys=self.trusted_keys,
            external=external,
            resume=resume,
            require_checkpoint=require_checkpoint,
            external_source=external_source,
        )

    # -- checkpoints and proofs -----------------------------------------------------------

    @property
    def last_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint this process signed (None before the first)."""
        return self._chain.last_checkpoint

    @translate_errors("reading the newest checkpoint")
    def latest_checkpoint(self) -> Checkpoint | None:
        with self._engine.begin() as conn:
            newest = newest_checkpoint(conn)
        return None if newest is None else self.attested(newest)

    def attested(self, checkpoint: Checkpoint) -> Checkpoint:
        """``checkpoint`` naming the trusted key whose signature verifies it, or no key ("")
        when none does: the key id stored beside a checkpoint is only the database's claim."""
        try:
            return open_checkpoint(checkpoint.note, self.trusted_keys)
        except CheckpointError:
            return replace(checkpoint, key_id="")

    @translate_errors("signing a checkpoint")
    def checkpoint_now(self) -> Checkpoint:
        """Sign a checkpoint covering every record committed so far (unless one does).

        Safe beside the writer thread and other replicas: it takes the head lock."""
        if self._checkpoint_policy is None:
            raise ProofUnavailable("this log has no signing key; it makes no checkpoints")
        if self._chain.suspended is not None:
            raise ProofUnavailable(
                f"checkpoint signing is stopped: {self._chain.suspended}"
            )
        session = WriterSession(self._chain)
        try:
            session.checkpoint(self._clock(), force=True)
        finally:
            session.close()
        latest = self.latest_checkpoint()
        if latest is None:
            raise ProofUnavailable("the log is empty; there is nothing to checkpoint")
        return latest

    @translate_errors("proving a record's inclusion")
    def prove_inclusion(self, seq: int, tree_size: int = 0) -> InclusionProofData:
        """Proof that record ``seq`` is in the tree of checkpoint ``tree_size`` (0: newest;
        a checkpoint is signed first when none covers the record yet)."""
        with self._engine.begin() as conn:
            checkpoint = self._checkpoint_for(conn, seq, tree_size)
        # checkpoint_now hands out an attested checkpoint already.
        checkpoint = self.checkpoint_now() if checkpoint is None else self.attested(checkpoint)
        with self._engine.begin() as conn:
            return prove_inclusion(TreeReader(conn), seq, checkpoint)

    def inclusion_prover(self) -> Callable[[Sequence[int]], list[InclusionProofData]]:
        """Proofs of several records against one checkpoint, sharing their reads."""

        def prove(seqs: Sequence[int]) -> list[InclusionProofData]:
            if not seqs:
                return []
            first = self.prove_inclusion(max(seqs))
            with self._engine.begin() as conn:
                reader = TreeReader(conn)
                return [
                    first if s == first.seq else prove_inclusion(reader, s, first.checkpoint)
                    for s in seqs
                ]

        return translate_errors("proving records' inclusion")(prove)

    def _checkpoint_for(self, conn: Any, seq: int, tree_size: int) -> Checkpoint | None:
        if tree_size:
            checkpoint = stored_checkpoint(conn, tree_size)
            if checkpoint is None:
                raise ProofUnavailable(f"there is no checkpoint at tree size {tree_size}")
            if seq > tree_size:
                raise ProofUnavailable(f"record {seq} is not in the tree of {tree_size}")
            return checkpoint
        newest = newest_checkpoint(conn)
        if newest is not None and newest.tree_size >= seq:
            return newest
        # Only a record the log holds is worth signing a new checkpoint for.
        if seq > int(conn.execute(select(log_head.c.last_seq)).scalar_one()):
            raise ProofUnavailable(f"the log holds no record {seq}")
        return None

    @translate_errors("proving consistency")
    def prove_consistency(self, old_size: int, new_size: int) -> ConsistencyProofData:
        """Proof that the checkpoint at ``new_size`` extends the one at ``old_size``."""
        with self._engine.begin() as conn:
            old = stored_checkpoint(conn, old_size)
            new = stored_checkpoint(conn, new_size)
            if old is None or new is None:
                missing = old_size if old is None else new_size
                raise ProofUnavailable(f"there is no checkpoint at tree size {missing}")
            return prove_consistency(TreeReader(conn), self.attested(old), self.attested(new))
