"""`ketenpoort keys list | rotate KIND | retire KIND ID`: the gateway's own keys.

Works on the provider the configuration names for each kind (the key directory, or a PKCS#11
token) and shows ids, never key material. ``rotate`` makes a new key current; gateways sharing
the key directory or token pick it up at their next key refresh, and the older keys stay
usable. ``retire`` removes a key that is not current:

- ``signing``: its public half is kept in ``gateway/signing/retired/`` so the checkpoints it
  signed still verify (``ketenpoort audit verify --keys DIR``);
- ``hpke``: boxes still sealed to it no longer open (partners seal to the current key);
- ``kek``: refused while any live case's data key is wrapped under it (``ketenpoort keys
  rewrap`` moves them); after it, every copy of a data key it wrapped, backups included,
  stays closed.

Exit 0 on success, 1 when a retirement is refused, 2 when the keys cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.crypto.provider import KeyKind

if TYPE_CHECKING:
    from gateway.crypto.provider import KeyProvider
    from gateway.server.config import GatewayConfig

__all__ = ["add_parsers", "run_list", "run_retire", "run_rotate"]

_KINDS = [kind.value for kind in KeyKind]


def add_parsers(keys: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listing = keys.add_parser(
        "list", help="the gateway's signing, HPKE and key-encryption keys (ids, no secrets)"
    )
    _key_args(listing)
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.set_defaults(run=run_list, db=None)

    rotate = keys.add_parser(
        "rotate", help="make a new key of KIND current; older keys stay usable"
    )
    rotate.add_argument("kind", choices=_KINDS)
    _key_args(rotate)
    rotate.set_defaults(run=run_rotate, db=None)

    retire = keys.add_parser(
        "retire",
        help="remove a key that is not current (a KEK only once no data key is wrapped under it)",
    )
    retire.add_argument("kind", choices=_KINDS)
    retire.add_argument("key_id", metavar="ID")
    retire.add_argument(
        "--grace-s",
        type=float,
        default=None,
        help="refuse while the current key is younger than this: by default "
        f"{RETIRE_GRACE_S:.0f} s for hpke and kek (no replica still uses the retired key as "
        f"current), {SIGNING_RETIRE_GRACE_S:.0f} s for signing (partners fetch the signed key "
        "statement at least hourly and so learn the new signing key before the old one goes)",
    )
    _key_args(retire)
    retire.add_argument(
        "--db", "--database", dest="db", help="database URL (overrides the configuration)"
    )
    retire.set_defaults(run=run_retire)


def _key_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="gateway configuration naming keys and provider")
    p.add_argument("--keys", type=Path, help="key directory (overrides the configuration)")


def run_list(args: argparse.Namespace) -> int:
    from gateway.crypto.errors import KeystoreError

    config = _config(args)
    try:
        rows = []
        for kind in KeyKind:
            provider = _provider(config, kind)
            try:
                rows += [(info, provider.name) for info in provider.list_keys(kind)]
            finally:
                provider.close()
    except KeystoreError as exc:
        return _fail(exc)
    if args.format == "json":
        document = [
            {"kind": i.kind.value, "id": i.key_id, "current": i.current, "created": i.created,
             "provider": name}
            for i, name in rows
        ]
        print(json.dumps(document, indent=2))
        return 0
    print(f"{'kind':8} {'id':22} {'current':8} {'created':21} provider")
    for info, name in rows:
        mark = "current" if info.current else ""
        print(f"{info.kind.value:8} {info.key_id:22} {mark:8} {info.created or '-':21} {name}")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    from gateway.crypto.errors import KeystoreError

    config = _config(args)
    kind = KeyKind(args.kind)
    try:
        provider = _provider(config, kind)
        try:
            new_id = provider.rotate(kind)
        finally:
            provider.close()
    except KeystoreError as exc:
        return _fail(exc)
    print(f"new current {kind.value} key: {new_id} ({provider.name})")
    print(
        "gateways using these keys take it up at their next key refresh; older keys stay "
        "usable until retired"
    )
    if kind is KeyKind.KEK:
        print("move the data keys to it with `ketenpoort keys rewrap`, then retire the old key")
    return 0


# Three of the gateways' key rechecks (gateway.crypto.live_keystore.DEFAULT_RECHECK_S).
RETIRE_GRACE_S = 30.0
# Two of the partners' hourly fetches of the gateway's keys (adapters.gateway_keys
# DEFAULT_MAX_AGE_S): a partner that pins only the old log-signing key takes the new one from
# a statement both signed; one that has not fetched since would be refused after retirement.
SIGNING_RETIRE_GRACE_S = 7200.0


def run_retire(args: argparse.Namespace) -> int:
    from gateway.cli.gateway_state import opened_database
    from gateway.crypto.errors import KeystoreError
    from gateway.crypto.layout import GatewayKeyPaths

    config = _config(args)
    kind = KeyKind(args.kind)
    key_id = str(args.key_id)
    grace_s = _grace_s(kind) if args.grace_s is None else float(args.grace_s)
    young = _current_younger_than(config, kind, grace_s)
    if young is not None:
        print(
            f"ketenpoort keys retire: refused: the current {kind.value} key was made "
            f"{young:.0f} s ago; gateways that have not yet taken it up may still use "
            f"{key_id} as current{_partners_note(kind)}. Retry in {grace_s - young:.0f} s",
            file=sys.stderr,
        )
        return 1
    if kind is KeyKind.KEK:
        from gateway.store.rewrap import data_keys_under

        with opened_database(config) as engine:
            still = data_keys_under(engine, key_id)
        if still:
            print(
                f"ketenpoort keys retire: refused: the data keys of {still} live cases are "
                f"still wrapped under {key_id}; run `ketenpoort keys rewrap` first",
                file=sys.stderr,
            )
            return 1
    try:
        provider = _provider(config, kind)
    except KeystoreError as exc:
        return _fail(exc)
    try:
        provider.retire(kind, key_id)
    except KeystoreError as exc:
        print(f"ketenpoort keys retire: refused: {exc}", file=sys.stderr)
        return 1
    finally:
        provider.close()
    print(f"retired {kind.value} key {key_id} ({provider.name})")
    if kind is KeyKind.SIGNING:
        kept = GatewayKeyPaths.under(config.keys_dir).retired_signing_pub_file(key_id)
        print(f"its public key stays trusted for verifying the log: {kept}")
    return 0


def _grace_s(kind: KeyKind) -> float:
    return SIGNING_RETIRE_GRACE_S if kind is KeyKind.SIGNING else RETIRE_GRACE_S


def _partners_note(kind: KeyKind) -> str:
    if kind is not KeyKind.SIGNING:
        return ""
    return ", and partners that have not fetched the gateway's keys since still trust only it"


def _current_younger_than(config: GatewayConfig, kind: KeyKind, grace_s: float) -> float | None:
    """The age of the current key of ``kind`` when it is younger than ``grace_s``: every
    replica looks at its keys at least every DEFAULT_RECHECK_S, so until then one may still
    wrap or sign with the key about to be retired."""
    from datetime import UTC, datetime

    from gateway.crypto.errors import KeystoreError

    if grace_s <= 0:
        return None
    try:
        provider = _provider(config, kind)
    except KeystoreError:
        return None  # retire itself reports the problem
    try:
        infos = [i for i in provider.list_keys(kind) if i.current]
    finally:
        provider.close()
    if not infos or not infos[0].created:
        return None
    created = datetime.fromisoformat(infos[0].created.replace("Z", "+00:00"))
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    age = (datetime.now(UTC) - created).total_seconds()
    return age if age < grace_s else None


def _config(args: argparse.Namespace) -> GatewayConfig:
    from gateway.cli.gateway_state import config_of

    return config_of(args)


def _provider(config: GatewayConfig, kind: KeyKind) -> KeyProvider:
    from gateway.crypto.provider_settings import open_provider

    return open_provider(config.keys_dir, config.key_provider, kind)


def _fail(exc: Exception) -> int:
    print(f"ketenpoort keys: {exc}", file=sys.stderr)
    return 2
