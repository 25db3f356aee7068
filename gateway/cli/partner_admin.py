"""``ketenpoort partner list|show|add|rotate|revoke``: onboarding partners without code.

The commands edit the registry files (atomically; a change the gateway would not accept is
never written). A revocation is also recorded in the gateway's database when one is
configured: every replica then refuses the partner, certificate or key from its next call,
without waiting to reload the file.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from gateway.cli.gateway_state import add_state_args, config_of, opened_database
from gateway.crypto._pem import load_certificate, load_x25519_public_key
from gateway.crypto.errors import CryptoError
from gateway.crypto.layout import validate_partner_id
from gateway.registry.edits import (
    add_certificate,
    add_sealing_key,
    add_token_key,
    new_entry,
    revoke_certificate,
    revoke_key,
    revoke_partner,
)
from gateway.registry.entries import (
    KeyStatus,
    RegistryEntry,
    RegistryError,
    SealingKeyEntry,
    TokenKey,
)
from gateway.registry.files import entry_path, read_entry, read_registry, write_entry
from gateway.server.config import GatewayConfig
from gateway.store.errors import StoreError

# An x5t#S256 thumbprint: SHA-256, base64url without padding.
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")

__all__ = ["add_parser", "thumbprint_values_joined"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    partner = sub.add_parser(
        "partner", help="the partner registry: certificates, token and sealing keys"
    ).add_subparsers(title="partner commands")

    listing = partner.add_parser("list", help="list registered partners and their keys")
    _registry_args(listing)
    listing.set_defaults(run=_list)

    show = partner.add_parser("show", help="print one partner's registry entry")
    show.add_argument("partner_id")
    _registry_args(show)
    show.set_defaults(run=_show)

    add = partner.add_parser("add", help="register a new partner")
    add.add_argument("partner_id")
    add.add_argument("--certificate", type=Path, required=True,
                     help="PEM client certificate the partner's systems present")
    add.add_argument("--token-key", type=Path, required=True,
                     help="PEM public key (Ed25519 or P-256) its tokens are signed with")
    add.add_argument("--sealing-key", type=Path, required=True,
                     help="PEM X25519 public key answers are sealed to")
    _registry_args(add)
    add.set_defaults(run=_add)

    rotate = partner.add_parser(
        "rotate",
        help="add a new certificate or token key (accepted beside the old until revoked) or "
        "a new sealing key (current at once)",
    )
    rotate.add_argument("partner_id")
    what = rotate.add_mutually_exclusive_group(required=True)
    what.add_argument("--certificate", type=Path, help="PEM client certificate")
    what.add_argument("--token-key", type=Path, help="PEM token-signing public key")
    what.add_argument("--sealing-key", type=Path, help="PEM X25519 public key")
    _registry_args(rotate)
    rotate.set_defaults(run=_rotate)

    revoke = partner.add_parser(
        "revoke", help="revoke a partner, or one of its certificates or keys"
    )
    revoke.add_argument("partner_id")
    which = revoke.add_mutually_exclusive_group()
    which.add_argument("--key", metavar="KID", help="revoke this token or sealing key")
    which.add_argument("--certificate", metavar="X5T",
                       help="revoke the certificate with this x5t#S256 thumbprint")
    revoke.add_argument("--file-only", action="store_true",
                        help="do not record the revocation in the database (replicas then "
                        "refuse only after they reload the registry file)")
    _registry_args(revoke)
    revoke.set_defaults(run=_revoke)


def thumbprint_values_joined(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--certificate <x5t>`` written as ``--certificate=<x5t>`` where the
    thumbprint starts with "-".

    A thumbprint is base64url, so one in 64 begins with "-", and argparse takes such a word
    for an option: ``partner revoke --certificate -Xy...`` would fail with "expected one
    argument" for exactly the certificates whose thumbprint happens to start that way.
    Only a word of a thumbprint's exact shape is joined; anything else is left to argparse.
    """
    out: list[str] = []
    words = iter(argv)
    for word in words:
        out.append(word)
        if word != "--certificate":
            continue
        value = next(words, None)
        if value is None:
            break
        if value.startswith("-") and _THUMBPRINT.fullmatch(value):
            out[-1] = f"--certificate={value}"
        else:
            out.append(value)
    return out


def _registry_args(p: argparse.ArgumentParser) -> None:
    add_state_args(p, config_help="gateway configuration naming the registry and database")
    p.add_argument("--registry", type=Path, help="registry directory (overrides the configuration)")


def _registry_dir(args: argparse.Namespace) -> tuple[Path, GatewayConfig]:
    config = config_of(args)
    return (args.registry or config.registry_path), config


def _list(args: argparse.Namespace) -> int:
    directory, _ = _registry_dir(args)
    try:
        entries = read_registry(directory)
    except RegistryError as exc:
        print(f"ketenpoort partner list: {exc}", file=sys.stderr)
        return 1
    for entry in entries.values():
        print(_summary(entry))
    return 0


def _summary(entry: RegistryEntry) -> str:
    active_certs = sum(c.status is KeyStatus.ACTIVE for c in entry.certificates)
    active_keys = sum(k.status is KeyStatus.ACTIVE for k in entry.token_keys)
    return (
        f"{entry.partner_id}\t{entry.status.value}\tcertificates {active_certs} active"
        f"\ttoken keys {active_keys} active ({', '.join(entry.algorithms)})"
        f"\tsealing {entry.current_sealing}"
    )


def _show(args: argparse.Namespace) -> int:
    directory, _ = _registry_dir(args)
    try:
        validate_partner_id(args.partner_id)
        print(entry_path(directory, args.partner_id).read_text(encoding="utf-8"), end="")
    except (ValueError, OSError) as exc:
        print(f"ketenpoort partner show: {exc}", file=sys.stderr)
        return 1
    return 0


def _add(args: argparse.Namespace) -> int:
    directory, _ = _registry_dir(args)
    try:
        partner_id = validate_partner_id(args.partner_id)
        if entry_path(directory, partner_id).exists():
            raise RegistryError(f"partner {partner_id} is registered already; use rotate")
        entry = new_entry(
            partner_id,
            load_certificate(args.certificate),
            _token_key(args.token_key),
            SealingKeyEntry.of(load_x25519_public_key(args.sealing_key)),
        )
        path = write_entry(directory, entry)
    except (RegistryError, CryptoError, ValueError, OSError) as exc:
        print(f"ketenpoort partner add: {exc}", file=sys.stderr)
        return 1
    print(f"registered {partner_id} in {path}")
    print(_summary(entry))
    return 0


def _rotate(args: argparse.Namespace) -> int:
    directory, _ = _registry_dir(args)
    try:
        entry = read_entry(entry_path(directory, validate_partner_id(args.partner_id)))
        if args.certificate:
            entry = add_certificate(entry, load_certificate(args.certificate))
            what = "certificate added; the old one stays valid until you revoke it"
        elif args.token_key:
            entry = add_token_key(entry, _token_key(args.token_key))
            what = "token key added; the old one stays valid until you revoke it"
        else:
            entry = add_sealing_key(
                entry, SealingKeyEntry.of(load_x25519_public_key(args.sealing_key))
            )
            what = f"answers are sealed to {entry.current_sealing} from the next call"
        write_entry(directory, entry)
    except (RegistryError, CryptoError, ValueError, OSError) as exc:
        print(f"ketenpoort partner rotate: {exc}", file=sys.stderr)
        return 1
    print(f"{entry.partner_id}: {what}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from gateway.store.token_guard import RevocationKind, record_revocation

    directory, config = _registry_dir(args)
    now = datetime.now(UTC)
    try:
        entry = read_entry(entry_path(directory, validate_partner_id(args.partner_id)))
        if args.key:
            entry, kind, subject = revoke_key(entry, args.key, now), RevocationKind.KEY, args.key
        elif args.certificate:
            entry = revoke_certificate(entry, args.certificate, now)
            kind, subject = RevocationKind.CERTIFICATE, args.certificate
        else:
            entry = revoke_partner(entry, now)
            kind, subject = RevocationKind.PARTNER, entry.partner_id
        write_entry(directory, entry)
    except (RegistryError, ValueError, OSError) as exc:
        print(f"ketenpoort partner revoke: {exc}", file=sys.stderr)
        return 1
    print(f"{entry.partner_id}: {kind.value} {subject} revoked in {directory}")
    if args.file_only:
        print("not recorded in the database: gateways refuse it once they reload the registry")
        return 0
    try:
        with opened_database(config) as engine:
            record_revocation(engine, entry.partner_id, kind, subject, now)
    except (StoreError, ValueError) as exc:
        print(f"ketenpoort partner revoke: the registry file is changed, but the database "
              f"could not be told ({exc}); gateways refuse it once they reload the file",
              file=sys.stderr)
        return 2
    print("recorded in the database: every gateway refuses it from its next call")
    return 0


def _token_key(path: Path) -> TokenKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except ValueError:
        raise RegistryError(f"{path}: not a PEM public key") from None
    if isinstance(key, Ed25519PublicKey | ec.EllipticCurvePublicKey):
        return key
    raise RegistryError(f"{path}: token keys are Ed25519 or EC P-256 public keys")
