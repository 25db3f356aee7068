"""The log's Merkle tree and signed checkpoints: proofs verify, and an attacker who can write
the database (and so recompute the hash chain) is still caught by the signed checkpoints."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, text

from gateway.broker.log_events import AuditEvent
from gateway.store import AuditLog, parse_event
from gateway.store.audit_proofs import ProofUnavailable
from gateway.store.checkpoints import CheckpointError, CheckpointSigner, open_checkpoint
from gateway.store.merkle import leaf_hash, verify_consistency, verify_inclusion
from tests.store.factories import event

ORIGIN = "test.ketenpoort/log"
KEY = Ed25519PrivateKey.generate()


def signed_log(engine: Engine, every: int = 4, key: Ed25519PrivateKey = KEY) -> AuditLog:
    return AuditLog(
        engine, max_batch=4, signer=CheckpointSigner(key, ORIGIN), checkpoint_every=every
    )


@pytest.fixture
def log(engine: Engine) -> AuditLog:
    log = signed_log(engine)
    log.append_sync([event(n) for n in range(10)])
    return log


def independent_note_check(note: str, public_key: Ed25519PublicKey) -> tuple[int, bytes]:
    """A C2SP signed-note check written from the spec, sharing no code with the gateway."""
    text_part, signature_part = note.split("\n\n", 1)
    signed = (text_part + "\n").encode()
    origin, size, root = text_part.split("\n")[:3]
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_hash = hashlib.sha256(origin.encode() + b"\n\x01" + raw).digest()[:4]
    line = signature_part.strip("\n")
    assert line.startswith("\u2014 " + origin + " ")
    blob = base64.b64decode(line.rsplit(" ", 1)[1])
    assert blob[:4] == key_hash
    public_key.verify(blob[4:], signed)  # raises InvalidSignature
    return int(size), base64.b64decode(root)


def test_checkpoints_are_signed_every_n_records(log: AuditLog, engine: Engine) -> None:
    with engine.begin() as conn:
        sizes = [r[0] for r in conn.execute(text("SELECT tree_size FROM log_checkpoints"))]
    assert sizes == [4, 8]
    latest = log.checkpoint_now()
    assert latest.tree_size == 10
    size, root = independent_note_check(latest.note, KEY.public_key())
    assert (size, root) == (10, latest.root_hash)
    assert latest.key_id.startswith("sha256:")
    # Nothing new: no second checkpoint at the same size.
    assert log.checkpoint_now().tree_size == 10
    result = log.verify()
    assert result.ok, result.reason
    assert (result.checkpoints_checked, result.last_checkpoint_size) == (3, 10)
    assert result.signatures_checked


def test_a_note_signed_by_another_key_or_edited_is_refused() -> None:
    at = datetime(2026, 5, 1, tzinfo=UTC)
    note = CheckpointSigner(KEY, ORIGIN).sign(3, bytes(32), at).note
    assert open_checkpoint(note, [KEY.public_key()]).tree_size == 3
    with pytest.raises(CheckpointError, match="trusted"):
        open_checkpoint(note, [Ed25519PrivateKey.generate().public_key()])
    with pytest.raises(CheckpointError, match="trusted"):
        open_checkpoint(note.replace("\n3\n", "\n4\n"), [KEY.public_key()])
    with pytest.raises(CheckpointError):
        open_checkpoint("not a note", [KEY.public_key()])


@pytest.mark.parametrize("records", [1, 300, 700])
def test_every_record_has_an_inclusion_proof(engine: Engine, records: int) -> None:
    log = signed_log(engine, every=250)
    log.append_sync([event(n) for n in range(records)])
    checkpoint = log.checkpoint_now()
    prove = log.inclusion_prover()
    seqs = list(range(1, records + 1, max(1, records // 60))) + [records]
    for proof in prove(seqs):
        leaf = leaf_hash(proof.body.encode())
        assert verify_inclusion(leaf, proof.leaf_index, proof.tree_size, proof.path,
                                checkpoint.root_hash)
        assert proof.checkpoint.tree_size == records
    single = log.prove_inclusion(1, tree_size=checkpoint.tree_size)
    assert parse_event(single.body) == log.list_records(limit=1)[0].event
    with pytest.raises(ProofUnavailable):
        log.prove_inclusion(records + 1)


def test_a_record_newer_than_every_checkpoint_gets_one(engine: Engine) -> None:
    log = signed_log(engine, every=1000)
    log.append_sync([event(n) for n in range(5)])  # the first batch is checkpointed at once
    proof = log.prove_inclusion(5)
    assert proof.tree_size == 5
    assert verify_inclusion(
        leaf_hash(proof.body.encode()), 4, 5, proof.path, proof.checkpoint.root_hash
    )


def test_consistency_between_two_checkpoints(engine: Engine) -> None:
    log = signed_log(engine, every=100)
    log.append_sync([event(n) for n in range(530)])
    new = log.checkpoint_now()
    with engine.begin() as conn:
        sizes = [r[0] for r in conn.execute(text("SELECT tree_size FROM log_checkpoints"))]
    assert sizes == [4, 104, 204, 304, 404, 504, 530]
    for old_size in sizes:
        proof = log.prove_consistency(old_size, new.tree_size)
        assert verify_consistency(
            old_size, new.tree_size, proof.old_checkpoint.root_hash, new.root_hash, proof.path
        )
        if old_size < new.tree_size:
            assert not verify_consistency(
                old_size, new.tree_size, bytes(32), new.root_hash, proof.path
            )
    with pytest.raises(ProofUnavailable):
        log.prove_consistency(100, new.tree_size)


# -- an attacker with write access to the database -------------------------------------------


def rewrite(engine: Engine, change: Callable[[list[AuditEvent]], list[AuditEvent]]) -> None:
    """Rewrite the log's records, hash chain, tiles and head consistently, keeping the signed
    checkpoints: what someone with database access but without the signing key can do."""
    with engine.begin() as conn:
        bodies = [r[0] for r in conn.execute(text("SELECT body FROM audit_log ORDER BY seq"))]
        size, at = conn.execute(
            text("SELECT checkpoint_size, checkpoint_at FROM log_head")
        ).one()
        conn.execute(text("DELETE FROM audit_log"))
        conn.execute(text("DELETE FROM merkle_tiles"))
        conn.execute(
            text("UPDATE log_head SET last_seq = 0, last_hash = :g, frontier = ''"),
            {"g": "0" * 64},
        )
    events = change([parse_event(b) for b in bodies])
    AuditLog(engine, max_batch=64).append_sync(events)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE log_head SET checkpoint_size = :s, checkpoint_at = :a"),
            {"s": size, "a": at},
        )


def edit(events: list[AuditEvent]) -> list[AuditEvent]:
    events[5] = event(5, partner_id="someone-else", occurred_at=events[5].occurred_at)
    return events


def insert(events: list[AuditEvent]) -> list[AuditEvent]:
    return [*events[:3], event(99), *events[3:]]


def delete(events: list[AuditEvent]) -> list[AuditEvent]:
    return events[:2] + events[3:]


def reorder(events: list[AuditEvent]) -> list[AuditEvent]:
    events[1], events[2] = events[2], events[1]
    return events


@pytest.mark.parametrize(
    ("change", "bad_checkpoint"),
    [(edit, 8), (insert, 4), (delete, 4), (reorder, 4)],
)
def test_a_rewritten_chain_fails_its_checkpoint(
    log: AuditLog,
    engine: Engine,
    change: Callable[[list[AuditEvent]], list[AuditEvent]],
    bad_checkpoint: int,
) -> None:
    rewrite(engine, change)
    result = log.verify()
    assert not result.ok
    assert result.bad_checkpoint_size == bad_checkpoint
    assert "do not match the signed checkpoint" in result.reason


def test_truncation_after_a_checkpoint_names_the_first_missing_record(
    log: AuditLog, engine: Engine
) -> None:
    rewrite(engine, lambda events: events[:6])
    result = log.verify()
    assert not result.ok
    assert result.first_bad_seq == 7
    assert result.bad_checkpoint_size == 8
    assert "records 7..8 were removed" in result.reason


def test_truncation_with_its_checkpoints_deleted_is_caught_by_an_exported_checkpoint(
    log: AuditLog, engine: Engine
) -> None:
    exported = log.checkpoint_now().note
    rewrite(engine, lambda events: events[:6])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM log_checkpoints WHERE tree_size > 6"))
        conn.execute(text("UPDATE log_head SET checkpoint_size = 4"))
    assert log.verify().ok  # inside the database the cut no longer shows
    result = log.verify(external=[exported])
    assert not result.ok
    assert result.first_bad_seq == 7


def test_deleted_checkpoints_named_by_the_head_are_reported(
    log: AuditLog, engine: Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM log_checkpoints WHERE tree_size = 8"))
    result = log.verify()
    assert not result.ok and result.bad_checkpoint_size == 8


def test_a_checkpoint_signed_by_another_key_is_refused(engine: Engine) -> None:
    forger = signed_log(engine, key=Ed25519PrivateKey.generate())
    forger.append_sync([event(n) for n in range(5)])
    result = signed_log(engine).verify()
    assert not result.ok
    assert "no signature by a trusted log key" in result.reason
    assert result.bad_checkpoint_size == 4


def test_a_changed_tile_is_found(engine: Engine) -> None:
    log = signed_log(engine, every=1000)
    log.append_sync([event(n) for n in range(300)])
    with engine.begin() as conn:
        conn.execute(text("UPDATE merkle_tiles SET hash = :h"), {"h": bytes(32)})
    result = log.verify()
    assert not result.ok and result.first_bad_seq == 256
    assert "tile" in result.reason


def test_an_idle_writer_checkpoints_after_the_interval(engine: Engine) -> None:
    async def scenario() -> int:
        log = AuditLog(
            engine,
            signer=CheckpointSigner(KEY, ORIGIN),
            checkpoint_every=1000,
            checkpoint_interval_s=0.05,
        )
        await log.start()
        try:
            await log.append(event(1))  # the first batch is checkpointed at once
            await log.append(event(2))
            for _ in range(100):
                latest = log.latest_checkpoint()
                if latest is not None and latest.tree_size == 2:
                    return latest.tree_size
                await asyncio.sleep(0.02)
            return 0
        finally:
            await log.close()

    assert asyncio.run(scenario()) == 2


def test_an_unsigned_log_still_builds_its_tree(engine: Engine) -> None:
    log = AuditLog(engine, max_batch=4)
    log.append_sync([event(n) for n in range(600)])
    result = log.verify()
    assert result.ok and not result.signatures_checked
    with pytest.raises(ProofUnavailable):
        log.checkpoint_now()
