"""What the commands working on a gateway's state share: where its database, keys and policy
are (a configuration file or the embedded default, with overrides), and opening the database.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.server.config import GatewayConfig, embedded_default, load_config

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gateway.store.checkpoints import CheckpointSigner


def add_state_args(
    p: argparse.ArgumentParser,
    *,
    config_help: str = "gateway configuration naming database and keys",
    policy: bool = False,
) -> None:
    p.add_argument("--config", type=Path, help=config_help)
    p.add_argument(
        "--db", "--database", dest="db", help="database URL (overrides the configuration)"
    )
    p.add_argument("--keys", type=Path, help="key directory (overrides the configuration)")
    if policy:
        p.add_argument(
            "--policy", type=Path, help="policy directory (overrides the configuration)"
        )


def config_of(args: argparse.Namespace) -> GatewayConfig:
    config = load_config(args.config) if args.config else embedded_default()
    if args.db:
        config = config.with_overrides(database_url=args.db)
    if args.keys:
        config = config.with_overrides(keys_dir=args.keys)
    if getattr(args, "policy", None):
        config = config.with_overrides(policy_dir=args.policy)
    return config


def log_signer(config: GatewayConfig) -> CheckpointSigner | None:
    """The log's checkpoint signer when the log-signing key is in the key directory."""
    from gateway.crypto._pem import load_ed25519_private_key
    from gateway.crypto.layout import GatewayKeyPaths
    from gateway.store.checkpoints import CheckpointSigner

    key_file = GatewayKeyPaths.under(config.keys_dir).signing_key
    if not key_file.exists():
        return None
    return CheckpointSigner(load_ed25519_private_key(key_file), config.log_origin)


@contextmanager
def opened_database(config: GatewayConfig) -> Iterator[Engine]:
    """The configured database with its schema in place; disposed of on leaving."""
    from gateway.store.db import create_engine_for, init_schema

    engine = create_engine_for(config.database_url)
    try:
        init_schema(engine)
        yield engine
    finally:
        engine.dispose()
