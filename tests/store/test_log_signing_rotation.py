"""The log across a rotation of the log-signing key: checkpoints before and after it verify,
whether the keystore's refresh was asked for by this code or by another user of the keystore."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.crypto import init_dev_keys
from gateway.crypto.file_provider import FileKeyProvider
from gateway.crypto.keyids import key_pin
from gateway.crypto.keystore import Keystore
from gateway.crypto.provider import KeyKind
from gateway.runtime.key_refresh import follow_key_changes
from gateway.store import AuditLog
from gateway.store.checkpoints import CheckpointSigner
from tests.store.factories import event


@pytest.mark.parametrize("refreshed_elsewhere", [False, True])
def test_checkpoints_before_and_after_a_rotation_verify(
    engine: Engine, tmp_path: Path, refreshed_elsewhere: bool
) -> None:
    keys = init_dev_keys(tmp_path / "keys", ["police"]).root
    keystore = Keystore.open(keys)
    signer = CheckpointSigner(keystore.signing_keys().current, "test.ketenpoort/log")
    log = AuditLog(engine, signer=signer, trusted_keys=keystore.log_verification_keys())
    log.append_sync([event(n) for n in range(3)])
    first = log.checkpoint_now()
    assert follow_key_changes(keystore, signer, log) is False

    provider = FileKeyProvider(keys)
    new_id = provider.rotate(KeyKind.SIGNING)
    if refreshed_elsewhere:
        assert keystore.refresh() is True  # e.g. the key-encryption keys' own look
    assert follow_key_changes(keystore, signer, log) is True
    assert follow_key_changes(keystore, signer, log) is False
    log.append_sync([event(n) for n in range(3, 6)])
    second = log.checkpoint_now()
    new_key = keystore.signing_keys().get(new_id).public_key()
    assert second.key_id == key_pin(new_key) != first.key_id
    result = log.verify()
    assert result.ok and result.signatures_checked and result.checkpoints_checked == 2

    # The old key retired: its public half is kept, and a log opened afresh still verifies.
    old_id = next(k for k in keystore.signing_keys().keys if k != new_id)
    provider.retire(KeyKind.SIGNING, old_id)
    assert follow_key_changes(keystore, signer, log) is True
    assert old_id not in keystore.signing_keys().keys
    assert log.verify().ok
    again = AuditLog(engine, trusted_keys=Keystore.open(keys).log_verification_keys())
    assert again.verify().ok
    assert [again.attested(c).key_id for c in (first, second)] == [first.key_id, second.key_id]
