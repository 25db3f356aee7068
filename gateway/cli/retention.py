"""`ketenpoort retention run`: shred the cases whose retention period has ended.

Prints each case it shreds (or, with --dry-run, would shred) with its closure moment, then a
summary. With the gateway's log-signing key at hand (--keys, or the configuration's key
directory) it then signs a checkpoint, so the new RETENTION records are covered at once;
without it the gateway covers them with its next checkpoint. --now sets the moment the
retention period is measured from: any moment for a dry run, at most the present for a real
one, because a shredded case cannot be restored.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from gateway.cli.gateway_state import (
    add_state_args,
    checkpoint_journal,
    config_of,
    log_signer,
    opened_database,
)
from gateway.server.config import GatewayConfig

OPERATION = "ketenpoort retention run"
# How far --now may lie ahead of this machine's clock (clocks of hosts differ a little).
MAX_CLOCK_SKEW = timedelta(minutes=5)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retention = sub.add_parser(
        "retention", help="case data at the end of its retention period"
    ).add_subparsers(title="retention commands")
    run = retention.add_parser(
        "run",
        help="shred every case closed longer ago than the retention period",
        description="Shreds the case file of every case closed retention_days_after_closure "
        "days ago or earlier: its data key, entries and participants are deleted, and one "
        "RETENTION record per case is written to the log. Exit 0 when done, 1 when the run "
        "failed (run it again: it takes up where it stopped), 2 on wrong arguments.",
    )
    add_state_args(run, config_help="gateway configuration (database, keys, days)")
    run.add_argument("--dry-run", action="store_true", help="list the cases, change nothing")
    run.add_argument(
        "--now",
        help="measure the retention period from this RFC 3339 moment instead of the present "
        "(e.g. 2027-01-01T00:00:00Z); later than the present only with --dry-run",
    )
    run.set_defaults(run=run_retention)


def run_retention(args: argparse.Namespace) -> int:
    from gateway.broker.retention import Retention, RetentionOutcome
    from gateway.store.errors import StoreError
    from gateway.store.retention import CaseShredder

    config = config_of(args)
    try:
        now = _moment(args.now, dry_run=args.dry_run)
    except ValueError as exc:
        print(f"ketenpoort retention run: {exc}", file=sys.stderr)
        return 2
    retention_days = config.retention_days_after_closure
    verb = "would shred" if args.dry_run else "shredded"

    def show(outcome: RetentionOutcome) -> None:
        record = f"  log record {outcome.log_seq}" if outcome.log_seq else ""
        print(
            f"{verb} {outcome.case_id}  closed {_text(outcome.closed_at)}  "
            f"entries {outcome.entries}{record}",
            flush=True,
        )

    try:
        with opened_database(config) as engine:
            retention = Retention(
                CaseShredder(engine),
                retention_days=retention_days,
                declined_retention_days=config.declined_retention_days,
                operation=OPERATION,
            )
            report = retention.run(now, dry_run=args.dry_run, on_case=show)
    except StoreError as exc:
        print(f"ketenpoort retention run failed: {exc}; run it again", file=sys.stderr)
        return 1
    period = f"closed on or before {_text(report.cutoff)}: {retention_days} days after closure"
    if args.dry_run:
        print(f"dry run: {_cases(len(report.cases))} would be shredded ({period}); nothing changed")
        return 0
    print(f"{_cases(len(report.cases))} shredded ({period})")
    if report.passed_over:
        print(f"{_cases(report.passed_over)} passed over: shredded by another gateway, or reopened")
    if report.wal_cleared is False:
        print(
            "note: the SQLite write-ahead log is still in use; the shredded cases' zeroed pages "
            "reach the database file at its next checkpoint",
            file=sys.stderr,
        )
    if report.cases:
        _sign_checkpoint(config)
    return 0


def _moment(text: str | None, *, dry_run: bool) -> datetime:
    present = datetime.now(UTC)
    if text is None:
        return present
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--now {text!r} is not an RFC 3339 moment") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("--now needs a time zone (Z or an offset such as +01:00)")
    if not dry_run and moment > present + MAX_CLOCK_SKEW:
        raise ValueError(
            "--now lies in the future: shredding cannot be undone, so a real run measures "
            "from the present or an earlier moment (use --dry-run to look ahead)"
        )
    return moment.astimezone(UTC)


def _sign_checkpoint(config: GatewayConfig) -> None:
    """Cover the new records with a signed checkpoint, when the signing key is at hand."""
    from gateway.crypto.errors import CryptoError
    from gateway.store.audit_log import AuditLog
    from gateway.store.errors import StoreError

    later = "the records are chained; the gateway signs the checkpoint that covers them"
    try:
        signer = log_signer(config)
        if signer is None:
            print(f"no log-signing key in {config.keys_dir}: {later}", file=sys.stderr)
            return
        with opened_database(config) as engine:
            log = AuditLog(engine, signer=signer, on_checkpoint=checkpoint_journal(config))
            checkpoint = log.checkpoint_now()
    except (CryptoError, StoreError) as exc:
        print(f"no checkpoint signed ({exc}): {later}", file=sys.stderr)
        return
    print(f"log checkpoint signed at tree size {checkpoint.tree_size}")


def _cases(n: int) -> str:
    return "1 case" if n == 1 else f"{n} cases"


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
