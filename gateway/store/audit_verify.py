"""Verification of the accountability log: hash chain, Merkle tree and signed checkpoints.

Every record is recomputed from its stored seq and body and checked against its own hash, its
predecessor's hash and the chain head; that names an edited, deleted, swapped or forged record.
Someone who can write the database can also recompute the chain, so the bodies are folded into
the RFC 9162 Merkle tree as they stream past, and the root at each checkpoint's tree size is
compared with the root the gateway signed: a rewritten stretch then shows as a checkpoint that
no longer matches, and records removed after a checkpoint as a checkpoint larger than the log.
Stored tiles and the head's frontier are recomputed too, since proofs are built from them.
Checkpoints kept outside the database (the gateway's checkpoint files, exported notes,
checkpoints a witness cosigned) are checked the same way, which also catches a log whose
checkpoints were deleted along with its tail or rewritten as a whole: a log that holds fewer
records than a checkpoint anyone kept fails, and so does one whose root at that size differs.
Rows are streamed in chunks, so a long log is checked in constant memory apart from the
checkpoints and tiles.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, select

from gateway.store.audit_event import GENESIS_HASH, chain_hash, parse_time
from gateway.store.checkpoints import Checkpoint, CheckpointError, open_checkpoint
from gateway.store.merkle import Frontier, Tile, leaf_hash
from gateway.store.tables import (
    audit_log,
    log_checkpoints,
    log_cosignatures,
    log_head,
    merkle_tiles,
)

DEFAULT_VERIFY_CHUNK = 1000
_STORED = "stored in the database"
_COSIGNED = "cosigned by a witness (in the database)"
_IN_DATABASE = frozenset({_STORED, _COSIGNED})

# Columns that copy a body value so queries can use indexes.
_COPIED_COLUMNS = (
    "kind",
    "partner_id",
    "case_id",
    "subject_pseudonym",
    "purpose",
    "status",
    "break_glass",
)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records_checked: int
    first_bad_seq: int | None
    reason: str
    checkpoints_checked: int = 0
    # Tree size of the newest checkpoint that matched (0: none).
    last_checkpoint_size: int = 0
    # Tree size of the first checkpoint that failed, when the fault lies there.
    bad_checkpoint_size: int | None = None
    # False when no trusted key was given: roots were compared, signatures not checked.
    signatures_checked: bool = False
    # Checkpoints that came from outside the database (files, exported notes, witnesses).
    external_checkpoints: int = 0
    # Notes carrying more signature lines than the log's own (cosigned by witnesses).
    cosigned_notes: tuple[str, ...] = ()


@dataclass(slots=True)
class VerifiedPrefix:
    """What a verification established, to resume from (the periodic check in the server)."""

    size: int = 0
    last_hash: str = GENESIS_HASH
    frontier: Frontier = field(default_factory=Frontier)


class _Fault(Exception):
    def __init__(self, reason: str, seq: int | None = None, checkpoint: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.seq = seq
        self.checkpoint = checkpoint


def verify_chain(
    engine: Engine,
    *,
    chunk_size: int = DEFAULT_VERIFY_CHUNK,
    trusted_keys: Sequence[Ed25519PublicKey] = (),
    external: Sequence[str] = (),
    resume: VerifiedPrefix | None = None,
    require_checkpoint: bool = False,
    external_source: str = "kept outside the database",
) -> VerifyResult:
    """Check the log inside one read snapshot and report the first fault.

    ``trusted_keys`` verify checkpoint signatures; ``external`` are checkpoint notes kept
    outside the database (they must be signed by a trusted key), ``external_source`` says
    where in messages. With ``resume``, records up to ``resume.size`` are taken as verified
    and ``resume`` is advanced on success. ``require_checkpoint`` fails a log that holds
    records but no checkpoint at all (a checkpointing gateway signs one within
    ``checkpoint_interval_s`` and when it stops).
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        # Head, rows, tiles and checkpoints must come from one snapshot while others append.
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
    state = resume if resume is not None else VerifiedPrefix()
    with connection as conn, conn.begin():
        try:
            run = _Verification(conn, state, chunk_size, tuple(trusted_keys))
        except _Fault as fault:
            return VerifyResult(False, 0, fault.seq, fault.reason)
        try:
            run.load_checkpoints(external, external_source)
            run.check_records()
            run.check_end(require_checkpoint=require_checkpoint)
        except _Fault as fault:
            return run.result(fault)
        if resume is not None:
            resume.size, resume.last_hash = run.prefix.size, run.prefix.last_hash
            resume.frontier = run.prefix.frontier
        return run.result(None)


class _Verification:
    def __init__(
        self,
        conn: Connection,
        prefix: VerifiedPrefix,
        chunk_size: int,
        trusted: tuple[Ed25519PublicKey, ...],
    ) -> None:
        self.conn = conn
        start = prefix.frontier
        # Work on a copy: the caller's prefix only moves when everything verified.
        self.prefix = VerifiedPrefix(
            prefix.size, prefix.last_hash, Frontier(start.size, start.hashes)
        )
        self.chunk_size = chunk_size
        self.trusted = trusted
        self.checked = 0
        self.checkpoints: dict[int, bytes] = {}
        # Where each checkpoint size was found, for messages.
        self.sources: dict[int, str] = {}
        self.cosigned: list[str] = []
        self.checkpoints_checked = 0
        self.last_good_checkpoint = 0
        head = conn.execute(select(log_head)).one_or_none()
        if head is None:
            raise _Fault("chain head row is missing")
        self.head = head

    def result(self, fault: _Fault | None) -> VerifyResult:
        return VerifyResult(
            ok=fault is None,
            records_checked=self.checked,
            first_bad_seq=None if fault is None else fault.seq,
            reason="ok" if fault is None else fault.reason,
            checkpoints_checked=self.checkpoints_checked,
            last_checkpoint_size=self.last_good_checkpoint,
            bad_checkpoint_size=None if fault is None else fault.checkpoint,
            signatures_checked=bool(self.trusted),
            external_checkpoints=sum(1 for s in self.sources.values() if s not in _IN_DATABASE),
            cosigned_notes=tuple(self.cosigned),
        )

    # -- checkpoints ----------------------------------------------------------------------

    def load_checkpoints(self, external: Sequence[str], external_source: str) -> None:
        t = log_checkpoints.c
        rows = self.conn.execute(
            select(t.tree_size, t.root_hash, t.note).order_by(t.tree_size)
        ).all()
        stored: set[str] = set()
        for row in rows:
            size = int(row.tree_size)
            checkpoint = self._open(row.note, size)
            if checkpoint.tree_size != size or checkpoint.root_hash.hex() != row.root_hash:
                raise _Fault(
                    f"checkpoint at tree size {size}: its columns differ from its signed note",
                    checkpoint=size,
                )
            self.checkpoints[size] = checkpoint.root_hash
            self.sources[size] = _STORED
            stored.add(str(row.note))
        c = log_cosignatures.c
        cosigned = [
            str(r.note) for r in self.conn.execute(select(c.note).order_by(c.tree_size)).all()
        ]
        for note in cosigned:
            self._add_external(note, _COSIGNED, stored)
        for note in external:
            self._add_external(note, external_source, stored)
        head_size = int(self.head.checkpoint_size)
        if head_size and head_size not in self.checkpoints:
            raise _Fault(
                f"the chain head names a checkpoint at tree size {head_size} that is not stored:"
                " checkpoints were deleted",
                checkpoint=head_size,
            )

    def _add_external(self, note: str, source: str, stored: set[str]) -> None:
        if note.partition("\n\n")[2].count("\n") > 1:
            self.cosigned.append(note)
        if note in stored:
            return  # verified above, byte for byte the same note
        try:
            checkpoint = open_checkpoint(note, self.trusted)
        except CheckpointError as exc:
            raise _Fault(f"a checkpoint {source}: {exc}") from exc
        size = checkpoint.tree_size
        known = self.checkpoints.get(size)
        if known is not None and known != checkpoint.root_hash:
            raise _Fault(
                f"the checkpoint at tree size {size} {source} differs from the one "
                f"{self.sources[size]}: the log was rewritten",
                checkpoint=size,
            )
        if known is None:
            self.checkpoints[size] = checkpoint.root_hash
            self.sources[size] = source

    def _open(self, note: str, size: int) -> Checkpoint:
        try:
            return open_checkpoint(note, self.trusted, require_signature=bool(self.trusted))
        except CheckpointError as exc:
            raise _Fault(f"checkpoint at tree size {size}: {exc}", checkpoint=size) from exc

    # -- records --------------------------------------------------------------------------

    def check_records(self) -> None:
        t = audit_log.c
        query = (
            select(
                t.seq,
                t.occurred_at,
                *(t[name] for name in _COPIED_COLUMNS),
                t.body,
                t.prev_hash,
                t.record_hash,
            )
            .where(t.seq > self.prefix.size)
            .order_by(t.seq)
        )
        tiles = self._stored_tiles()
        prefix = self.prefix
        expected_seq = prefix.size + 1
        prev_hash = prefix.last_hash
        frontier = prefix.frontier
        checkpoint_sizes = sorted(s for s in self.checkpoints if s > prefix.size)
        for size in sorted(s for s in self.checkpoints if s <= prefix.size):
            self.last_good_checkpoint = size
        next_checkpoint = 0
        new_tiles: list[Tile] = []
        rows = self.conn.execution_options(yield_per=self.chunk_size).execute(query)
        try:
            for row in rows:
                _check_row(row, expected_seq, prev_hash)
                frontier.append(leaf_hash(row.body.encode("utf-8")), new_tiles)
                if new_tiles:
                    self._check_tiles(new_tiles, tiles, expected_seq)
                    new_tiles.clear()
                self.checked += 1
                prev_hash = row.record_hash
                if (
                    next_checkpoint < len(checkpoint_sizes)
                    and checkpoint_sizes[next_checkpoint] == expected_seq
                ):
                    self._check_root(expected_seq, frontier)
                    next_checkpoint += 1
                expected_seq += 1
        finally:
            # Stopping early must still release the server-side cursor.
            rows.close()
        prefix.size, prefix.last_hash = expected_seq - 1, prev_hash
        if tiles:
            level, idx = min(tiles)
            raise _Fault(
                f"a stored tile (level {level}, index {idx}) lies beyond the records",
                seq=prefix.size + 1,
            )

    def _stored_tiles(self) -> dict[tuple[int, int], bytes]:
        t = merkle_tiles.c
        first_leaf = self.prefix.size
        rows = self.conn.execute(select(t.level, t.idx, t.hash)).all()
        # Tiles that end within the verified prefix were checked before.
        return {
            (int(r.level), int(r.idx)): bytes(r.hash)
            for r in rows
            if (int(r.idx) + 1) << int(r.level) > first_leaf
        }

    def _check_tiles(
        self, made: list[Tile], stored: dict[tuple[int, int], bytes], seq: int
    ) -> None:
        for tile in made:
            found = stored.pop((tile.level, tile.idx), None)
            if found != tile.hash:
                what = "missing" if found is None else "wrong"
                raise _Fault(
                    f"tile (level {tile.level}, index {tile.idx}) ending at seq {seq} is {what}",
                    seq=seq,
                )

    def _check_root(self, size: int, frontier: Frontier) -> None:
        if frontier.root() != self.checkpoints[size]:
            after = self.last_good_checkpoint
            raise _Fault(
                f"records {after + 1}..{size} do not match the signed checkpoint at tree size "
                f"{size} (the last matching checkpoint is at {after}): a record in that range "
                "was changed, inserted, removed or reordered and the hash chain rewritten",
                checkpoint=size,
            )
        self.checkpoints_checked += 1
        self.last_good_checkpoint = size

    def check_end(self, *, require_checkpoint: bool = False) -> None:
        last_seq = self.prefix.size
        beyond = sorted(s for s in self.checkpoints if s > last_seq)
        if beyond:
            size = beyond[-1]
            raise _Fault(
                f"the log holds {last_seq} records, fewer than the signed checkpoint at tree "
                f"size {size} {self.sources[size]}: records {last_seq + 1}..{size} were "
                "removed (the log was cut, rolled back or wiped)",
                seq=last_seq + 1,
                checkpoint=size,
            )
        if require_checkpoint and last_seq and not self.checkpoints:
            raise _Fault(
                f"the log holds {last_seq} records but no signed checkpoint at all, neither in "
                "the database nor kept outside it: its checkpoints were deleted, or it was "
                "never checkpointed (`ketenpoort audit checkpoint --new` signs one)",
                seq=None,
            )
        head = self.head
        if head.last_seq < last_seq:
            raise _Fault(
                f"the chain head names seq {head.last_seq} but records up to seq {last_seq} "
                "were verified: the head was moved back (the log was cut, rolled back or "
                "wiped)",
                seq=int(head.last_seq) + 1,
            )
        if head.last_seq != last_seq:
            bad = min(int(head.last_seq), last_seq) + 1
            raise _Fault(
                f"chain head names seq {head.last_seq} but the last record is seq {last_seq}",
                seq=bad,
            )
        if head.last_hash != self.prefix.last_hash:
            raise _Fault("chain head hash differs from the last record", seq=last_seq or None)
        if head.frontier != self.prefix.frontier.encode():
            raise _Fault("the chain head's Merkle frontier differs from the records", seq=None)


def _check_row(row: Any, expected_seq: int, prev_hash: str) -> None:
    seq = row.seq
    if seq != expected_seq:
        raise _Fault(
            f"record {expected_seq} is missing (next stored record is {seq})", seq=expected_seq
        )
    if row.prev_hash != prev_hash:
        raise _Fault("previous-hash link does not match the preceding record", seq=seq)
    try:
        prev = bytes.fromhex(row.prev_hash)
    except ValueError:
        raise _Fault("previous hash is not hex", seq=seq) from None
    if chain_hash(seq, prev, row.body.encode("utf-8")).hex() != row.record_hash:
        raise _Fault("record hash does not match seq, previous hash and body", seq=seq)
    try:
        body = json.loads(row.body)
        occurred_at = parse_time(body["occurred_at"])
        copies_match = all(body[name] == row._mapping[name] for name in _COPIED_COLUMNS)
    except (ValueError, KeyError, TypeError):
        raise _Fault("record body is not a readable event", seq=seq) from None
    if not copies_match or occurred_at != row.occurred_at:
        raise _Fault("an indexed column differs from the hashed body", seq=seq)
