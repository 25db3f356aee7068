"""`ketenpoort backup` and `ketenpoort restore` (gateway.ops.backup, gateway.ops.restore).

Both print counts, sizes and paths only: never a value, a key or a reason.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from gateway.cli.gateway_state import add_state_args, config_of
from gateway.store.errors import StoreError


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = sub.add_parser(
        "backup",
        help="write the database, keys, registry, policy and checkpoint files to one archive",
        description="The archive holds the gateway's private keys: it is written with mode "
        "0600; keep it as secret as the keys (encrypt it at rest). "
        "See docs/operations/backup-and-restore.md.",
    )
    add_state_args(backup)
    backup.add_argument(
        "--output", "-o", type=Path, required=True, help="the archive to write (must not exist)"
    )
    backup.set_defaults(run=run_backup)

    restore = sub.add_parser(
        "restore",
        help="restore a backup into a new, empty database and the configuration's directories",
        description="Checks the archive against its manifest first (a damaged archive "
        "restores nothing), refuses a database that is not empty and files that differ, and "
        "a backup older than a checkpoint known at the target (a rollback to the witnesses) "
        "unless --accept-rollback --reason is given. The restored log must verify.",
    )
    add_state_args(restore)
    restore.add_argument("archive", type=Path, help="the backup archive")
    restore.add_argument(
        "--witnessed",
        type=Path,
        action="append",
        default=[],
        help="a checkpoint the witnesses hold (a signed note, a checkpoint file, or a "
        "partner's witness state file); the backup must not be older (repeatable)",
    )
    restore.add_argument(
        "--accept-rollback",
        action="store_true",
        help="restore although the backup is older than a checkpoint known here; the "
        "contradicting checkpoint files are kept aside and the log records it",
    )
    restore.add_argument("--reason", default="", help="why (required with --accept-rollback)")
    restore.add_argument(
        "--operator", default="", help="a reference to the operator (never a name)"
    )
    restore.set_defaults(run=run_restore)


def run_backup(args: argparse.Namespace) -> int:
    from gateway.ops.backup import ArchiveError, BackupError, DumpError, make_backup

    config = config_of(args)
    try:
        summary = make_backup(config, args.output)
    except (BackupError, DumpError, ArchiveError) as exc:
        print(f"ketenpoort backup: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"ketenpoort backup: {exc.strerror or exc} ({exc.filename or ''})", file=sys.stderr)
        return 1
    except (SQLAlchemyError, StoreError) as exc:
        print(f"ketenpoort backup: the database cannot be read: {_first_line(exc)}",
              file=sys.stderr)
        return 1
    print(
        f"backup written to {summary.path}: {summary.tables} tables, {summary.rows} rows, "
        f"{summary.files} files; log: {summary.log_records} records, newest checkpoint at "
        f"tree size {summary.checkpoint_size}, newest witnessed {summary.witnessed_size}"
    )
    if summary.foreign_tables:
        print(
            f"left out {len(summary.foreign_tables)} table(s) that are not the gateway's: "
            f"{', '.join(summary.foreign_tables)}",
            file=sys.stderr,
        )
    print("it holds the gateway's private keys (mode 0600): keep it secret, encrypt it at rest")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    from gateway.ops.restore import (
        ArchiveError,
        DumpError,
        RestoreFailed,
        RestoreOptions,
        RestoreRefused,
        RollbackRefused,
        restore_backup,
    )

    if args.accept_rollback and not args.reason.strip():
        print("ketenpoort restore: --accept-rollback needs a --reason", file=sys.stderr)
        return 2
    config = config_of(args)
    options = RestoreOptions(
        witnessed=tuple(args.witnessed),
        accept_rollback=args.accept_rollback,
        reason=args.reason,
        operator=args.operator,
    )
    try:
        summary = restore_backup(config, args.archive, options)
    except RollbackRefused as exc:
        print(f"ketenpoort restore: refused, nothing restored: {exc}", file=sys.stderr)
        return 3
    except (RestoreRefused, ArchiveError) as exc:
        print(f"ketenpoort restore: refused, nothing restored: {exc}", file=sys.stderr)
        return 1
    except (RestoreFailed, DumpError) as exc:
        print(f"ketenpoort restore: {exc}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, StoreError) as exc:
        print(f"ketenpoort restore: the database cannot be used: {_first_line(exc)}",
              file=sys.stderr)
        return 1
    print(
        f"restored the backup of {summary.created_at}: {summary.tables} tables, {summary.rows} "
        f"rows, {summary.files} files; the log verifies ({summary.log_records} records, "
        f"{summary.checkpoints_checked} checkpoints checked); restore recorded at "
        f"seq={summary.restore_record_seq}"
    )
    if summary.rollback_from:
        who = ", ".join(summary.witnesses) or "no witness cosigned it; partners may hold it"
        print(
            f"ROLLBACK accepted: checkpoints up to tree size {summary.rollback_from} were known "
            f"({summary.rollback_from - summary.log_records} records lost; witnesses: {who}); "
            f"{len(summary.superseded)} checkpoint file(s) kept aside as superseded. Tell the "
            "witnesses' operators now: their partner systems refuse this gateway until they "
            "start their witness state afresh (docs/operations/backup-and-restore.md)"
        )
    elif summary.no_outside_evidence:
        print(
            "no checkpoint was known at the target: if this host's checkpoint files were lost, "
            "partners may have witnessed a larger log; ask them for their newest checkpoint "
            "and check with --witnessed before partners reconnect",
            file=sys.stderr,
        )
    if summary.alarm:
        print(
            f"the gateway's log alarm stands ({summary.alarm}): ketenpoort audit acknowledge",
            file=sys.stderr,
        )
    return 0


def _first_line(exc: BaseException) -> str:
    """The driver's own first line (no statement, no parameters: they are never shown)."""
    cause = getattr(exc, "orig", None) or exc.__cause__ or exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]
