"""`ketenpoort source ...` (and `ketenpoort-source ...`): run and check a partner's source runtime.

- ``serve --config source.toml``: serve the sealed source contract in front of the system.
- ``check --config source.toml``: check the mapping file against the gateway's catalogue;
  each problem as ``file:line:column: message``, exit 1 when there is one.
- ``test --config source.toml --bsn ...``: ask the system about one person and show, per
  field, the raw value found, the converted value and any mapping problem. It shows values:
  it is for the partner's own operator, on the partner's own machine.

Exit status: 0 fine, 1 problems found (or the system could not answer), 2 usage or
configuration errors.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from adapters.source_runtime.adapter import NotKnown, Person, SystemUnavailable
from adapters.source_runtime.catalogue import CatalogueError, load_catalogue
from adapters.source_runtime.config import ConfigError, SourceConfig, load_config
from adapters.source_runtime.mapping import MappingError, MappingFile, load_mapping

__all__ = ["main"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
PROG = "ketenpoort source"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    status: int = args.run(config, args)
    return status


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="The partner-side source runtime: serves your system's fields to the "
        "Ketenpoort gateway, sealed, as your mapping file says.",
    )
    sub = p.add_subparsers(title="commands")
    serve = sub.add_parser("serve", help="serve the source contract to the gateway")
    _config_arg(serve)
    serve.add_argument("--listen", help="host:port to listen on instead of the configured one")
    serve.set_defaults(run=_serve)
    check = sub.add_parser(
        "check", help="check the mapping file against the catalogue (file:line:column errors)"
    )
    _config_arg(check)
    check.set_defaults(run=_check)
    test = sub.add_parser(
        "test", help="ask the system about a test person; show raw and converted values"
    )
    _config_arg(test)
    test.add_argument("--bsn", default="")
    test.add_argument("--name", default="")
    test.add_argument("--dob", default="", help="date of birth as the gateway sends it")
    test.add_argument("--address", default="")
    test.add_argument("--postcode", default="")
    test.add_argument("--reference", default="", help="your own reference for the person")
    test.add_argument("--field", action="append", default=[],
                      help="ask this field only (repeatable; default: every mapped field)")
    test.add_argument("--deadline", type=float, default=10.0, help="seconds (default 10)")
    test.set_defaults(run=_test)
    return p


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", type=Path, required=True, help="the source.toml file")


def _load(config: SourceConfig) -> MappingFile | int:
    try:
        catalogue = load_catalogue(config.catalogue)
    except CatalogueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return load_mapping(config.mapping, catalogue)
    except MappingError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''} in {config.mapping}", file=sys.stderr)
        return EXIT_PROBLEMS


def _check(config: SourceConfig, _args: argparse.Namespace) -> int:
    mapping = _load(config)
    if isinstance(mapping, int):
        return mapping
    print(f"{config.mapping}: {mapping.kind} mapping of {len(mapping.fields)} fields for "
          f"partner type {mapping.partner_type}: ok")
    return EXIT_OK


def _test(config: SourceConfig, args: argparse.Namespace) -> int:
    mapping = _load(config)
    if isinstance(mapping, int):
        return mapping
    person = Person(bsn=args.bsn, name=args.name, date_of_birth=args.dob, address=args.address,
                    postcode=args.postcode, reference=args.reference)
    if not person.given():
        print(f"{PROG} test: give at least one of --bsn, --name, --dob, --address, "
              "--postcode, --reference", file=sys.stderr)
        return EXIT_USAGE
    unknown = [f for f in args.field if f not in mapping.fields]
    if unknown:
        print(f"{PROG} test: not in the mapping: {', '.join(unknown)}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_ask(config, mapping, person, args.field or list(mapping.fields),
                            args.deadline))


async def _ask(
    config: SourceConfig, mapping: MappingFile, person: Person, fields: list[str],
    deadline: float,
) -> int:
    from adapters.source_runtime.service import open_adapter

    try:
        adapter = open_adapter(mapping, config.system, config.base_dir)
    except (ValueError, OSError) as exc:
        print(f"{PROG} test: {config.path}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        try:
            known, role = await asyncio.wait_for(adapter.lookup(person, deadline_s=deadline),
                                                 deadline)
            print(f"lookup: {'known, role ' + repr(role) if known else 'not known'}")
            found = await asyncio.wait_for(
                adapter.fetch(person, fields, deadline_s=deadline, explain=True), deadline
            )
        except NotKnown:
            print("fetch: the system does not know this person")
            return EXIT_OK
        except SystemUnavailable as exc:
            print(f"the system could not answer: {exc}", file=sys.stderr)
            return EXIT_PROBLEMS
        except TimeoutError:
            print(f"the system did not answer within {deadline:g}s", file=sys.stderr)
            return EXIT_PROBLEMS
    finally:
        await adapter.close()
    rows = [("field", "raw", "value", "problem")]
    for reading in found.readings:
        rows.append((reading.field, _shown(reading.raw), _shown(reading.value), reading.problem))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row))
              .rstrip())
    problems = sum(1 for r in found.readings if r.problem and r.field in found.unavailable)
    print(f"{len(found.values)} supplied, {len(found.unavailable)} unavailable "
          f"({problems} with a mapping or system problem)")
    return EXIT_PROBLEMS if found.unavailable else EXIT_OK


def _shown(value: str | None) -> str:
    return "-" if value is None else repr(value)


def _serve(config: SourceConfig, args: argparse.Namespace) -> int:
    mapping = _load(config)
    if isinstance(mapping, int):
        return mapping
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return asyncio.run(_serve_forever(config, args.listen))


async def _serve_forever(config: SourceConfig, listen: str | None) -> int:
    from adapters.source_runtime.service import start_runtime

    try:
        running = await start_runtime(config, listen=listen)
    except (ValueError, OSError) as exc:
        print(f"{PROG} serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    host = (listen or config.listen).rpartition(":")[0]
    metrics = f"; metrics on {config.metrics_address}" if config.metrics_address else ""
    print(f"source runtime of {config.partner_id} serving on {host}:{running.port} "
          f"(mutual TLS, sealed){metrics}", flush=True)
    await stop.wait()
    # A grace period lets calls in flight finish and be answered before the system is closed.
    await running.stop(grace=5.0)
    return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
