"""``ketenpoort restore``: bring a backup back into a new, empty database and directories.

Nothing is written until the archive verified against its manifest, its schema revision is
this version's, the database is empty, no file at the target contradicts the archive, and the
backup is no rollback below a checkpoint known at the target. Then the files, the database,
and the log's check against every checkpoint known (the archive's, the target's checkpoint
files, ``--witnessed`` notes); if that check fails, what was written is taken out again.

**Rollback.** A checkpoint at the target (or given with ``--witnessed``) larger than the
backup's log was handed out or cosigned by witnesses: a restored log smaller than it is, to
everyone holding it, a rollback, and partners that witnessed it refuse the gateway from then
on. The restore refuses unless the operator accepts it with a reason; it then keeps the
contradicting checkpoint files aside as ``superseded-<time>-…`` (as ``audit acknowledge
--override`` does), so they stop counting but still show what was there, and the first
record of the restored log says so (kind ``log_restored``, the sizes, the witnesses, a keyed
digest of the reason). Witnesses are not silently contradicted: their operators must be told
and must start their witness state afresh (docs/operations/backup-and-restore.md).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, text

from gateway.crypto._pem import load_ed25519_public_key
from gateway.crypto.errors import KeystoreError
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.provider_settings import ProviderType
from gateway.crypto.public_exports import log_public_keys
from gateway.ops.archive import ArchiveError, ArchiveReader
from gateway.ops.backup import part_directories
from gateway.ops.db_dump import DumpError, database_is_empty, load_database
from gateway.server.config import GatewayConfig
from gateway.store import migrations
from gateway.store.audit_log import AuditLog
from gateway.store.checkpoint_file import (
    FILE_PREFIX,
    FILE_SUFFIX,
    CheckpointFile,
    CheckpointFileError,
    read_file_notes,
)
from gateway.store.db import create_engine_for
from gateway.store.log_alarm import LogAlarm
from gateway.store.tables import metadata
from gateway.tlog.notes import Checkpoint, CheckpointError, open_checkpoint, signature_lines

if TYPE_CHECKING:
    from gateway.broker.log_events import AuditEvent

_DIR_MODES = {"keys": 0o700, "registry": 0o750, "policy": 0o750, "checkpoints": 0o750}
_WITNESS_STATE_FORMAT = "ketenpoort-witness-state/1"


class RestoreRefused(Exception):
    """The restore did not start: nothing was written (one line, no values)."""


class RollbackRefused(RestoreRefused):
    """The backup is older than a checkpoint known at the target."""


class RestoreFailed(Exception):
    """The restore wrote and then failed; what it wrote was taken out again."""


@dataclass(frozen=True)
class RestoreOptions:
    witnessed: Sequence[Path] = ()
    accept_rollback: bool = False
    reason: str = ""
    operator: str = ""


@dataclass
class RestoreSummary:
    created_at: str
    tables: int
    rows: int
    files: int
    log_records: int
    checkpoints_checked: int
    restore_record_seq: int
    rollback_from: int = 0
    witnesses: list[str] = field(default_factory=list)
    superseded: list[Path] = field(default_factory=list)
    no_outside_evidence: bool = False
    alarm: str = ""


@dataclass(frozen=True)
class _Known:
    """A checkpoint known at the target, and where it came from."""

    checkpoint: Checkpoint
    source: Path
    witnesses: tuple[str, ...]


def restore_backup(
    config: GatewayConfig, archive: Path, options: RestoreOptions = RestoreOptions()
) -> RestoreSummary:
    with ArchiveReader(archive) as reader:
        reader.verify()
        manifest = reader.manifest
        _check_revision(manifest)
        _check_key_provider(config, manifest)
        targets = part_directories(config)
        _check_files(reader, targets)
        engine = create_engine_for(config.database_url)
        try:
            if not database_is_empty(engine):
                raise RestoreRefused(
                    "the configured database already holds gateway tables: restore into a "
                    "new, empty database (keep the old one until the restored gateway runs: "
                    "it may hold records the backup lacks)"
                )
            return _restore(config, reader, engine, targets, options)
        finally:
            engine.dispose()


def _restore(
    config: GatewayConfig,
    reader: ArchiveReader,
    engine: Engine,
    targets: dict[str, Path],
    options: RestoreOptions,
) -> RestoreSummary:
    manifest = reader.manifest
    log_info = manifest.get("log", {})
    records = int(log_info.get("records", 0))
    origin = str(log_info.get("origin", config.log_origin))
    if origin != config.log_origin:
        raise RestoreRefused(
            f"the backup is of log {origin!r}, the configuration names log "
            f"{config.log_origin!r}: set log_origin as the backed-up gateway had it (witnesses "
            "check it)"
        )
    trusted = _archive_log_keys(reader) + _target_log_keys(config)
    known = _known_checkpoints(targets["checkpoints"], options.witnessed, trusted, origin)
    beyond = [k for k in known if k.checkpoint.tree_size > records]
    summary = RestoreSummary(
        created_at=str(manifest.get("created_at", "")),
        tables=0,
        rows=0,
        files=0,
        log_records=records,
        checkpoints_checked=0,
        restore_record_seq=0,
        no_outside_evidence=not known,
    )
    if beyond:
        newest = max(beyond, key=lambda k: k.checkpoint.tree_size)
        witnesses = sorted({w for k in beyond for w in k.witnesses})
        summary.rollback_from = newest.checkpoint.tree_size
        summary.witnesses = witnesses
        if not options.accept_rollback:
            raise RollbackRefused(_rollback_message(records, newest, witnesses))
        if not options.reason.strip():
            raise RestoreRefused("--accept-rollback needs a --reason")
    written: list[Path] = []
    scratch = Path(tempfile.mkdtemp(prefix=".ketenpoort-restore-"))
    try:
        for part in ("keys", "registry", "policy"):
            summary.files += _write_part(reader, part, targets[part], written)
        db_files = {}
        for name in reader.members:
            if name.startswith("db/") and name.endswith(".jsonl.gz"):
                table = name[len("db/") : -len(".jsonl.gz")]
                target = scratch / f"{table}.jsonl.gz"
                reader.extract_to(name, target)
                db_files[table] = target
        loaded = load_database(engine, db_files)
        summary.tables, summary.rows = len(loaded), sum(loaded.values())
        excluded = {k.checkpoint.note for k in beyond}
        notes = _archive_notes(reader) + [
            k.checkpoint.note for k in known if k.checkpoint.note not in excluded
        ]
        log = AuditLog(engine, trusted_keys=_log_keys(config))
        result = log.verify(
            external=notes,
            require_checkpoint=records > 0,
            external_source="in the backup, the checkpoint files at the target or --witnessed",
        )
        if not result.ok:
            raise RestoreFailed(
                f"the restored log does not verify: {result.reason}; the restore was undone"
            )
        summary.checkpoints_checked = result.checkpoints_checked
        # Needs the restored pseudonym key (a PKCS#11 PIN, maybe): before the restore stands.
        reason_hmac = _reason_digest(config, options.reason) if beyond else ""
    except BaseException:
        _undo(engine, written)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # From here on the restore stands: the checkpoint evidence is merged, never undone.
    directory = targets["checkpoints"]
    if beyond:
        summary.superseded = _supersede(directory, beyond)
    summary.files += _merge_checkpoints(reader, directory, config)
    for k in known:
        if k.checkpoint.note not in {b.checkpoint.note for b in beyond}:
            CheckpointFile(directory, config.replica_id or None).append(k.checkpoint.note)
    record = _restored_event(manifest, summary, options, reason_hmac)
    appended = log.append_sync([record])
    summary.restore_record_seq = appended[0].seq
    _write_receipt(directory, manifest, summary, beyond)
    alarm = LogAlarm(directory).current()
    summary.alarm = alarm.describe() if alarm is not None else ""
    return summary


def _check_revision(manifest: dict[str, Any]) -> None:
    revision = manifest.get("schema_revision")
    head = migrations.head_revision()
    if revision != head:
        raise RestoreRefused(
            f"the backup's database is at schema revision {revision}, this version works with "
            f"{head}: restore it with the release that made it, then upgrade "
            "(ketenpoort db upgrade, docs/upgrading.md)"
        )


def _check_key_provider(config: GatewayConfig, manifest: dict[str, Any]) -> None:
    backed = manifest.get("key_provider", {}) or {}
    settings = config.key_provider
    if backed.get("type", "file") != ProviderType.PKCS11.value:
        if settings.type is ProviderType.PKCS11:
            raise RestoreRefused(
                "the backup holds file keys but the configuration names a PKCS#11 token: "
                "restore with a file key provider"
            )
        return
    token = settings.pkcs11
    kinds = sorted(k.value for k in settings.token_kinds)
    if (
        settings.type is not ProviderType.PKCS11
        or token is None
        or token.token_label != backed.get("token_label")
        or token.namespace != backed.get("namespace")
        or kinds != backed.get("token_kinds")
    ):
        raise RestoreRefused(
            f"the backup's keys of kinds {', '.join(backed.get('token_kinds', []))} live in "
            f"PKCS#11 token {backed.get('token_label')!r} (namespace "
            f"{backed.get('namespace')!r}), which a backup never holds: configure "
            "[key_provider] for that token (or its restored copy) and run the restore again"
        )


def _check_files(reader: ArchiveReader, targets: dict[str, Path]) -> None:
    """Refuse when a file at the target differs from the archive's (a file that is the same
    is left as it is): a restore never overwrites keys, registry entries or policy."""
    conflicts: list[str] = []
    for part in ("keys", "registry", "policy"):
        for name, relative, _mode in reader.part_members(part):
            target = targets[part] / relative
            if target.is_symlink() or (target.exists() and not target.is_file()):
                conflicts.append(str(target))
            elif target.exists() and target.read_bytes() != reader.read(name):
                conflicts.append(str(target))
    if conflicts:
        shown = ", ".join(conflicts[:5]) + (" ..." if len(conflicts) > 5 else "")
        raise RestoreRefused(
            f"{len(conflicts)} file(s) at the target differ from the backup's ({shown}): "
            "restore into new directories, or move these aside first"
        )


def _write_part(reader: ArchiveReader, part: str, directory: Path, written: list[Path]) -> int:
    count = 0
    for name, relative, mode in reader.part_members(part):
        target = directory / relative
        if target.exists():
            continue  # the same bytes (checked before)
        _make_dirs(target.parent, _DIR_MODES[part], written)
        data = reader.read(name)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode & 0o777)
        written.append(target)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        count += 1
    return count


def _make_dirs(directory: Path, mode: int, written: list[Path]) -> None:
    missing = []
    probe = directory
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for d in reversed(missing):
        d.mkdir(mode=mode)
        os.chmod(d, mode)  # not narrowed by the umask: the modes keys.md asks for
        written.append(d)


def _undo(engine: Engine, written: list[Path]) -> None:
    """Take out what the restore wrote: the tables it made (the database was empty) and the
    files and directories it created."""
    try:
        metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    except Exception:  # noqa: BLE001 - the first failure is the one reported
        pass
    for path in reversed(written):
        try:
            path.rmdir() if path.is_dir() else path.unlink()
        except OSError:
            pass


def _archive_log_keys(reader: ArchiveReader) -> list[Ed25519PublicKey]:
    keys = []
    for name, relative, _mode in reader.part_members("keys"):
        if relative.startswith("gateway/") and relative.endswith(".pub.pem") and (
            "signing" in relative
        ):
            with tempfile.NamedTemporaryFile() as tmp:
                tmp.write(reader.read(name))
                tmp.flush()
                try:
                    keys.append(load_ed25519_public_key(Path(tmp.name)))
                except KeystoreError:
                    continue
    return keys


def _target_log_keys(config: GatewayConfig) -> list[Ed25519PublicKey]:
    try:
        return log_public_keys(GatewayKeyPaths.under(config.keys_dir))
    except (KeystoreError, OSError):
        return []


def _log_keys(config: GatewayConfig) -> list[Ed25519PublicKey]:
    try:
        return log_public_keys(GatewayKeyPaths.under(config.keys_dir))
    except KeystoreError as exc:
        raise RestoreFailed(f"the restored key directory is unusable: {exc}") from None


def _known_checkpoints(
    directory: Path,
    witnessed: Sequence[Path],
    trusted: Sequence[Ed25519PublicKey],
    origin: str,
) -> list[_Known]:
    """Checkpoints of this log, signed by one of its keys, in the target's checkpoint files
    and the ``witnessed`` files (a note, a checkpoint file, or a partner's witness state)."""
    sources: list[tuple[Path, str]] = []
    try:
        for path in sorted(directory.glob(f"{FILE_PREFIX}*{FILE_SUFFIX}")):
            sources += [(path, note) for note in read_file_notes(path)]
    except CheckpointFileError as exc:
        raise RestoreRefused(f"{exc}: a damaged checkpoint file is no reason to restore") from None
    for path in witnessed:
        sources += [(path, note) for note in _notes_in(path)]
    known: list[_Known] = []
    for path, note in sources:
        try:
            checkpoint = open_checkpoint(note, trusted)
        except CheckpointError:
            continue  # not signed by this log's keys: proves nothing about it
        if checkpoint.origin != origin:
            continue
        known.append(_Known(checkpoint, path, _cosigners(note, origin)))
    return known


def _notes_in(path: Path) -> list[str]:
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RestoreRefused(f"--witnessed {path} cannot be read: {exc}") from None
    stripped = raw.lstrip()
    if stripped.startswith("{"):
        try:
            if "\n{" in stripped.rstrip():
                return read_notes_lines(path)
            document = json.loads(stripped)
            note = document["note"]
            if document.get("format", _WITNESS_STATE_FORMAT) != _WITNESS_STATE_FORMAT:
                raise ValueError("unknown format")
            return [str(note)]
        except (ValueError, KeyError, TypeError) as exc:
            raise RestoreRefused(f"--witnessed {path} is not a checkpoint: {exc}") from None
    return [raw]


def read_notes_lines(path: Path) -> list[str]:
    try:
        return read_file_notes(path)
    except CheckpointFileError as exc:
        raise RestoreRefused(str(exc)) from None


def _cosigners(note: str, origin: str) -> tuple[str, ...]:
    names = []
    for line in signature_lines(note):
        parts = line.split(" ")
        if len(parts) == 3 and parts[1] != origin:
            names.append(parts[1])
    return tuple(sorted(set(names)))


def _rollback_message(records: int, newest: _Known, witnesses: list[str]) -> str:
    size = newest.checkpoint.tree_size
    who = (
        f"cosigned by witness(es) {', '.join(witnesses)}"
        if witnesses
        else "signed and handed out by this gateway"
    )
    return (
        f"the backup's log holds {records} records, but a checkpoint of tree size {size} "
        f"({who}; in {newest.source}) is known here: to everyone holding it this restore is a "
        f"rollback of {size - records} records. Restore a newer backup; if there is none, "
        "run again with --accept-rollback --reason TEXT and tell the witnesses "
        "(docs/operations/backup-and-restore.md)"
    )


def _archive_notes(reader: ArchiveReader) -> list[str]:
    notes: list[str] = []
    for name, relative, _mode in reader.part_members("checkpoints"):
        if relative.startswith(FILE_PREFIX) and relative.endswith(FILE_SUFFIX):
            for line in reader.read(name).decode("utf-8", "replace").split("\n"):
                try:
                    note = json.loads(line)["note"]
                except (ValueError, KeyError, TypeError):
                    continue
                if isinstance(note, str):
                    notes.append(note)
    return notes


def _supersede(directory: Path, beyond: list[_Known]) -> list[Path]:
    """Keep aside the target's checkpoint files holding checkpoints beyond the backup, and
    the --witnessed notes beyond it, as superseded-<time>-…: no longer counted, still kept."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved: list[Path] = []
    sources = {k.source for k in beyond}
    for path in sorted(sources):
        if path.parent == directory and path.name.startswith(FILE_PREFIX):
            target = path.with_name(f"superseded-{stamp}-{path.name}")
            path.rename(target)
            moved.append(target)
    given = [k.checkpoint.note for k in beyond if k.source.parent != directory
             or not k.source.name.startswith(FILE_PREFIX)]
    if given:
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"superseded-{stamp}-witnessed.jsonl"
        with open(target, "a", encoding="utf-8") as out:
            for note in given:
                out.write(json.dumps({"note": note}, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())
        moved.append(target)
    return moved


def _merge_checkpoints(reader: ArchiveReader, directory: Path, config: GatewayConfig) -> int:
    """The archive's checkpoint directory into the target's: checkpoint files are merged note
    by note (the target's lines stay first), other files written where absent."""
    count = 0
    written: list[Path] = []
    for name, relative, mode in reader.part_members("checkpoints"):
        target = directory / relative
        _make_dirs(target.parent, _DIR_MODES["checkpoints"], written)
        data = reader.read(name)
        if relative.startswith(FILE_PREFIX) and relative.endswith(FILE_SUFFIX) and "/" not in (
            relative
        ):
            have = set(read_file_notes(target)) if target.exists() else set()
            lines = [
                line for line in data.decode("utf-8", "replace").split("\n")
                if line and _note_of(line) not in have
            ]
            if lines:
                with open(target, "a", encoding="utf-8") as out:
                    out.write("".join(line + "\n" for line in lines))
                    out.flush()
                    os.fsync(out.fileno())
                count += 1
        elif not target.exists():
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode & 0o777)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            count += 1
    return count


def _note_of(line: str) -> str | None:
    try:
        note = json.loads(line)["note"]
    except (ValueError, KeyError, TypeError):
        return None
    return note if isinstance(note, str) else None


def _restored_event(
    manifest: dict[str, Any], summary: RestoreSummary, options: RestoreOptions,
    reason_hmac: str,
) -> AuditEvent:
    from gateway.broker.caller import Principal, TraceContext
    from gateway.broker.ids import random_hex
    from gateway.broker.log_events import RecordKind, detail_of
    from gateway.broker.records import event

    log_info = manifest.get("log", {})
    detail: dict[str, str | int] = {
        "outcome": "rollback_accepted" if summary.rollback_from else "restored",
        "backup_created_at": summary.created_at,
        "backup_records": summary.log_records,
        "backup_checkpoint": int(log_info.get("checkpoint", {}).get("tree_size", 0)),
    }
    if summary.rollback_from:
        detail["known_size"] = summary.rollback_from
        detail["records_lost"] = summary.rollback_from - summary.log_records
        detail["witnesses"] = ",".join(summary.witnesses)[:256]
        detail["superseded_files"] = len(summary.superseded)
        detail["reason_hmac"] = reason_hmac
    principal = Principal(
        partner_id="zvh", partner_type="zvh", role="operator", user_ref=options.operator,
        token_id="", expires_at=0,
    )
    trace = TraceContext(
        trace_id=random_hex(16), span_id=random_hex(8), operation="ketenpoort restore"
    )
    return event(
        RecordKind.LOG_RESTORED,
        principal=principal,
        trace=trace,
        at=datetime.now(UTC),
        case_id="",
        subject_pseudonym="",
        phase="",
        policy_version="",
        detail=detail_of(**detail),
    )


def _reason_digest(config: GatewayConfig, reason: str) -> str:
    """A keyed digest of the reason, as of every free text: the log holds no text."""
    from gateway.crypto.free_text import TextKind, text_digest, text_digest_key
    from gateway.crypto.keystore import Keystore

    keystore = Keystore.open(config.keys_dir, config.key_provider)
    try:
        key = text_digest_key(keystore.pseudonym_key)
    finally:
        keystore.close()
    return text_digest(key, TextKind.ROLLBACK_REASON, reason)


def _write_receipt(
    directory: Path, manifest: dict[str, Any], summary: RestoreSummary, beyond: list[_Known]
) -> None:
    """What was restored, for the operator to keep and, after a rollback, to show the
    witnesses: public data only (sizes, the checkpoints superseded, the record's seq)."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    receipt = {
        "format": "ketenpoort-restore/1",
        "restored_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "backup_created_at": summary.created_at,
        "backup_log": manifest.get("log", {}),
        "restore_record_seq": summary.restore_record_seq,
        "rollback": None if not beyond else {
            "known_size": summary.rollback_from,
            "witnesses": summary.witnesses,
            "superseded_checkpoints": sorted({k.checkpoint.note for k in beyond}),
            "superseded_files": [p.name for p in summary.superseded],
        },
    }
    path = directory / f"restored-{stamp}.json"
    with open(path, "w", encoding="utf-8") as out:
        json.dump(receipt, out, indent=1)
        out.flush()
        os.fsync(out.fileno())


__all__ = [
    "ArchiveError",
    "DumpError",
    "RestoreFailed",
    "RestoreOptions",
    "RestoreRefused",
    "RestoreSummary",
    "RollbackRefused",
    "restore_backup",
]
