"""`ketenpoort audit acknowledge`: clear the gateway's log alarm.

A gateway whose own check of the log failed raises an alarm (a file beside its checkpoint
files, :mod:`gateway.store.log_alarm`), signs no checkpoint and reports the accountability
service NOT_SERVING until this command clears it. It does so only when the log verifies again
against everything kept outside the database, or with ``--override`` and a reason: the
operator then accepts the database's log as it is from now on; the checkpoint files that
contradict it are kept, renamed ``superseded-<time>-…``, so they no longer count but still
show what was there. Either way the clearing is a record in the log (kind
``log_alarm_cleared``, the reason as a digest: the log holds no free text).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.cli.gateway_state import config_of
from gateway.crypto.free_text import TextKind, text_digest, text_digest_key
from gateway.crypto.keystore import Keystore
from gateway.server.config import GatewayConfig
from gateway.store.checkpoint_file import checkpoint_files
from gateway.store.log_alarm import Alarm, LogAlarm

if TYPE_CHECKING:
    from gateway.broker.log_events import AuditEvent


def add_parser(audit: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from gateway.cli.audit_log import source_args

    ack = audit.add_parser(
        "acknowledge",
        help="clear the gateway's log alarm once the log verifies again (or with --override)",
    )
    source_args(ack)
    ack.add_argument(
        "--override",
        action="store_true",
        help="clear it although the log does not verify: the database's log is taken as it "
        "is; checkpoint files that contradict it are kept aside as superseded",
    )
    ack.add_argument("--reason", default="", help="why (required with --override)")
    ack.add_argument(
        "--operator", default="", help="a reference to the operator (never a name)"
    )
    ack.set_defaults(run=run_acknowledge)


def run_acknowledge(args: argparse.Namespace) -> int:
    from gateway.cli.audit_log import open_log, verify_everywhere
    from gateway.cli.log_outside import checkpoint_notes

    if args.override and not args.reason.strip():
        print("--override needs a --reason", file=sys.stderr)
        return 2
    config = config_of(args)
    outside = checkpoint_notes(config)
    alarm_file = LogAlarm(outside.directory)
    alarm = alarm_file.current()
    if alarm is None:
        print(f"no log alarm stands in {outside.directory}")
        return 0
    with open_log(args) as log:
        result = verify_everywhere(log, outside.notes, outside.directory)
        if result.ok:
            alarm_file.clear()
            log.append_sync([_cleared(alarm, "verified", args.operator, result.records_checked)])
            print(
                f"log verifies ({result.records_checked} records): the alarm "
                f"({alarm.describe()}) is cleared; checkpoint signing resumes"
            )
            return 0
        if not args.override:
            print(
                f"log does NOT verify: {result.reason}. The alarm stands; clear it anyway with "
                "--override --reason TEXT",
                file=sys.stderr,
            )
            return 1
        moved = _supersede(outside.directory)
        alarm_file.clear()
        log.append_sync(
            [
                _cleared(
                    alarm,
                    "override",
                    args.operator,
                    result.records_checked,
                    reason_digest=_reason_digest(config, args.reason),
                    superseded_files=len(moved),
                    fault_seq=result.first_bad_seq or 0,
                    fault_checkpoint=result.bad_checkpoint_size or 0,
                )
            ]
        )
    print(
        f"alarm cleared by override although the log does not verify ({result.reason}); "
        f"{len(moved)} checkpoint file(s) kept aside as superseded"
    )
    return 0


def _supersede(directory: Path) -> list[Path]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    moved = []
    for path in checkpoint_files(directory):
        target = path.with_name(f"superseded-{stamp}-{path.name}")
        path.rename(target)
        moved.append(target)
    return moved


def _cleared(
    alarm: Alarm, outcome: str, operator: str, records: int, **more: str | int
) -> AuditEvent:
    from gateway.broker.caller import Principal, TraceContext
    from gateway.broker.ids import random_hex
    from gateway.broker.log_events import RecordKind, detail_of
    from gateway.broker.records import event

    principal = Principal(
        partner_id="zvh",
        partner_type="zvh",
        role="operator",
        user_ref=operator,
        token_id="",
        expires_at=0,
    )
    trace = TraceContext(
        trace_id=random_hex(16), span_id=random_hex(8), operation="ketenpoort audit acknowledge"
    )
    return event(
        RecordKind.LOG_ALARM_CLEARED,
        principal=principal,
        trace=trace,
        at=datetime.now(UTC),
        case_id="",
        subject_pseudonym="",
        phase="",
        policy_version="",
        detail=detail_of(
            outcome=outcome,
            alarm_raised_at=alarm.raised_at,
            alarm_seq=alarm.first_bad_seq or 0,
            alarm_checkpoint=alarm.bad_checkpoint_size or 0,
            records_checked=records,
            **more,
        ),
    )


def _reason_digest(config: GatewayConfig, reason: str) -> str:
    """The keyed digest the log keeps of the override's reason (as of every free text), so
    that a guessed text cannot be confirmed from the log."""
    keystore = Keystore.open(config.keys_dir, config.key_provider)
    try:
        key = text_digest_key(keystore.pseudonym_key)
    finally:
        keystore.close()
    return text_digest(key, TextKind.ALARM_OVERRIDE_REASON, reason)
