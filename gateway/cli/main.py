"""The `ketenpoort` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.cli import (
    audit_log,
    audit_report,
    audit_review,
    config_check,
    db_schema,
    keys_rewrap,
    partner_admin,
)
from gateway.cli import retention as retention_cli
from gateway.server.config import (
    ConfigError,
    GatewayConfig,
    embedded_default,
    load_config,
    shipped_policy_dir,
)
from gateway.server.preflight import StartupRefused
from gateway.store.migrations import SchemaMismatch

# 128 + SIGPIPE: what a shell reports for a command whose reader went away.
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    words = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(partner_admin.thumbprint_values_joined(words))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        status = int(args.run(args))
        # Flush here, not at exit, so that a reader gone away is seen below.
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # The reader closed the pipe (`... | head -1`): stop quietly, as shell tools do, and
        # point stdout at devnull so the flush at exit cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ConfigError as exc:
        print(f"ketenpoort: {exc}", file=sys.stderr)
        return 2
    except StartupRefused as exc:
        # The database, keys, policy or address a readable configuration names (preflight).
        print(f"ketenpoort: {exc}", file=sys.stderr)
        return 1
    except SchemaMismatch as exc:
        # The database is at another schema revision (ketenpoort db upgrade, docs/upgrading.md).
        print(f"ketenpoort: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ketenpoort", description=__doc__)
    sub = p.add_subparsers(title="commands")

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", type=Path, help="TOML configuration (default: embedded default)")
    serve.add_argument("--listen", help="host:port to listen on (overrides the configuration)")
    serve.add_argument(
        "--metrics-address",
        help='host:port of the Prometheus endpoint, "" for off (overrides the configuration)',
    )
    serve.add_argument(
        "--metrics-port", type=int, help="deprecated: port of the Prometheus endpoint, 0 for off"
    )
    serve.set_defaults(run=_serve)

    demo = sub.add_parser(
        "demo",
        help="play three ZVH cases (Code Rood, Drang en dwang, Mensenhandel) through a "
        "gateway with sample partner systems, checking every view against the policy",
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        help="where the demo keeps its keys, database and the partners' source runtime files "
        "(default: a fresh temporary directory)",
    )
    demo.set_defaults(run=_demo)

    keys = sub.add_parser("keys", help="key material").add_subparsers(title="keys commands")
    init = keys.add_parser("init", help="create development CA, certificates and keys in DIR")
    init.add_argument("dir", type=Path)
    init.add_argument(
        "--policies",
        type=Path,
        default=shipped_policy_dir(),
        help="policy directory naming the partners (default: shipped policies)",
    )
    init.add_argument("--overwrite", action="store_true", help="replace existing keys")
    init.set_defaults(run=_keys_init)
    pins = keys.add_parser(
        "pins", help="print the key pins to write under each partner's `keys:` in partners.yaml"
    )
    pins.add_argument("dir", type=Path, help="key directory holding partners/<id>/")
    pins.add_argument("partners", nargs="*", help="partner ids (default: every partner of "
                      "the policy)")
    pins.add_argument(
        "--policies",
        type=Path,
        default=shipped_policy_dir(),
        help="policy directory naming the partners (default: shipped policies)",
    )
    pins.set_defaults(run=_keys_pins)
    from gateway.cli import keys_admin

    keys_admin.add_parsers(keys)
    keys_rewrap.add_parser(keys)

    audit = sub.add_parser("audit", help="the accountability log").add_subparsers(
        title="audit commands"
    )
    audit_log.add_parsers(audit)
    audit_review.add_parsers(audit)
    audit_report.add_parser(audit)

    _policy_parsers(sub)
    retention_cli.add_parser(sub)
    partner_admin.add_parser(sub)
    db_schema.add_parser(sub)
    from gateway.cli import backup_cli

    backup_cli.add_parsers(sub)
    config_check.add_parser(sub)
    return p


def _policy_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    policy = sub.add_parser("policy", help="policy files").add_subparsers(title="policy commands")
    check = policy.add_parser(
        "check",
        help="validate and compile a policy directory",
        description="List every problem as file:line:column: message, with a hint; "
        "exit 1 on errors, 0 when only warnings remain.",
    )
    _policy_dir_arg(check)
    check.set_defaults(run=_policy_check)
    ptest = policy.add_parser("test", help="run the policy tests in DIR/tests")
    _policy_dir_arg(ptest)
    ptest.set_defaults(run=_policy_test)

    explain = policy.add_parser(
        "explain",
        help="why a partner gets what it gets, field by field",
        description="Per field: the outcome, the deciding rule with its place and reason, and "
        "the rules that lost and why. Exit 1 when no request can be made at all.",
    )
    _policy_dir_arg(explain)
    who = explain.add_mutually_exclusive_group(required=True)
    who.add_argument("--partner", help="partner id, e.g. police")
    who.add_argument("--partner-type", help="partner type id, e.g. police")
    explain.add_argument("--role", required=True, help="role the partner acts in")
    explain.add_argument("--purpose", required=True, help="purpose declared")
    explain.add_argument("--phase", required=True, help="phase the case is in")
    explain.add_argument("--field", help="explain this field only")
    explain.add_argument("--approach", default="",
                         help="approach the case is worked in (default: the default approach)")
    explain.add_argument("--person-role", default="",
                         help="role in the case of the person the fields are about "
                              "(default: case level, no person-specific rule applies)")
    explain.set_defaults(run=_policy_explain)

    matrix = policy.add_parser(
        "matrix",
        help="table of outcomes per field and partner type, for one purpose and phase",
        description="Rows: fields by category; columns: partner types of the purpose; cells: "
        "D disclose, M:transform mask, W withhold, — not applicable.",
    )
    _policy_dir_arg(matrix)
    matrix.add_argument("--purpose", required=True)
    matrix.add_argument("--phase", required=True)
    matrix.add_argument("--role", help="show this role only (default: every role)")
    matrix.add_argument("--approach", default="",
                        help="show this approach (default: the policy's default approach)")
    matrix.add_argument("--person-role", default="",
                        help="show the fields about a person in this role in the case "
                             "(default: case level, no person-specific rule applies)")
    matrix.add_argument(
        "--format",
        choices=("html", "md"),
        help="html (a printable page) or md (Markdown); default: from the -o suffix, else md",
    )
    matrix.add_argument("-o", "--output", type=Path, help="write to FILE instead of stdout")
    matrix.set_defaults(run=_policy_matrix)

    diff = policy.add_parser(
        "diff",
        help="which outcomes change between two policy directories",
        description="Exit 0 when no outcome changes, 1 when some do, 2 on trouble.",
    )
    diff.add_argument("old", type=Path, help="policy directory before the change")
    diff.add_argument("new", type=Path, help="policy directory after the change")
    diff.add_argument(
        "--log",
        help="accountability log to replay under NEW: a SQLite file or a database URL "
        "(postgresql+psycopg://...)",
    )
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.set_defaults(run=_policy_diff)

    catalogue = policy.add_parser(
        "catalogue",
        help="write the field catalogue (JSON) partners check their source mappings against",
    )
    catalogue.add_argument("--policy-dir", type=Path, default=shipped_policy_dir(),
                           help="policy directory (default: the shipped policies)")
    catalogue.add_argument("--output", "-o", type=Path, help="write to FILE instead of stdout")
    catalogue.set_defaults(run=_policy_catalogue)


def _policy_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "dir",
        type=Path,
        nargs="?",
        default=shipped_policy_dir(),
        help="policy directory (default: the shipped policies)",
    )


def _config(path: Path | None) -> GatewayConfig:
    return load_config(path) if path else embedded_default()


def _serve(args: argparse.Namespace) -> int:
    from gateway.cli.serving import serve_forever

    config = _config(args.config)
    if args.listen:
        config = config.with_overrides(listen=args.listen)
    if args.metrics_address is not None:
        config = config.with_overrides(metrics_address=args.metrics_address, metrics_port=None)
    if args.metrics_port is not None:
        config = config.with_overrides(metrics_port=args.metrics_port)
    return asyncio.run(serve_forever(config, embedded=args.config is None))


def _demo(args: argparse.Namespace) -> int:
    from gateway.cli.demo import run_demo

    # The demo's output is its checks: the servers' informational lines (a request line per
    # call, readiness, pinned certificates) would bury them; warnings still show.
    logging.getLogger().setLevel(logging.WARNING)
    return asyncio.run(run_demo(args.data_dir))


def _keys_init(args: argparse.Namespace) -> int:
    from gateway.crypto.devkeys import init_dev_keys
    from gateway.crypto.errors import DevKeysError
    from gateway.policyfiles import load_policy_dir

    partners = sorted(load_policy_dir(args.policies).partners)
    try:
        paths = init_dev_keys(args.dir, partners, overwrite=args.overwrite)
    except DevKeysError as exc:
        print(f"ketenpoort keys init: {exc}", file=sys.stderr)
        return 1
    print(f"development keys for gateway and partners {', '.join(partners)} in {paths.root}")
    print("these are for development only: never use them in production, never commit them")
    return 0


def _keys_pins(args: argparse.Namespace) -> int:
    from gateway.cli.keys_pins import print_pins
    from gateway.policyfiles import load_policy_dir

    partners = args.partners or sorted(load_policy_dir(args.policies).partners)
    return print_pins(args.dir, partners)


def _policy_check(args: argparse.Namespace) -> int:
    from gateway.cli.policy_check import run_check

    return run_check(args.dir)


def _policy_test(args: argparse.Namespace) -> int:
    from gateway.cli.policy_check import run_test

    return run_test(args.dir)


def _policy_explain(args: argparse.Namespace) -> int:
    from gateway.cli.policy_explain import ExplainQuery, run_explain

    query = ExplainQuery(
        args.partner, args.partner_type, args.role, args.purpose, args.phase, args.field,
        args.approach, args.person_role,
    )
    return run_explain(args.dir, query)


def _policy_matrix(args: argparse.Namespace) -> int:
    from gateway.cli.policy_matrix import run_matrix

    fmt = args.format
    if fmt is None:
        suffix = args.output.suffix.lower() if args.output else ""
        fmt = "html" if suffix in (".html", ".htm") else "md"
    return run_matrix(args.dir, args.purpose, args.phase, args.role, fmt, args.output,
                      args.approach, args.person_role)


def _policy_catalogue(args: argparse.Namespace) -> int:
    from gateway.cli.policy_catalogue import run_catalogue

    return run_catalogue(args.policy_dir, args.output)


def _policy_diff(args: argparse.Namespace) -> int:
    from gateway.cli.policy_diff import run_diff

    return run_diff(args.old, args.new, args.log, args.format)


if __name__ == "__main__":
    sys.exit(main())
