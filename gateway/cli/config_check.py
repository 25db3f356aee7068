"""`ketenpoort config check`: can this configuration serve?

Reads the file, opens the database (and sees it is at this version's schema), loads the keys,
the TLS files, the policy and the partner registry, without starting anything. Prints OK and
exits 0, or prints each problem as one line on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.server.config import ConfigError, embedded_default, load_config
from gateway.server.preflight import check_gateway, shown_url

PROG = "ketenpoort config check"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = sub.add_parser("config", help="the gateway's configuration").add_subparsers(
        title="config commands"
    )
    check = config.add_parser(
        "check",
        help="validate the configuration, open the database, load keys, policy and registry",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "--config", type=Path, help="TOML configuration (default: the embedded default)"
    )
    check.add_argument(
        "--listen",
        action="store_true",
        help="also check that the listen address is free (not when the gateway runs)",
    )
    check.set_defaults(run=run_check)


def run_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config) if args.config else embedded_default()
    except ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    problems = check_gateway(config, listen=args.listen)
    for problem in problems:
        print(f"{PROG}: {problem}", file=sys.stderr)
    if problems:
        if args.config is None:
            print(f"{PROG}: the embedded default makes development keys and a registry on the "
                  "first `ketenpoort serve`", file=sys.stderr)
        return 1
    print(
        f"OK: {args.config or 'embedded default'}: database {shown_url(config.database_url)}, "
        f"keys {config.keys_dir}, policy {config.policy_dir}, registry {config.registry_path}"
    )
    return 0
