"""A checkpoint names its signing key only when a key the log trusts verifies the note: the
key id stored beside the checkpoint is the database's claim, never shown as the signer, in an
access report nor in the log's checkpoints and proofs."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from gateway.crypto.keyids import key_pin
from gateway.reports.access_request import proofs_of
from gateway.store import AuditLog, create_engine_for, init_schema
from gateway.store.checkpoints import CheckpointSigner
from tests.store.factories import event

ORIGIN = "test.ketenpoort/log"


def test_a_stored_key_id_is_not_taken_for_a_verified_signer(tmp_path: Path) -> None:
    signing, trusted = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    engine = create_engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        init_schema(engine)
        AuditLog(
            engine, max_batch=2, signer=CheckpointSigner(signing, ORIGIN), checkpoint_every=2
        ).append_sync([event(n) for n in range(4)])
        # Someone with write access claims the trusted key signed the stored checkpoints.
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE log_checkpoints SET key_id = :k"), {"k": key_pin(trusted.public_key())}
            )
        unverified = proofs_of(AuditLog(engine, trusted_keys=[trusted.public_key()]), [1, 2])
        assert {p.checkpoint.key_id for p in unverified.values()} == {""}

        verified = proofs_of(AuditLog(engine, trusted_keys=[signing.public_key()]), [1, 2])
        assert {p.checkpoint.key_id for p in verified.values()} == {key_pin(signing.public_key())}
    finally:
        engine.dispose()


def test_the_log_names_only_a_key_that_verifies_its_checkpoints(tmp_path: Path) -> None:
    signing, trusted = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    engine = create_engine_for(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        init_schema(engine)
        AuditLog(
            engine, max_batch=2, signer=CheckpointSigner(signing, ORIGIN), checkpoint_every=2
        ).append_sync([event(n) for n in range(4)])
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE log_checkpoints SET key_id = :k"), {"k": key_pin(trusted.public_key())}
            )
        claimed = AuditLog(engine, trusted_keys=[trusted.public_key()])
        latest = claimed.latest_checkpoint()
        assert latest is not None and latest.key_id == ""
        assert claimed.prove_inclusion(1).checkpoint.key_id == ""
        consistency = claimed.prove_consistency(2, 4)
        assert consistency.old_checkpoint.key_id == consistency.new_checkpoint.key_id == ""

        honest = AuditLog(engine, trusted_keys=[signing.public_key()])
        latest = honest.latest_checkpoint()
        assert latest is not None and latest.key_id == key_pin(signing.public_key())
        assert honest.prove_inclusion(1, 2).checkpoint.key_id == key_pin(signing.public_key())
    finally:
        engine.dispose()
