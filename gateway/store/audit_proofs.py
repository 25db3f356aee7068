"""Inclusion and consistency proofs over the stored log, against signed checkpoints.

A proof needs the roots of O(log n) complete subtrees. Subtrees of 2**8 leaves or more are
composed from stored tiles (at most 256 tiles per subtree), smaller ones from the records'
bodies, so a proof reads a few hundred rows whatever the size of the log. Reads are cached
per ``TreeReader``, so the proofs of one report share them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import Connection, select

from gateway.store.checkpoints import Checkpoint, CheckpointError, open_checkpoint
from gateway.store.errors import StoreError
from gateway.store.merkle import (
    TILE_HEIGHT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_of,
)
from gateway.store.tables import audit_log, log_checkpoints, merkle_tiles


class ProofUnavailable(StoreError):
    """No proof can be made: no such record, or no checkpoint covers it."""


@dataclass(frozen=True, slots=True)
class InclusionProofData:
    seq: int
    leaf_index: int
    tree_size: int
    body: str
    path: list[bytes]
    checkpoint: Checkpoint


@dataclass(frozen=True, slots=True)
class ConsistencyProofData:
    old_size: int
    new_size: int
    path: list[bytes]
    old_checkpoint: Checkpoint
    new_checkpoint: Checkpoint


class TreeReader:
    """Reads subtree roots of the log's Merkle tree from one connection."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._cache: dict[tuple[int, int], bytes] = {}

    def subtree(self, level: int, start: int) -> bytes:
        key = (level, start)
        found = self._cache.get(key)
        if found is None:
            found = self._compute(level, start)
            self._cache[key] = found
        return found

    def _compute(self, level: int, start: int) -> bytes:
        tile_level = level - level % TILE_HEIGHT
        if tile_level == 0:
            return root_of(leaf_hash(body.encode("utf-8")) for body in self._bodies(start, level))
        first = start >> tile_level
        count = 1 << (level - tile_level)
        t = merkle_tiles.c
        rows = self._conn.execute(
            select(t.idx, t.hash)
            .where(t.level == tile_level, t.idx >= first, t.idx < first + count)
            .order_by(t.idx)
        ).all()
        if [int(r.idx) for r in rows] != list(range(first, first + count)):
            raise ProofUnavailable(f"tiles at level {tile_level} from {first} are incomplete")
        # A power-of-two run of equal subtrees folds exactly like leaves.
        return root_of(bytes(r.hash) for r in rows)

    def _bodies(self, start: int, level: int) -> list[str]:
        t = audit_log.c
        count = 1 << level
        rows = self._conn.execute(
            select(t.seq, t.body).where(t.seq > start, t.seq <= start + count).order_by(t.seq)
        ).all()
        if len(rows) != count:
            raise ProofUnavailable(f"records {start + 1}..{start + count} are not all stored")
        return [r.body for r in rows]

    def body(self, seq: int) -> str:
        t = audit_log.c
        body = self._conn.execute(select(t.body).where(t.seq == seq)).scalar_one_or_none()
        if body is None:
            raise ProofUnavailable(f"there is no record {seq}")
        return str(body)


def stored_checkpoint(conn: Connection, tree_size: int) -> Checkpoint | None:
    t = log_checkpoints.c
    row = conn.execute(
        select(t.note, t.key_id).where(t.tree_size == tree_size)
    ).one_or_none()
    return None if row is None else _parse(str(row.note), str(row.key_id))


def newest_checkpoint(conn: Connection) -> Checkpoint | None:
    t = log_checkpoints.c
    row = conn.execute(
        select(t.note, t.key_id).order_by(t.tree_size.desc()).limit(1)
    ).one_or_none()
    return None if row is None else _parse(str(row.note), str(row.key_id))


def _parse(note: str, key_id: str) -> Checkpoint:
    # Proofs are checked by their reader against a key it trusts; here the note is only read.
    try:
        checkpoint = open_checkpoint(note, (), require_signature=False)
    except CheckpointError as exc:
        raise ProofUnavailable(f"stored checkpoint is unreadable: {exc}") from exc
    return replace(checkpoint, key_id=key_id)


def prove_inclusion(reader: TreeReader, seq: int, checkpoint: Checkpoint) -> InclusionProofData:
    if not 1 <= seq <= checkpoint.tree_size:
        raise ProofUnavailable(
            f"record {seq} is not in the tree of {checkpoint.tree_size} records"
        )
    body = reader.body(seq)
    path = inclusion_proof(seq - 1, checkpoint.tree_size, reader.subtree)
    return InclusionProofData(seq, seq - 1, checkpoint.tree_size, body, path, checkpoint)


def prove_consistency(
    reader: TreeReader, old: Checkpoint, new: Checkpoint
) -> ConsistencyProofData:
    if not 0 < old.tree_size <= new.tree_size:
        raise ProofUnavailable("a consistency proof needs 0 < old size <= new size")
    path = consistency_proof(old.tree_size, new.tree_size, reader.subtree)
    return ConsistencyProofData(old.tree_size, new.tree_size, path, old, new)
