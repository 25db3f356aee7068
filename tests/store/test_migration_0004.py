"""Revision 0004 (meetings and plan) brings a database of the revision before to the tables
gateway/store/tables.py defines, on SQLite and PostgreSQL, and its downgrade removes them.

Run on the revision's own functions through Alembic's operations, on a schema made from the
current tables without what 0004 adds: the chain of revisions is tested where it is built."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import Column, MetaData, String, inspect

from gateway.store import tables
from gateway.store.db import create_engine_for

alembic = pytest.importorskip("alembic")
from alembic.autogenerate import compare_metadata  # noqa: E402
from alembic.migration import MigrationContext  # noqa: E402
from alembic.operations import Operations  # noqa: E402

REVISION = (
    Path(tables.__file__).parent / "migrations" / "versions" / "0004_meetings_and_plan.py"
)
NEW_TABLES = ("case_meetings", "case_meeting_partners", "plan_actions")


def _revision() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rev_0004", REVISION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _before() -> MetaData:
    """The schema as revision 0003 leaves it, without the closure category (0004 adds it
    when 0003 did not)."""
    before = MetaData()
    for table in tables.metadata.sorted_tables:
        if table.name in NEW_TABLES:
            continue
        copy = table.to_metadata(before)
        if table.name == "cases":
            copy._columns.remove(copy.c.closure_category)  # type: ignore[attr-defined]
    return before


@pytest.mark.parametrize("closure_category_exists", [False, True])
def test_upgrade_reaches_the_tables_and_downgrade_leaves_them(
    db_url: str, closure_category_exists: bool
) -> None:
    engine = create_engine_for(db_url)
    _before().create_all(engine)
    revision = _revision()
    assert revision.down_revision == "0003_regie_and_work_surface"
    with engine.begin() as conn:
        if closure_category_exists:
            Operations(MigrationContext.configure(conn)).add_column(
                "cases", Column("closure_category", String(), nullable=True)
            )
        ctx = MigrationContext.configure(conn, opts={"render_as_batch": True})
        with Operations.context(ctx):
            revision.upgrade()
        diff = [
            d for d in compare_metadata(MigrationContext.configure(conn), tables.metadata)
            if not _type_only(d)
        ]
    assert diff == []
    with engine.begin() as conn:
        ctx = MigrationContext.configure(conn)
        with Operations.context(ctx):
            revision.downgrade()
    names = set(inspect(engine).get_table_names())
    assert not names & set(NEW_TABLES) and "cases" in names
    engine.dispose()


def _type_only(diff: object) -> bool:
    # Nested diffs of column details (server defaults rendered per dialect, timestamp types)
    # are lists of tuples; what matters is that every table, column and index is there.
    return isinstance(diff, list)
