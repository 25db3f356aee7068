"""What the commands working on a gateway's state share: where its database, keys and policy
are (a configuration file or the embedded default, with overrides), and opening the database.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.server.config import GatewayConfig, embedded_default, load_config

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gateway.store.checkpoints import Checkpoint, CheckpointSigner


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
    """The log's checkpoint signer with the current log-signing key, from the key directory or
    the token the configuration names; None when there is no log-signing key yet."""
    from gateway.crypto.errors import NoKeyError
    from gateway.crypto.provider import KeyKind
    from gateway.crypto.provider_settings import open_provider
    from gateway.store.checkpoints import CheckpointSigner

    provider = open_provider(config.keys_dir, config.key_provider, KeyKind.SIGNING)
    try:
        current = provider.signing_keys().current
    except NoKeyError:
        provider.close()
        return None
    # The provider stays open for the signer's (the command's) lifetime.
    return CheckpointSigner(current, config.log_origin)


def checkpoint_journal(config: GatewayConfig) -> Callable[[Checkpoint], object]:
    """What a command that signs checkpoints does with each one before printing or using it:
    append it to this host's checkpoint file, as the gateway does with its own."""
    from gateway.store.checkpoint_file import CheckpointFile

    file = CheckpointFile(config.checkpoints_path, config.replica_id or None)
    return lambda checkpoint: file.append(checkpoint.note)


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
