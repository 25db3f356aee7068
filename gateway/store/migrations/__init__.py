"""Schema migrations: the Alembic revisions of the database, run with the gateway's own engine.

Revisions live in ``versions/``, one file each, chained by ``down_revision``; ``env.py`` runs
them on the connection it is handed (``Config.attributes["connection"]``), so no alembic.ini
is needed by anyone running the gateway. The first revision, ``0001_v0_1_0``, is the schema
exactly as release v0.1.0 created it: such a database, which has ``schema_info.version`` 3
and no ``alembic_version`` table, is recognised as being at that revision.

A new revision: copy the newest file in ``versions/``, name it ``NNNN_what``, set
``revision`` to that name and ``down_revision`` to the revision before, write
``upgrade()`` with ``op`` (``op.batch_alter_table`` where SQLite cannot ALTER), change
``gateway/store/tables.py`` to match, and run tests/store/test_store_migrations.py: it checks
that the upgraded schema equals the tables (``alembic.autogenerate.compare_metadata``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, inspect, text

from gateway.store.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config

SCRIPT_LOCATION = Path(__file__).resolve().parent
# The revision of a database made by release v0.1.0 (schema generation 3, before migrations).
BASELINE_REVISION = "0001_v0_1_0"
# What v0.1.0 wrote in schema_info.version.
LEGACY_SCHEMA_VERSION = 3
# What a migrated database holds in schema_info.version: a v0.1.0 gateway refuses such a
# database instead of half-using it. The version itself is in alembic_version.
MIGRATED_SCHEMA_VERSION = 4
# The command an operator runs to bring a database to this code's revision.
UPGRADE_COMMAND = "ketenpoort db upgrade --config <file>"

# Alembic says at INFO which dialect it found and each revision it runs, on every start (the
# revision check) too; `ketenpoort db upgrade` prints the revisions it ran itself.
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)


class SchemaMismatch(StoreError):
    """The database's schema is not the one this code works with."""


class SchemaBehind(SchemaMismatch):
    """The database is at an older revision: it needs ``ketenpoort db upgrade``."""


class SchemaAhead(SchemaMismatch):
    """The database is at a revision this code does not know (made by a newer release)."""


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database stands against the revisions this code knows."""

    # None: an empty database (no tables of ours yet).
    current: str | None
    head: str
    # Revisions still to run, oldest first; empty when current is head or unknown.
    pending: tuple[str, ...]
    # A v0.1.0 database, recognised as BASELINE_REVISION but not stamped yet.
    legacy: bool = False
    # current is a revision this code does not know.
    unknown: bool = False

    @property
    def empty(self) -> bool:
        return self.current is None

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head and not self.legacy


@functools.cache
def script_directory() -> ScriptDirectory:
    """The revisions shipped with this code (read once per process)."""
    return ScriptDirectory(str(SCRIPT_LOCATION))


def head_revision() -> str:
    head = script_directory().get_current_head()
    if head is None:  # pragma: no cover - the package ships its revisions
        raise StoreError("no schema revisions found")
    return head


def schema_status(conn: Connection) -> SchemaStatus:
    """Read the database's revision and list the revisions this code would still run."""
    head = head_revision()
    names = set(inspect(conn).get_table_names())
    if "alembic_version" in names:
        current = MigrationContext.configure(conn).get_current_revision()
        legacy = False
    elif "audit_log" in names:
        current, legacy = _legacy_revision(conn, names), True
    else:
        current, legacy = None, False
    script = script_directory()
    if current is not None and not _known(current):
        return SchemaStatus(current, head, (), legacy=legacy, unknown=True)
    pending = [r.revision for r in script.iterate_revisions(head, current)]
    return SchemaStatus(current, head, tuple(reversed(pending)), legacy=legacy)


def _known(revision: str) -> bool:
    try:
        return script_directory().get_revision(revision) is not None
    except CommandError:  # "No such revision or branch"
        return False


def _legacy_revision(conn: Connection, names: set[str]) -> str:
    """A database from before migrations: v0.1.0's is the baseline; older ones are refused."""
    version = None
    if "schema_info" in names:
        version = conn.execute(text("SELECT version FROM schema_info WHERE id = 1")).scalar()
    if version != LEGACY_SCHEMA_VERSION:
        raise SchemaMismatch(
            f"the database holds schema generation {version or 1} and no schema revision; "
            f"only release v0.1.0's generation {LEGACY_SCHEMA_VERSION} can be upgraded: export "
            "what you need (ketenpoort audit verify, report) with the version that made it and "
            "start on a new database"
        )
    return BASELINE_REVISION


def refusal(status: SchemaStatus) -> str:
    """One line telling the operator why the gateway will not use the database, and what to do."""
    if status.unknown:
        return (
            f"the database is at schema revision {status.current}, which this version of "
            f"ketenpoort does not know (it knows up to {status.head}): it was upgraded by a "
            "newer release; run that release, or restore the backup made before the upgrade"
        )
    shown = ", ".join(status.pending)
    return (
        f"the database is at schema revision {status.current}"
        + (" (release v0.1.0)" if status.legacy else "")
        + f"; this version needs {status.head}; pending: {shown}; back the database up and "
        f"run: {UPGRADE_COMMAND}"
    )


def check(status: SchemaStatus) -> None:
    """Raise unless the database is exactly at this code's head revision (or empty)."""
    if status.empty or status.up_to_date:
        return
    if status.unknown:
        raise SchemaAhead(refusal(status))
    raise SchemaBehind(refusal(status))


def _config(conn: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = conn
    return config


def stamp(conn: Connection, revision: str) -> None:
    """Record ``revision`` in alembic_version without running anything."""
    MigrationContext.configure(conn).stamp(script_directory(), revision)


def upgrade(conn: Connection, target: str = "heads") -> None:
    """Run the pending revisions up to ``target`` on ``conn``, inside its transaction."""
    # Imported here: the gateway's start needs only the revision check.
    from alembic import command

    command.upgrade(_config(conn), target)


__all__: Sequence[str] = (
    "BASELINE_REVISION",
    "SchemaAhead",
    "SchemaBehind",
    "SchemaMismatch",
    "SchemaStatus",
    "check",
    "head_revision",
    "refusal",
    "schema_status",
    "stamp",
    "upgrade",
)
