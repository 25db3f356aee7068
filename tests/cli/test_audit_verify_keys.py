"""`ketenpoort audit verify` passes a log only when a trusted key checked its checkpoints:
without one, a log whose records, tree and checkpoints were all rewritten would agree with
itself, so it exits 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.cli.main import main
from gateway.store import AuditLog, create_engine_for, init_schema
from gateway.store.checkpoints import CheckpointSigner
from tests.store.factories import event


def test_verify_needs_a_trusted_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = Ed25519PrivateKey.generate()
    url = f"sqlite:///{tmp_path / 'log.db'}"
    engine = create_engine_for(url)
    try:
        init_schema(engine)
        log = AuditLog(engine, signer=CheckpointSigner(key, "test.ketenpoort/log"))
        log.append_sync([event(n) for n in range(3)])
    finally:
        engine.dispose()
    no_keys = tmp_path / "no-keys"
    no_keys.mkdir()
    assert main(["audit", "verify", "--db", url, "--keys", str(no_keys)]) == 1
    assert "signatures" in capsys.readouterr().err

    public = tmp_path / "log.pub.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    command = ["audit", "verify", "--db", url, "--keys", str(no_keys), "--public-key", str(public)]
    assert main(command) == 0
    assert "log verifies: 3 records" in capsys.readouterr().out
