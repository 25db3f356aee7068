"""`ketenpoort backup` and `restore` on a real gateway's state, on SQLite and PostgreSQL.

A gateway registers a case and discloses; a backup is taken while it serves; the archive is
restored into a NEW database (on PostgreSQL a fresh schema) and new directories, the log
verifies there, and a gateway started on the restored state serves the same case and
appends to the same log, which its witness accepts as an extension of what it saw. A damaged
archive restores nothing; a backup older than a witnessed checkpoint is refused as a
rollback unless the operator accepts it, which the log records and the witness still sees.
"""

from __future__ import annotations

import json
import secrets
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.log_witness import LogRewritten, LogRolledBack
from gateway.broker.log_events import RecordKind
from gateway.cli.main import main
from gateway.core import CompiledPolicy
from gateway.ops.archive import MANIFEST
from gateway.ops.db_dump import database_is_empty
from gateway.store.audit_log import AuditLog
from gateway.store.checkpoint_file import read_notes
from gateway.store.db import create_engine_for
from tests.conftest import _admin, _pg_reason, pg_server_url
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_tampering import config_file

REASON = "the database volume was lost; this is the newest backup"


@pytest.fixture
def fresh_db_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """Another, empty database of the same kind as ``db_url``: where the backup goes."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'ketenpoort.db'}"
        return
    url = pg_server_url()
    schema = f"t_{secrets.token_hex(8)}"
    _admin(url, f"CREATE SCHEMA {schema}")
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        _admin(url, f"DROP SCHEMA {schema} CASCADE")


def _target(root: Path, db_url: str) -> Path:
    """An operator's configuration of the new installation: fresh directories, new database."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "gateway.toml"
    path.write_text(
        f"database_url = '{db_url}'\n"
        f"keys_dir = '{root / 'keys'}'\n"
        f"data_dir = '{root}'\n"
        f"registry_dir = '{root / 'registry'}'\n"
        f"checkpoint_dir = '{root / 'checkpoints'}'\n"
        f"policy_dir = '{root / 'policy'}'\n",
        encoding="utf-8",
    )
    return path


def _restored(root: Path) -> dict[str, object]:
    """What a gateway on the restored state is configured with (harness config changes)."""
    return {
        "registry_dir": root / "registry",
        "checkpoint_dir": root / "checkpoints",
        "policy_dir": root / "policy",
    }


async def _fill(harness: Harness, witness_state: Path) -> str:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await to_case_meeting(director, case_id)
    await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    await director.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    harness.gateway.log.checkpoint_now()
    await police.witness_log(witness_state)
    return case_id


def _manifest(archive: Path) -> dict[str, object]:
    with tarfile.open(archive) as tar:
        handle = tar.extractfile(MANIFEST)
        assert handle is not None
        manifest: dict[str, object] = json.loads(handle.read())
    return manifest


def _verify(db_url: str, keys: Path, checkpoints: Path) -> None:
    from gateway.crypto.layout import GatewayKeyPaths
    from gateway.crypto.public_exports import log_public_keys

    engine = create_engine_for(db_url)
    try:
        log = AuditLog(engine, trusted_keys=log_public_keys(GatewayKeyPaths.under(keys)))
        result = log.verify(external=read_notes(checkpoints), require_checkpoint=True)
        assert result.ok, result.reason
        assert result.signatures_checked
    finally:
        engine.dispose()


async def test_restore_into_a_new_database_verifies_and_the_partner_continues(
    db_url: str,
    fresh_db_url: str,
    dev_keys: Path,
    shipped_policy: CompiledPolicy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "police-witness.json"
    archive = tmp_path / "backups" / "ketenpoort.backup"
    archive.parent.mkdir()
    async with running_harness(db_url, dev_keys, shipped_policy) as harness:
        case_id = await _fill(harness, state)
        records = harness.gateway.log.count()
        # Taken while the gateway serves: one read transaction, checkpoint files first.
        assert main(["backup", "--config", str(config_file(harness, tmp_path / "a.toml")),
                     "--output", str(archive)]) == 0
    out = capsys.readouterr()
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert "private keys" in out.out
    manifest = _manifest(archive)
    log_info = manifest["log"]
    assert isinstance(log_info, dict)
    assert log_info["records"] == records
    assert log_info["checkpoint"]["tree_size"] == records
    assert log_info["witnessed"] == {"tree_size": records, "witnesses": ["police"]}
    assert manifest["schema_revision"]
    # Values stay as stored: the dump holds no clear identity of the subject.
    with tarfile.open(archive) as tar:
        dumped = b"".join(
            tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers() if m.name.startswith("db/")
        )
    assert dumped and b"Jansen" not in dumped

    target = tmp_path / "restored-site"
    config = _target(target, fresh_db_url)
    assert main(["restore", "--config", str(config), str(archive)]) == 0
    out = capsys.readouterr()
    assert "the log verifies" in out.out, out
    assert stat.S_IMODE((target / "keys" / "gateway").stat().st_mode) == 0o700
    assert main(["audit", "verify", "--config", str(config)]) == 0
    _verify(fresh_db_url, target / "keys", target / "checkpoints")

    async with running_harness(
        fresh_db_url, target / "keys", shipped_policy, config_changes=_restored(target)
    ) as restored:
        log = restored.gateway.log
        restored_record = log.list_records(kinds=[RecordKind.LOG_RESTORED])
        assert [r.seq for r in restored_record] == [records + 1]
        assert dict(restored_record[0].event.detail)["outcome"] == "restored"
        # The partner continues on the case registered before the backup.
        opened = await restored.client("zvh").request_disclosure(
            case_id, "analysis_and_plan", "case_meeting"
        )
        assert opened.values
        assert log.count() > records + 1
        log.checkpoint_now()
        # Its witness sees the same log, grown: no rollback, no rewrite.
        witnessed = await restored.client("police").witness_log(state)
        assert witnessed.previous_size == records
        assert witnessed.tree_size > records
    assert main(["audit", "verify", "--config", str(config)]) == 0
    _verify(fresh_db_url, target / "keys", target / "checkpoints")

    # The restored database is no longer empty: a second restore into it is refused.
    assert main(["restore", "--config", str(config), str(archive)]) == 1
    assert "already holds gateway tables" in capsys.readouterr().err


@pytest.mark.parametrize("damage", ["flipped_byte", "truncated", "member_added"])
async def test_a_damaged_archive_restores_nothing(
    db_url: str,
    fresh_db_url: str,
    dev_keys: Path,
    shipped_policy: CompiledPolicy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    damage: str,
) -> None:
    if not db_url.startswith("sqlite") and damage != "flipped_byte":
        pytest.skip("the archive checks do not depend on the database: one case suffices")
    archive = tmp_path / "ketenpoort.backup"
    async with running_harness(db_url, dev_keys, shipped_policy) as harness:
        await _fill(harness, tmp_path / "w.json")
        assert main(["backup", "--config", str(config_file(harness, tmp_path / "a.toml")),
                     "--output", str(archive)]) == 0
    data = bytearray(archive.read_bytes())
    if damage == "flipped_byte":
        # A byte inside the audit log's dump (past its tar header).
        with tarfile.open(archive) as tar:
            member = tar.getmember("db/audit_log.jsonl.gz")
        data[member.offset_data + member.size // 2] ^= 0x01
    elif damage == "truncated":
        del data[len(data) // 2 :]
    else:
        with tarfile.open(archive) as tar:
            members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]
        rebuilt = tmp_path / "rebuilt.backup"
        with tarfile.open(rebuilt, "w") as out:
            for m, content in members:
                if m.name == MANIFEST:
                    extra = tarfile.TarInfo("files/keys/gateway/kek/planted.key")
                    extra.size = 32
                    out.addfile(extra, __import__("io").BytesIO(b"\0" * 32))
                out.addfile(m, __import__("io").BytesIO(content))
        data = bytearray(rebuilt.read_bytes())
    archive.write_bytes(bytes(data))
    capsys.readouterr()

    target = tmp_path / "restored-site"
    config = _target(target, fresh_db_url)
    assert main(["restore", "--config", str(config), str(archive)]) == 1
    err = capsys.readouterr().err
    assert "nothing restored" in err, err
    engine = create_engine_for(fresh_db_url)
    try:
        assert database_is_empty(engine)
    finally:
        engine.dispose()
    assert not (target / "keys").exists()
    assert not (target / "checkpoints").exists()


async def test_a_backup_older_than_a_witnessed_checkpoint_is_a_rollback(
    db_url: str,
    fresh_db_url: str,
    dev_keys: Path,
    shipped_policy: CompiledPolicy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "police-witness.json"
    archive = tmp_path / "ketenpoort.backup"
    async with running_harness(db_url, dev_keys, shipped_policy) as harness:
        case_id = await _fill(harness, state)
        backed_up = harness.gateway.log.count()
        assert main(["backup", "--config", str(config_file(harness, tmp_path / "a.toml")),
                     "--output", str(archive)]) == 0
        # The log grows after the backup and the witness cosigns the larger checkpoint.
        await harness.client("zvh").request_disclosure(
            case_id, "analysis_and_plan", "case_meeting"
        )
        harness.gateway.log.checkpoint_now()
        witnessed = (await harness.client("police").witness_log(state)).tree_size
        assert witnessed > backed_up
        source_checkpoints = harness.gateway.config.checkpoints_path
    witness_kept = state.read_text()

    # The database is lost; the host's checkpoint files survive at the target.
    target = tmp_path / "restored-site"
    config = _target(target, fresh_db_url)
    (target / "checkpoints").mkdir()
    for path in source_checkpoints.glob("checkpoints-*.jsonl"):
        (target / "checkpoints" / path.name).write_bytes(path.read_bytes())
    capsys.readouterr()
    assert main(["restore", "--config", str(config), str(archive)]) == 3
    err = capsys.readouterr().err
    assert "rollback" in err and f"tree size {witnessed}" in err and "police" in err, err
    engine = create_engine_for(fresh_db_url)
    try:
        assert database_is_empty(engine)
    finally:
        engine.dispose()
    assert not (target / "keys").exists()

    # With no checkpoint files left at all, the witness's own state says the same.
    elsewhere = tmp_path / "elsewhere"
    other = _target(elsewhere, fresh_db_url)
    assert main(["restore", "--config", str(other), str(archive),
                 "--witnessed", str(state)]) == 3
    assert "rollback" in capsys.readouterr().err

    # Accepted with a reason: restored, recorded, the contradicting files kept aside.
    assert main(["restore", "--config", str(config), str(archive), "--accept-rollback"]) == 2
    assert main(["restore", "--config", str(config), str(archive), "--accept-rollback",
                 "--reason", REASON, "--operator", "op-17"]) == 0
    out = capsys.readouterr().out
    assert "ROLLBACK accepted" in out and "police" in out, out
    assert REASON not in out
    superseded = sorted((target / "checkpoints").glob("superseded-*-checkpoints-*.jsonl"))
    assert superseded
    receipts = list((target / "checkpoints").glob("restored-*.json"))
    assert len(receipts) == 1
    receipt = json.loads(receipts[0].read_text())
    assert receipt["rollback"]["known_size"] == witnessed
    assert main(["audit", "verify", "--config", str(config)]) == 0
    _verify(fresh_db_url, target / "keys", target / "checkpoints")

    async with running_harness(
        fresh_db_url, target / "keys", shipped_policy, config_changes=_restored(target)
    ) as restored:
        [record] = restored.gateway.log.list_records(kinds=[RecordKind.LOG_RESTORED])
        detail = dict(record.event.detail)
        assert record.seq == backed_up + 1
        assert detail["outcome"] == "rollback_accepted"
        assert detail["known_size"] == str(witnessed)
        assert detail["witnesses"] == "police"
        assert detail["reason_hmac"].startswith("hmac-sha256:")
        # The log holds a keyed digest of the reason, never its text.
        engine = create_engine_for(fresh_db_url)
        try:
            with engine.connect() as conn:
                bodies = conn.execute(text("SELECT body FROM audit_log")).scalars().all()
        finally:
            engine.dispose()
        assert bodies and not any("volume was lost" in b for b in bodies)
        restored.gateway.log.checkpoint_now()
        # The witness is not silently contradicted: it still refuses the rolled-back log.
        with pytest.raises((LogRolledBack, LogRewritten)):
            await restored.client("police").witness_log(state)
        assert state.read_text() == witness_kept


@pytest.mark.postgres
async def test_a_sqlite_backup_restores_into_postgresql(
    dev_keys: Path,
    shipped_policy: CompiledPolicy,
    tmp_path: Path,
) -> None:
    """The dump is logical and portable: a small installation on SQLite moves to PostgreSQL
    with its log (bodies byte for byte, so every hash and checkpoint still holds)."""
    url = pg_server_url()
    reason = _pg_reason(url)
    if reason is not None:
        pytest.skip(f"PostgreSQL not reachable: {reason}")
    archive = tmp_path / "ketenpoort.backup"
    sqlite_url = f"sqlite:///{tmp_path / 'data' / 'ketenpoort.db'}"
    async with running_harness(sqlite_url, dev_keys, shipped_policy) as harness:
        case_id = await _fill(harness, tmp_path / "w.json")
        records = harness.gateway.log.count()
        assert main(["backup", "--config", str(config_file(harness, tmp_path / "a.toml")),
                     "--output", str(archive)]) == 0
    schema = f"t_{secrets.token_hex(8)}"
    _admin(url, f"CREATE SCHEMA {schema}")
    try:
        pg_url = url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
        target = tmp_path / "on-postgres"
        config = _target(target, pg_url)
        assert main(["restore", "--config", str(config), str(archive)]) == 0
        assert main(["audit", "verify", "--config", str(config)]) == 0
        async with running_harness(
            pg_url, target / "keys", shipped_policy, config_changes=_restored(target)
        ) as moved:
            await moved.client("zvh").request_disclosure(
                case_id, "analysis_and_plan", "case_meeting"
            )
            assert moved.gateway.log.count() > records + 1
            # New case events after the restored ones: the serial columns' sequences moved
            # past the restored ids (else this insert would collide).
            await moved.client("zvh").invite(case_id, "ggz")
            await moved.client("zvh").change_phase(case_id, "case_meeting", "plan")
        _verify(pg_url, target / "keys", target / "checkpoints")
    finally:
        _admin(url, f"DROP SCHEMA {schema} CASCADE")


async def test_a_restore_whose_log_does_not_verify_is_taken_out_again(
    db_url: str,
    fresh_db_url: str,
    dev_keys: Path,
    shipped_policy: CompiledPolicy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A checkpoint at the target of the backup's own size but another root (a log that
    forked from the backup's) is no rollback, yet the restored log contradicts it: the
    restore fails after loading, and takes out the tables and files it wrote."""
    from datetime import UTC, datetime

    from gateway.crypto.keystore import Keystore
    from gateway.crypto.provider_settings import KeyProviderSettings
    from gateway.store.checkpoint_file import CheckpointFile
    from gateway.store.checkpoints import CheckpointSigner

    archive = tmp_path / "ketenpoort.backup"
    async with running_harness(db_url, dev_keys, shipped_policy) as harness:
        await _fill(harness, tmp_path / "w.json")
        size = harness.gateway.log.count()
        origin = harness.gateway.config.log_origin
        assert main(["backup", "--config", str(config_file(harness, tmp_path / "a.toml")),
                     "--output", str(archive)]) == 0
    keystore = Keystore.open(dev_keys, KeyProviderSettings())
    try:
        signer = CheckpointSigner(keystore.signing_keys().current, origin)
        forked = signer.sign(size, b"\x07" * 32, datetime.now(UTC))
    finally:
        keystore.close()
    target = tmp_path / "restored-site"
    config = _target(target, fresh_db_url)
    CheckpointFile(target / "checkpoints", "elsewhere").append(forked.note)
    capsys.readouterr()
    assert main(["restore", "--config", str(config), str(archive)]) == 1
    err = capsys.readouterr().err
    assert "does not verify" in err and "undone" in err, err
    engine = create_engine_for(fresh_db_url)
    try:
        assert database_is_empty(engine)
    finally:
        engine.dispose()
    assert not (target / "keys").exists() and not (target / "registry").exists()
    # The evidence at the target is untouched.
    assert read_notes(target / "checkpoints") == [forked.note]
