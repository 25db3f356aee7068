"""`ketenpoort audit verify | checkpoint | prove | check-proof`: the log's tamper evidence.

`verify` recomputes chain, tree and checkpoints and trusts the gateway's log-signing key from
the key directory (plus any `--public-key`), and checkpoints exported earlier (`--checkpoint`).
`checkpoint` prints the newest signed checkpoint, to keep outside the gateway. `prove` prints an
inclusion or consistency proof as JSON; `check-proof` checks one against a trusted public key
without touching the database, as anyone holding the proof and the key can.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.cli.gateway_state import (
    add_state_args,
    checkpoint_journal,
    config_of,
    log_signer,
    opened_database,
)
from gateway.store.audit_log import AuditLog, VerifyResult
from gateway.store.checkpoints import Checkpoint, CheckpointError, open_checkpoint
from gateway.store.merkle import leaf_hash, verify_consistency, verify_inclusion

INCLUSION_FORMAT = "ketenpoort-inclusion-proof/1"
CONSISTENCY_FORMAT = "ketenpoort-consistency-proof/1"


def add_parsers(audit: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = audit.add_parser(
        "verify", help="check the log's hash chain, Merkle tree and signed checkpoints"
    )
    source_args(verify)
    verify.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        help="a checkpoint note exported earlier; the log must still contain it (repeatable)",
    )
    verify.set_defaults(run=run_verify)

    checkpoint = audit.add_parser(
        "checkpoint", help="print the newest signed checkpoint (a C2SP signed note)"
    )
    source_args(checkpoint)
    checkpoint.add_argument(
        "--new", action="store_true", help="first sign one covering every record"
    )
    checkpoint.set_defaults(run=run_checkpoint)

    prove = audit.add_parser("prove", help="print an inclusion or consistency proof as JSON")
    source_args(prove)
    prove.add_argument("seq", type=int, nargs="?", help="the record to prove")
    prove.add_argument(
        "--tree-size", type=int, default=0, help="checkpoint to prove against (default: newest)"
    )
    prove.add_argument(
        "--consistency",
        nargs=2,
        type=int,
        metavar=("OLD_SIZE", "NEW_SIZE"),
        help="prove that the checkpoint at NEW_SIZE extends the one at OLD_SIZE",
    )
    prove.set_defaults(run=run_prove)

    check = audit.add_parser(
        "check-proof", help="check a proof file against a trusted log public key"
    )
    check.add_argument("proof", type=Path, help="JSON from `ketenpoort audit prove`")
    check.add_argument(
        "--public-key",
        type=Path,
        action="append",
        required=True,
        help="the gateway's log-signing public key, PEM (repeatable)",
    )
    check.set_defaults(run=run_check_proof)

    from gateway.cli import audit_alarm

    audit_alarm.add_parser(audit)


def source_args(p: argparse.ArgumentParser) -> None:
    add_state_args(p)
    p.add_argument(
        "--public-key",
        type=Path,
        action="append",
        default=[],
        help="another trusted log-signing public key, PEM, e.g. one used before a rotation",
    )


@contextmanager
def open_log(args: argparse.Namespace, *, signing: bool = False) -> Iterator[AuditLog]:
    """The log, trusting the gateway's log-signing public keys (current, earlier and retired,
    as the key directory keeps them) and any ``--public-key``.

    Only commands that may sign a checkpoint read the private key."""
    from gateway.crypto.errors import KeystoreError
    from gateway.crypto.layout import GatewayKeyPaths
    from gateway.crypto.public_exports import log_public_keys

    config = config_of(args)
    paths = GatewayKeyPaths.under(config.keys_dir)
    try:
        trusted = log_public_keys(paths)
    except KeystoreError as exc:
        raise SystemExit(f"ketenpoort audit: {exc}") from exc
    trusted += [_public_key(p) for p in args.public_key]
    signer = None
    if signing:
        signer = log_signer(config)
        if signer is None:
            raise SystemExit(f"no log-signing key in {paths.signing_dir} or {paths.signing_key}")
    with opened_database(config) as engine:
        journal = checkpoint_journal(config) if signing else None
        yield AuditLog(engine, signer=signer, trusted_keys=trusted, on_checkpoint=journal)


def _public_key(path: Path) -> Ed25519PublicKey:
    from gateway.crypto._pem import load_ed25519_public_key
    from gateway.crypto.errors import KeystoreError

    try:
        return load_ed25519_public_key(path)
    except KeystoreError as exc:
        raise SystemExit(f"ketenpoort audit: {exc}") from exc

def run_verify(args: argparse.Namespace) -> int:
    from gateway.cli.log_outside import checkpoint_notes, witness_keys
    from gateway.store.log_alarm import LogAlarm

    config = config_of(args)
    outside = checkpoint_notes(config)
    notes = outside.notes + [p.read_text(encoding="utf-8") for p in args.checkpoint]
    with open_log(args) as log:
        if not log.trusted_keys:
            print(
                "no log-signing public key found (--keys, --public-key): checkpoint roots are "
                "compared, their signatures are NOT checked",
                file=sys.stderr,
            )
        result = verify_everywhere(log, notes, outside.directory)
    status = _report(result)
    if status == 0:
        _report_witnesses(result, witness_keys(config))
    alarm = LogAlarm(outside.directory).current()
    if alarm is not None:
        print(
            f"the gateway's log alarm stands ({alarm.describe()}): it signs no checkpoint until "
            "`ketenpoort audit acknowledge`",
            file=sys.stderr,
        )
    return status


def verify_everywhere(log: AuditLog, notes: list[str], directory: Path) -> VerifyResult:
    """The log against its own checkpoints and every one kept outside: in ``directory``'s
    checkpoint files, exported, or cosigned by witnesses. A log with records must have one."""
    return log.verify(
        external=notes,
        require_checkpoint=True,
        external_source=f"kept outside the database (checkpoint files in {directory})",
    )


def _report_witnesses(result: VerifyResult, keys: Any) -> None:
    from gateway.cli.log_outside import newest_witnessed, witnesses_at

    newest = witnesses_at(result.cosigned_notes, result.last_checkpoint_size, keys)
    line = (
        f"witnesses: {len(newest)} cosigned the newest checkpoint "
        f"(tree size {result.last_checkpoint_size})"
    )
    if newest:
        line += f": {', '.join(newest)}"
    size, names = newest_witnessed(result.cosigned_notes, keys)
    if size and size != result.last_checkpoint_size:
        line += f"; the newest witnessed checkpoint is at tree size {size} ({', '.join(names)})"
    if not keys and result.cosigned_notes:
        line += " (no witness keys: the partner registry could not be read)"
    print(line)


def _report(result: VerifyResult) -> int:
    if result.ok and not result.signatures_checked:
        # Chain, tree and unsigned roots agree with themselves whenever someone rewrote them
        # all: without a trusted key nothing here shows the log unchanged.
        print(
            f"log does NOT verify: {result.records_checked} records are consistent, but no "
            "trusted log-signing key (--keys, --public-key) checked the signatures of its "
            f"{result.checkpoints_checked} checkpoints",
            file=sys.stderr,
        )
        return 1
    if result.ok:
        uncovered = result.records_checked - result.last_checkpoint_size
        print(
            f"log verifies: {result.records_checked} records, chain intact, "
            f"{result.checkpoints_checked} signed checkpoints match "
            f"(newest at {result.last_checkpoint_size}; {uncovered} records after it; "
            f"{result.external_checkpoints} kept only outside the database)"
        )
        return 0
    where = []
    if result.first_bad_seq is not None:
        where.append(f"first bad record seq={result.first_bad_seq}")
    if result.bad_checkpoint_size is not None:
        where.append(f"checkpoint at tree size {result.bad_checkpoint_size}")
    print(f"log does NOT verify: {', '.join(where) or 'log'}: {result.reason}", file=sys.stderr)
    return 1


def run_checkpoint(args: argparse.Namespace) -> int:
    with open_log(args, signing=args.new) as log:
        latest = log.checkpoint_now() if args.new else log.latest_checkpoint()
    if latest is None:
        print("the log has no checkpoint yet (use --new)", file=sys.stderr)
        return 1
    sys.stdout.write(latest.note)
    return 0


def run_prove(args: argparse.Namespace) -> int:
    from gateway.store.audit_proofs import ProofUnavailable

    if (args.seq is None) == (args.consistency is None):
        print("give a record seq or --consistency OLD_SIZE NEW_SIZE", file=sys.stderr)
        return 2
    try:
        with open_log(args, signing=True) as log:
            if args.consistency:
                document = consistency_document(log, *args.consistency)
            else:
                document = inclusion_document(log, args.seq, args.tree_size)
    except ProofUnavailable as exc:
        print(f"no proof: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(document, indent=2))
    return 0


def inclusion_document(log: AuditLog, seq: int, tree_size: int = 0) -> dict[str, Any]:
    proof = log.prove_inclusion(seq, tree_size)
    return {
        "format": INCLUSION_FORMAT,
        "seq": proof.seq,
        "leaf_index": proof.leaf_index,
        "tree_size": proof.tree_size,
        "record": proof.body,
        "path": [h.hex() for h in proof.path],
        "checkpoint": proof.checkpoint.note,
    }


def consistency_document(log: AuditLog, old_size: int, new_size: int) -> dict[str, Any]:
    proof = log.prove_consistency(old_size, new_size)
    return {
        "format": CONSISTENCY_FORMAT,
        "old_size": proof.old_size,
        "new_size": proof.new_size,
        "path": [h.hex() for h in proof.path],
        "old_checkpoint": proof.old_checkpoint.note,
        "new_checkpoint": proof.new_checkpoint.note,
    }


def run_check_proof(args: argparse.Namespace) -> int:
    keys = [_public_key(p) for p in args.public_key]
    try:
        document = json.loads(args.proof.read_text(encoding="utf-8"))
        message = check_document(document, keys)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"proof does NOT check: {exc}", file=sys.stderr)
        return 1
    print(message)
    return 0


def check_document(document: dict[str, Any], keys: list[Ed25519PublicKey]) -> str:
    """Check a proof document; raises ValueError (or CheckpointError) naming the fault."""
    kind = document.get("format")
    path = [bytes.fromhex(h) for h in document["path"]]
    if kind == INCLUSION_FORMAT:
        checkpoint = _checkpoint(document["checkpoint"], keys)
        index, size = int(document["leaf_index"]), int(document["tree_size"])
        if size != checkpoint.tree_size or index != int(document["seq"]) - 1:
            raise ValueError("the proof's sizes differ from its checkpoint")
        leaf = leaf_hash(str(document["record"]).encode("utf-8"))
        if not verify_inclusion(leaf, index, size, path, checkpoint.root_hash):
            raise ValueError("the record is not in the tree the checkpoint signs")
        return (
            f"proof checks: record {document['seq']} is in the log of {size} records signed "
            f"at {checkpoint.created_at.isoformat()} by {checkpoint.key_id}"
        )
    if kind == CONSISTENCY_FORMAT:
        old = _checkpoint(document["old_checkpoint"], keys)
        new = _checkpoint(document["new_checkpoint"], keys)
        if old.origin != new.origin:
            raise ValueError("the checkpoints come from different logs")
        if not verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash,
                                  path):
            raise ValueError("the newer checkpoint does not extend the older one")
        return (
            f"proof checks: the log of {new.tree_size} records extends the log of "
            f"{old.tree_size} records without changing it"
        )
    raise ValueError(f"unknown proof format {kind!r}")


def _checkpoint(note: object, keys: list[Ed25519PublicKey]) -> Checkpoint:
    if not isinstance(note, str):
        raise ValueError("checkpoint is not a note")
    try:
        return open_checkpoint(note, keys)
    except CheckpointError as exc:
        raise ValueError(f"checkpoint: {exc}") from exc

