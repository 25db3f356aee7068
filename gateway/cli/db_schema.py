"""`ketenpoort db upgrade` and `ketenpoort db status`: the database schema's revision.

A new release may change the schema. The gateway does not upgrade a database on start: it
refuses one at another revision, naming the pending revisions. The operator backs the
database up and runs `ketenpoort db upgrade` once (with several replicas: once, from one
host, with every replica stopped), then starts the new version everywhere
(docs/upgrading.md).
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.engine import make_url

from gateway.cli.gateway_state import config_of
from gateway.store.errors import StoreError

# `db status` exits with this when the database is not at this code's revision.
EXIT_NOT_CURRENT = 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="the database schema").add_subparsers(title="db commands")
    upgrade = db.add_parser(
        "upgrade",
        help="bring the database schema to this version's revision (back it up first)",
        description="Runs the pending schema revisions in one transaction and prints the "
        "revision before and after. A database made by release v0.1.0 is recognised and "
        "upgraded in place; an empty one is created. Exit 1 when it cannot be upgraded.",
    )
    _args(upgrade)
    upgrade.set_defaults(run=run_upgrade)
    status = db.add_parser(
        "status",
        help="the database's schema revision and the revisions still to run",
        description=f"Exit 0 when the database is at this version's revision, "
        f"{EXIT_NOT_CURRENT} when it needs `ketenpoort db upgrade` or was upgraded by a newer "
        "release, 2 when it cannot be read.",
    )
    _args(status)
    status.set_defaults(run=run_status)


def _args(p: argparse.ArgumentParser) -> None:
    from pathlib import Path

    p.add_argument("--config", type=Path, help="gateway configuration naming the database")
    p.add_argument(
        "--db", "--database", dest="db", help="database URL (overrides the configuration)"
    )
    # config_of reads these; the schema commands need no keys.
    p.set_defaults(keys=None)


def run_upgrade(args: argparse.Namespace) -> int:
    from gateway.store.db import create_engine_for, upgrade_schema
    from gateway.store.migrations import SchemaMismatch

    url = config_of(args).database_url
    try:
        engine = create_engine_for(url)
    except ValueError as exc:
        print(f"ketenpoort db upgrade: {exc}", file=sys.stderr)
        return 1
    try:
        done = upgrade_schema(engine)
    except SchemaMismatch as exc:
        print(f"ketenpoort db upgrade: {exc}", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(f"ketenpoort db upgrade: {_failure(exc)}; nothing changed", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    where = _shown(url)
    if done.from_revision is None:
        print(f"{where}: new database created at revision {done.to_revision}")
    elif not done.ran:
        print(f"{where}: at revision {done.to_revision}, the newest; nothing to do")
    else:
        before = done.from_revision + (" (release v0.1.0)" if done.was_legacy else "")
        print(f"{where}: upgraded from revision {before} to {done.to_revision}")
        for revision in done.ran:
            print(f"  ran {revision}: {_summary(revision)}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from gateway.store.db import create_engine_for, schema_status
    from gateway.store.migrations import UPGRADE_COMMAND, SchemaMismatch, refusal

    url = config_of(args).database_url
    try:
        engine = create_engine_for(url)
    except ValueError as exc:
        print(f"ketenpoort db status: {exc}", file=sys.stderr)
        return 2
    try:
        status = schema_status(engine)
    except SchemaMismatch as exc:
        print(f"ketenpoort db status: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"ketenpoort db status: {_failure(exc)}", file=sys.stderr)
        return 2
    finally:
        # Also when the database cannot be read: a pooled connection left open would be
        # closed only by the garbage collector.
        engine.dispose()
    print(f"database  {_shown(url)}")
    if status.empty:
        print(f"revision  none (empty database; the gateway creates it at {status.head})")
        return 0
    legacy = " (release v0.1.0, from before migrations)" if status.legacy else ""
    print(f"revision  {status.current}{legacy}")
    print(f"newest    {status.head}")
    if status.unknown:
        print(refusal(status))
        return EXIT_NOT_CURRENT
    if not status.pending:
        print("pending   none: the database is up to date")
        return 0
    for revision in status.pending:
        print(f"pending   {revision}: {_summary(revision)}")
    print(f"back the database up, then run: {UPGRADE_COMMAND}")
    return EXIT_NOT_CURRENT


def _summary(revision: str) -> str:
    from gateway.store.migrations import script_directory

    script = script_directory().get_revision(revision)
    doc = (script.doc if script is not None else "") or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _failure(exc: StoreError) -> str:
    """The error in one line: what failed and the driver's first line (statement parameters
    are never rendered: the engines hide them)."""
    cause = exc.__cause__
    if cause is None:
        return str(exc)
    first = (str(getattr(cause, "orig", None) or cause).strip().splitlines() or [""])[0]
    return f"{exc}: {first}" if first else str(exc)
