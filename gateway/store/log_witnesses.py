"""What the store does for witnesses: offer the newest checkpoint with a consistency proof from
the size a witness saw, and keep the cosigned checkpoints witnesses send back.

The proof is built from the tree as stored, whatever checkpoints remain: a witness holds the
old checkpoint itself, so none need be stored at ``old_size``. A log that no longer holds
``old_size`` records gets no proof; the witness then sees a tree smaller than the one it
witnessed, which is the rollback it exists to catch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.audit_proofs import ProofUnavailable, TreeReader, newest_checkpoint
from gateway.store.checkpoints import Checkpoint
from gateway.store.db import for_writing, translate_errors
from gateway.store.tables import log_checkpoints, log_cosignatures, log_head
from gateway.tlog.merkle import consistency_proof


@dataclass(frozen=True, slots=True)
class WitnessOffer:
    checkpoint: Checkpoint
    old_size: int
    path: list[bytes]


@translate_errors("offering a checkpoint to a witness")
def witness_offer(engine: Engine, old_size: int) -> WitnessOffer | None:
    """The newest stored checkpoint and a proof that it extends the tree of ``old_size``
    leaves (none when there is nothing to prove or the log is smaller); None before the
    first checkpoint."""
    with engine.begin() as conn:
        newest = newest_checkpoint(conn)
        if newest is None:
            return None
        size = newest.tree_size
        held = int(conn.execute(select(log_head.c.last_seq)).scalar_one())
        path: list[bytes] = []
        if 0 < old_size < size and size <= held:
            try:
                path = consistency_proof(old_size, size, TreeReader(conn).subtree)
            except ProofUnavailable:
                path = []
        return WitnessOffer(newest, old_size, path)


@translate_errors("reading a stored checkpoint")
def stored_root(engine: Engine, tree_size: int) -> bytes | None:
    t = log_checkpoints.c
    with engine.begin() as conn:
        root = conn.execute(
            select(t.root_hash).where(t.tree_size == tree_size)
        ).scalar_one_or_none()
    return None if root is None else bytes.fromhex(str(root))


@translate_errors("keeping a cosigned checkpoint")
def keep_cosignature(
    engine: Engine, tree_size: int, witness: str, cosigned_at: datetime, key_id: str, note: str
) -> int:
    """Store ``witness``'s cosigned ``note`` (its first at that size stays); the number of
    witnesses that cosigned the checkpoint at ``tree_size``."""
    row = {
        "tree_size": tree_size,
        "witness": witness,
        "cosigned_at": cosigned_at,
        "key_id": key_id,
        "note": note,
    }
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    c = log_cosignatures.c
    with for_writing(engine).begin() as conn:
        conn.execute(dialect.insert(log_cosignatures).values(row).on_conflict_do_nothing())
        count = conn.execute(
            select(func.count()).select_from(log_cosignatures).where(c.tree_size == tree_size)
        ).scalar_one()
    return int(count)
