"""`ketenpoort audit report`: the access report for one data subject (AVG art. 15).

Reads the log, the confidentiality holds and the policy of a gateway's database and key
directory, writes the report as JSON or as a printable HTML page, and records in the log that
a report was made (as the privacy officer, from the command line).

The BSN on a command line stays in the shell's history and shows in the process list, so
``--subject -`` reads it from standard input instead (without echo when that is a terminal):

    ketenpoort audit report --subject - --format html -o report.html < bsn.txt

A person of a case, with or without a BSN, is named by case id and person id instead:

    ketenpoort audit report --case c_... --person p_... -o report.json
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from gateway.cli.gateway_state import (
    add_state_args,
    checkpoint_journal,
    config_of,
    opened_database,
)

# A report holds personal data: the file is readable by its owner only.
OUTPUT_MODE = 0o600
CLI_USER_REF = "ketenpoort-cli"
OPERATION = "ketenpoort audit report"
PRIVACY_OFFICER_ROLE = "privacy_officer"


def add_parser(audit: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = audit.add_parser(
        "report",
        help="the access report for one data subject (AVG art. 15)",
        description="Every disclosure about the subject, without values, with inclusion "
        "proofs; disclosures under a confidentiality hold in force are left out. The report "
        "is recorded in the log. Name the subject by BSN (every case, every person with that "
        "BSN) or by --case and --person (a person of a case, also one without a BSN). Pass "
        "--subject - to read the BSN from standard input, so that it stays out of the shell "
        "history.",
    )
    named = report.add_mutually_exclusive_group(required=True)
    named.add_argument(
        "--subject",
        "--bsn",
        dest="subject",
        metavar="BSN",
        help="the subject's BSN, or - to read it from standard input (recommended)",
    )
    named.add_argument(
        "--person",
        metavar="ID",
        help="the person's id within the case given by --case (instead of a BSN)",
    )
    report.add_argument(
        "--case", metavar="ID", help="the case the --person is in (only with --person)"
    )
    report.add_argument(
        "--format",
        choices=("json", "html"),
        help="json or html (a printable page); default: from the -o suffix, else json",
    )
    report.add_argument(
        "--language",
        choices=("nl", "en"),
        default="nl",
        help="language of the report's text (default: nl)",
    )
    report.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    add_state_args(
        report, config_help="gateway configuration naming database, keys and policy", policy=True
    )
    report.set_defaults(run=run_report)


def read_subject(value: str, stdin: TextIO) -> str:
    """The BSN from the argument, or from standard input for ``-``."""
    if value != "-":
        return value
    if stdin.isatty():
        return getpass.getpass("BSN: ").strip()
    return stdin.readline().strip()


def output_format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    suffix = args.output.suffix.lower() if args.output else ""
    return "html" if suffix in (".html", ".htm") else "json"


def run_report(args: argparse.Namespace) -> int:
    from gateway.broker.caller import Principal, TraceContext
    from gateway.broker.errors import CaseNotFound, InvalidRequest
    from gateway.core import PolicyError
    from gateway.crypto.errors import KeystoreError
    from gateway.crypto.keystore import Keystore
    from gateway.policyfiles import load_policy_dir
    from gateway.reports.access_request import ReportRequest, SubjectAccessReports
    from gateway.store.audit_log import AuditLog, CheckpointSigner
    from gateway.store.holds import HoldStore
    from gateway.store.persons import PersonDirectory

    if (args.case is None) != (args.person is None):
        print("ketenpoort audit report: --case and --person go together", file=sys.stderr)
        return 2
    config = config_of(args)
    bsn = "" if args.subject is None else read_subject(args.subject, sys.stdin)
    try:
        policy = load_policy_dir(config.policy_dir)
        keystore = Keystore.open(config.keys_dir, config.key_provider)
    except (PolicyError, OSError, KeystoreError) as exc:
        print(f"ketenpoort audit report: {exc}", file=sys.stderr)
        return 2
    officer = next((p for p in policy.partners.values() if PRIVACY_OFFICER_ROLE in p.roles), None)
    principal = Principal(
        partner_id=officer.id if officer else "zvh",
        partner_type=officer.type if officer else "zvh",
        role=PRIVACY_OFFICER_ROLE,
        user_ref=CLI_USER_REF,
        token_id="",
        expires_at=0,
    )
    trace = TraceContext.from_traceparent(None, operation=OPERATION)
    request = ReportRequest(
        bsn=bsn,
        format=output_format(args),
        language=args.language,
        case_id=args.case or "",
        person_id=args.person or "",
    )
    try:
        with opened_database(config) as engine:
            log = AuditLog(
                engine,
                signer=CheckpointSigner(keystore.signing_keys().current, config.log_origin),
                trusted_keys=keystore.log_verification_keys(),
                on_checkpoint=checkpoint_journal(config),
            )
            reports = SubjectAccessReports(
                log,
                HoldStore(engine),
                lambda: policy,
                keystore.pseudonym_key,
                _utc_now,
                PersonDirectory(engine),
            )
            produced = reports.produce_sync(principal, trace, request)
    except (InvalidRequest, CaseNotFound) as exc:
        print(f"ketenpoort audit report: {exc}", file=sys.stderr)
        return 2
    _write(args.output, produced.document)
    summary = (
        f"report: {produced.disclosures_listed} disclosures listed; recorded as log record "
        f"{produced.record_seq}"
    )
    if produced.withheld_under_exception:
        summary += "; some were left out under a confidentiality hold"
    print(summary, file=sys.stderr)
    return 0


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _write(output: Path | None, document: bytes) -> None:
    if output is None:
        sys.stdout.buffer.write(document)
        sys.stdout.buffer.flush()
        return
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OUTPUT_MODE)
    with os.fdopen(fd, "wb") as out:
        # The mode above applies to a new file only; an existing one is narrowed here,
        # before the report is written into it.
        os.fchmod(fd, OUTPUT_MODE)
        out.write(document)
