"""``ketenpoort backup``: everything a gateway needs to come back, in one archive.

What must survive: the database (a logical dump of every table from one read transaction,
gateway.ops.db_dump, values as stored, so still encrypted at rest), the key directory (with a
PKCS#11 token only what the directory holds, the public halves and the file-kept keys, plus
the token's settings and key references in the manifest: token keys are not extractable and
are never exported), the partner registry, the policy directory and the checkpoint
directory (checkpoint files, cosigned notes, a standing log alarm).

The order is what keeps the parts consistent while gateways keep serving:

1. the checkpoint files first. A checkpoint is appended to them only after its transaction
   committed, so every checkpoint copied is covered by the database dump taken after it: the
   restored log is never smaller than a checkpoint in its own backup;
2. the key directory, registry and policy;
3. the database, in one read transaction;
4. the key directory is read again: a key rotated or retired meanwhile could leave a data key
   in the dump that no key in the archive opens, so the backup fails and says to run it again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

from gateway.crypto.provider_settings import ProviderType
from gateway.ops.archive import FORMAT, ArchiveError, ArchiveWriter
from gateway.ops.db_dump import Dump, DumpError, dump_database
from gateway.server.config import GatewayConfig
from gateway.store.db import create_engine_for

# Kubernetes mounts secrets as ..data symlinks and ..<time> directories: read through the
# visible names only. Temporary files of an alarm being written are not state.
_SKIPPED_PREFIXES = ("..", ".LOG-ALARM.")


class BackupError(Exception):
    """The backup cannot be made (one line, no values)."""


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    tables: int
    rows: int
    files: int
    log_records: int
    checkpoint_size: int
    witnessed_size: int
    foreign_tables: tuple[str, ...]


def part_directories(config: GatewayConfig) -> dict[str, Path]:
    """The directories a backup holds, by part name (gateway.ops.archive.PARTS)."""
    return {
        "checkpoints": config.checkpoints_path,
        "keys": config.keys_dir,
        "registry": config.registry_path,
        "policy": config.policy_dir,
    }


def make_backup(config: GatewayConfig, output: Path) -> BackupSummary:
    """Write the archive to ``output`` (which must not exist yet), mode 0600."""
    if output.exists():
        raise BackupError(f"{output} exists already; a backup never overwrites a file")
    if not output.parent.is_dir():
        raise BackupError(f"directory {output.parent} does not exist")
    parts = part_directories(config)
    # Written under a temporary name beside the output, renamed when complete: a backup cut
    # short never looks like a finished one.
    partial = output.with_name(f".{output.name}.partial-{os.getpid()}")
    scratch = Path(tempfile.mkdtemp(prefix=".ketenpoort-backup-", dir=output.parent))
    writer = ArchiveWriter(partial)
    try:
        files = 0
        present: dict[str, bool] = {}
        key_hashes: dict[Path, str] = {}
        for part in ("checkpoints", "keys", "registry", "policy"):
            directory = parts[part]
            present[part] = directory.is_dir()
            for source, relative in _files_of(directory):
                member = writer.add_file(f"files/{part}/{relative}", source, _mode(source))
                files += 1
                if part == "keys":
                    key_hashes[source] = member.sha256
        engine = create_engine_for(config.database_url)
        try:
            dump = dump_database(engine, scratch)
        finally:
            engine.dispose()
        _check_keys_unchanged(parts["keys"], key_hashes)
        for table, path in dump.files.items():
            writer.add_file(f"db/{table}.jsonl.gz", path)
        writer.finish(_manifest(config, dump, present))
        os.replace(partial, output)
        _fsync_directory(output.parent)
    except BaseException:
        writer.abandon()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return BackupSummary(
        output,
        len(dump.files),
        sum(dump.rows.values()),
        files,
        dump.log.records,
        dump.log.checkpoint_size,
        dump.log.witnessed_size,
        dump.foreign_tables,
    )


def _files_of(directory: Path) -> Iterator[tuple[Path, str]]:
    """Regular files under ``directory`` (symbolic links to files read through), sorted."""
    if not directory.is_dir():
        return
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith(_SKIPPED_PREFIXES))
        for name in sorted(names):
            if name.startswith(_SKIPPED_PREFIXES):
                continue
            path = Path(root) / name
            if path.is_file():
                yield path, path.relative_to(directory).as_posix()


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _check_keys_unchanged(directory: Path, hashes: dict[Path, str]) -> None:
    now = {path: _sha256(path) for path, _ in _files_of(directory)}
    if now != hashes:
        raise BackupError(
            "the key directory changed while the backup ran (a key rotated or retired?): "
            "nothing was written; run the backup again"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest(config: GatewayConfig, dump: Dump, present: dict[str, bool]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "ketenpoort_version": _version(),
        "schema_revision": dump.revision,
        "database": {
            "dialect": dump.dialect,
            "tables": {name: {"rows": rows} for name, rows in dump.rows.items()},
            "left_out_tables": list(dump.foreign_tables),
        },
        "log": {"origin": config.log_origin, **dump.log.as_json()},
        "parts": {part: {"present": found} for part, found in present.items()},
        "key_provider": key_provider_references(config),
        "secret": "holds the gateway's private keys: keep it as the keys themselves",
    }


def key_provider_references(config: GatewayConfig) -> dict[str, Any]:
    """Where the keys the archive does not hold live: a PKCS#11 token's settings (never the
    PIN) and which kinds it keeps; the key ids are in the key directory's public files."""
    settings = config.key_provider
    if settings.type is not ProviderType.PKCS11 or settings.pkcs11 is None:
        return {"type": ProviderType.FILE.value}
    token = settings.pkcs11
    return {
        "type": ProviderType.PKCS11.value,
        "module": str(token.module),
        "token_label": token.token_label,
        "namespace": token.namespace,
        "pin_env": token.pin_env,
        "pin_file": str(token.pin_file) if token.pin_file else None,
        "token_kinds": sorted(kind.value for kind in settings.token_kinds),
        "labels": [f"{token.namespace}/{kind.value}/<key id>" for kind in sorted(
            settings.token_kinds, key=lambda k: k.value)],
    }


def _version() -> str:
    try:
        return package_metadata.version("ketenpoort")
    except package_metadata.PackageNotFoundError:
        return "unknown"


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "ArchiveError",
    "BackupError",
    "BackupSummary",
    "DumpError",
    "make_backup",
    "part_directories",
]
