"""The `ketenpoort` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.server.config import (
    ConfigError,
    GatewayConfig,
    embedded_default,
    load_config,
    shipped_policy_dir,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except ConfigError as exc:
        print(f"ketenpoort: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ketenpoort", description=__doc__)
    sub = p.add_subparsers(title="commands")

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", type=Path, help="TOML configuration (default: embedded default)")
    serve.add_argument("--listen", help="host:port to listen on (overrides the configuration)")
    serve.add_argument(
        "--metrics-port", type=int, help="port of the Prometheus endpoint, 0 to switch it off"
    )
    serve.set_defaults(run=_serve)

    demo = sub.add_parser(
        "demo", help="play a Code Rood case through a gateway with sample partners"
    )
    demo.add_argument(
        "--data-dir",
        type=Path,
        help="where the demo keeps its keys and database (default: a fresh temporary directory)",
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

    audit = sub.add_parser("audit", help="the accountability log").add_subparsers(
        title="audit commands"
    )
    verify = audit.add_parser("verify", help="check the log's hash chain")
    _database_args(verify)
    verify.set_defaults(run=_audit_verify)

    policy = sub.add_parser("policy", help="policy files").add_subparsers(title="policy commands")
    check = policy.add_parser("check", help="validate and compile a policy directory")
    check.add_argument("dir", type=Path, nargs="?", default=shipped_policy_dir())
    check.set_defaults(run=_policy_check)
    ptest = policy.add_parser("test", help="run the policy tests in DIR/tests")
    ptest.add_argument("dir", type=Path, nargs="?", default=shipped_policy_dir())
    ptest.set_defaults(run=_policy_test)
    return p


def _database_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="gateway configuration naming the database")
    p.add_argument("--db", help="database URL (overrides the configuration)")


def _config(path: Path | None) -> GatewayConfig:
    return load_config(path) if path else embedded_default()


def _serve(args: argparse.Namespace) -> int:
    from gateway.cli.serving import serve_forever

    config = _config(args.config)
    if args.listen:
        config = config.with_overrides(listen=args.listen)
    if args.metrics_port is not None:
        config = config.with_overrides(metrics_port=args.metrics_port or None)
    return asyncio.run(serve_forever(config, embedded=args.config is None))


def _demo(args: argparse.Namespace) -> int:
    from gateway.cli.demo import run_demo

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


def _audit_verify(args: argparse.Namespace) -> int:
    from gateway.store.audit_log import AuditLog
    from gateway.store.db import create_engine_for

    url = args.db or _config(args.config).database_url
    engine = create_engine_for(url)
    try:
        result = AuditLog(engine).verify()
    finally:
        engine.dispose()
    if result.ok:
        print(f"log verifies: {result.records_checked} records, chain intact")
        return 0
    print(
        f"log does NOT verify: first bad record seq={result.first_bad_seq}: {result.reason}",
        file=sys.stderr,
    )
    return 1


def _policy_check(args: argparse.Namespace) -> int:
    from gateway.core import PolicyError
    from gateway.policyfiles import PolicyDirectoryError, load_policy_dir

    try:
        compiled = load_policy_dir(args.dir)
    except PolicyDirectoryError as exc:
        print(f"ketenpoort policy check: {exc}", file=sys.stderr)
        return 2
    except PolicyError as exc:
        for issue in exc.issues:
            print(
                f"{args.dir / issue.file}:{issue.line}:{issue.column}: {issue.message}",
                file=sys.stderr,
            )
        print(f"{len(exc.issues)} error(s); the policy was not loaded", file=sys.stderr)
        return 1
    print(f"policy ok: {len(compiled.fields)} fields, version {compiled.version}")
    return 0


def _policy_test(args: argparse.Namespace) -> int:
    from gateway.core import PolicyError, parse_policy_tests, run_policy_tests
    from gateway.policyfiles import load_policy_dir, read_documents

    try:
        compiled = load_policy_dir(args.dir)
        cases = parse_policy_tests(read_documents(args.dir, tests=True))
    except PolicyError as exc:
        for issue in exc.issues:
            print(
                f"{args.dir / issue.file}:{issue.line}:{issue.column}: {issue.message}",
                file=sys.stderr,
            )
        return 1
    results = run_policy_tests(compiled, cases)
    failed = [r for r in results if not r.passed]
    for r in results:
        print(("PASS " if r.passed else "FAIL ") + r.name)
        if not r.passed:
            for line in r.failures:
                print(f"     {line}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
