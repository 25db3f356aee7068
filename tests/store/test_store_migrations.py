"""Schema migrations on SQLite and PostgreSQL: a new database, the revisions, the v0.1.0 fixture.

The revisions must arrive at exactly the tables of gateway/store/tables.py (a new database is
made from those and stamped at the head, so the two ways must agree), the baseline must be
the schema v0.1.0 made, and a v0.1.0 database must be upgraded in place with its log intact.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select, text, update

from gateway.store import migrations
from gateway.store.db import (
    SchemaAhead,
    SchemaBehind,
    SchemaMismatch,
    create_engine_for,
    init_schema,
    schema_status,
    upgrade_schema,
)
from gateway.store.migrations import (
    BASELINE_REVISION,
    MIGRATED_SCHEMA_VERSION,
    SCRIPT_LOCATION,
    head_revision,
    script_directory,
)
from gateway.store.tables import case_entries, case_persons, cases, metadata, schema_info
from tests.fixtures.v0_1_0.load import CASE_IDS, FIXTURE, load_database
from tests.fixtures.v0_1_0.schema_description import describe

VERSIONS = Path(script_directory().versions)


@pytest.fixture
def engine(db_url: str) -> Engine:
    e = create_engine_for(db_url)
    yield e  # type: ignore[misc]
    e.dispose()


def _differences(engine: Engine) -> list[object]:
    """What Alembic's autogenerate would change to reach the tables, plus server defaults
    present on one side only (autogenerate's own default comparison misreads SQLite's)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        found: list[object] = list(compare_metadata(context, metadata))
        insp = inspect(conn)
        present = set(insp.get_table_names())
        for table in (t for t in metadata.sorted_tables if t.name in present):
            reflected = {c["name"]: c.get("default") for c in insp.get_columns(table.name)}
            for column in table.columns:
                serial = column.autoincrement is True and column.primary_key
                if serial:
                    continue
                if (column.server_default is None) != (reflected.get(column.name) is None):
                    found.append(("server_default", table.name, column.name))
    return found


def test_a_new_database_is_created_at_the_head(engine: Engine) -> None:
    init_schema(engine)
    status = schema_status(engine)
    assert status.current == head_revision() and status.pending == ()
    assert status.up_to_date
    with engine.connect() as conn:
        assert conn.execute(select(schema_info.c.version)).scalar() == MIGRATED_SCHEMA_VERSION
    assert _differences(engine) == []


def test_the_revisions_from_the_baseline_arrive_at_the_tables(engine: Engine) -> None:
    first = upgrade_schema(engine, BASELINE_REVISION)
    assert (first.from_revision, first.to_revision) == (None, BASELINE_REVISION)
    done = upgrade_schema(engine)
    assert done.from_revision == BASELINE_REVISION and done.to_revision == head_revision()
    chain = [r.revision for r in reversed(list(script_directory().walk_revisions()))]
    assert list(done.ran) == chain[1:]
    # The same schema as a new database gets from metadata.create_all.
    assert _differences(engine) == []
    init_schema(engine)


def test_the_baseline_is_the_schema_v0_1_0_made(engine: Engine) -> None:
    upgrade_schema(engine, BASELINE_REVISION)
    with engine.connect() as conn:
        made = describe(conn)
    expected_file = FIXTURE / f"schema_{engine.dialect.name}.json"
    assert made == json.loads(expected_file.read_text(encoding="utf-8"))


def test_revision_files_form_one_line_in_the_order_of_their_numbers() -> None:
    """So that a revision dropped into versions/ chains on, and the newest is the head."""
    script = script_directory()
    assert script.get_heads() == [head_revision()]
    chain = [r.revision for r in reversed(list(script.walk_revisions()))]
    assert chain[0] == BASELINE_REVISION
    in_file_order = [
        Path(script.get_revision(r).path).name for r in chain  # type: ignore[union-attr]
    ]
    assert in_file_order == sorted(p.name for p in VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
    for revision in chain:
        # NNNN_what, numbered like its file.
        assert revision[:5] == Path(script.get_revision(revision).path).name[:5]  # type: ignore[union-attr]
    for before, after in zip(chain, chain[1:], strict=False):
        assert script.get_revision(after).down_revision == before  # type: ignore[union-attr]


def _log_digest(engine: Engine) -> str:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, body, prev_hash, record_hash FROM audit_log"
                                 " ORDER BY seq")).all()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_a_v0_1_0_database_is_refused_then_upgraded_in_place(db_url: str) -> None:
    load_database(db_url)
    engine = create_engine_for(db_url)
    try:
        status = schema_status(engine)
        assert status.legacy and status.current == BASELINE_REVISION
        assert status.pending == ("0002_persons",) + status.pending[1:]
        with pytest.raises(SchemaBehind) as refused:
            init_schema(engine)
        line = str(refused.value)
        assert "\n" not in line
        assert "0002_persons" in line and "ketenpoort db upgrade --config <file>" in line
        log_before = _log_digest(engine)
        with engine.connect() as conn:
            # Only the columns v0.1.0 had: the table's newer ones are not there yet.
            old_cases = {
                r.case_id: r
                for r in conn.execute(
                    select(
                        cases.c.case_id,
                        cases.c.subject_pseudonym,
                        cases.c.registered_by,
                        cases.c.created_at,
                        cases.c.shredded_at,
                    )
                ).all()
            }
            entry_count = len(conn.execute(select(case_entries.c.entry_id)).all())

        done = upgrade_schema(engine)

        assert done.was_legacy and done.from_revision == BASELINE_REVISION
        assert done.to_revision == head_revision() and done.ran == status.pending
        init_schema(engine)  # the gateway now accepts it
        assert _log_digest(engine) == log_before
        with engine.connect() as conn:
            persons = conn.execute(select(case_persons)).all()
            entries = conn.execute(select(case_entries)).all()
            version = conn.execute(select(schema_info.c.version)).scalar()
        assert version == MIGRATED_SCHEMA_VERSION
        assert sorted(old_cases) == sorted(CASE_IDS)
        assert sorted(p.case_id for p in persons) == sorted(CASE_IDS)  # one each
        for person in persons:
            case = old_cases[person.case_id]
            assert person.pseudonym == case.subject_pseudonym
            assert person.role_in_case == "subject" and person.identified_by == "bsn"
            assert person.bsn_pseudonym is None and person.removed_at is None
            assert person.added_by == case.registered_by and person.added_at == case.created_at
            assert person.person_id.startswith("p_") and len(person.person_id) == 34
        person_of = {p.case_id: p.person_id for p in persons}
        assert len(entries) == entry_count
        # Entries stay where they were: their ciphertext is bound to an empty person id, and
        # the case file reads identity entries without a person as the first person's.
        assert all(entry.person_id == "" for entry in entries)
        # The shredded case keeps its person (pseudonym only): its entries are gone.
        shredded = [c for c in old_cases.values() if c.shredded_at is not None]
        assert len(shredded) == 1 and shredded[0].case_id in person_of
        assert _differences(engine) == []
        again = upgrade_schema(engine)
        assert again.ran == () and again.from_revision == again.to_revision
    finally:
        engine.dispose()


def test_a_database_of_a_newer_release_is_refused(engine: Engine) -> None:
    init_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    with pytest.raises(SchemaAhead, match="0099_from_the_future.*does not know"):
        init_schema(engine)
    with pytest.raises(SchemaAhead):
        upgrade_schema(engine)
    assert schema_status(engine).unknown


def test_a_database_from_before_v0_1_0_is_refused(engine: Engine) -> None:
    init_schema(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(update(schema_info).values(version=2))
    for attempt in (init_schema, upgrade_schema):
        with pytest.raises(SchemaMismatch, match="generation 2"):
            attempt(engine)


def test_an_upgrade_leaves_sqlite_foreign_keys_on(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'k.db'}")
    try:
        upgrade_schema(engine, BASELINE_REVISION)
        upgrade_schema(engine)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


# One past the newest shipped revision, as the next release would name it.
NEW_REVISION = f"{int(head_revision()[:4]) + 1:04d}_copy_cases"


@pytest.fixture
def scripts_with_a_new_revision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the migrations with one more revision dropped into versions/, as a later
    release adds one: this one copies the cases table (batch mode, as SQLite needs for most
    changes), which every other case table refers to with ON DELETE CASCADE."""
    scripts = tmp_path / "migrations"
    shutil.copytree(SCRIPT_LOCATION, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / f"{NEW_REVISION}.py").write_text(
        '"""Test revision: copy the cases table."""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        f'revision = "{NEW_REVISION}"\n'
        f"down_revision = {head_revision()!r}\n\n\n"
        "def upgrade() -> None:\n"
        '    with op.batch_alter_table("cases", recreate="always") as batch:\n'
        '        batch.add_column(sa.Column("test_marker", sa.String(), nullable=False,'
        ' server_default="copied"))\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(migrations, "SCRIPT_LOCATION", scripts)
    migrations.script_directory.cache_clear()
    yield scripts  # type: ignore[misc]
    migrations.script_directory.cache_clear()


def test_a_revision_dropped_into_versions_runs_and_a_table_copy_keeps_the_rows_below_it(
    scripts_with_a_new_revision: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'v010.db'}"
    load_database(url)
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            entries = conn.execute(select(func.count()).select_from(case_entries)).scalar()
        pending = schema_status(engine).pending
        assert pending[0] == "0002_persons" and pending[-1] == NEW_REVISION
        done = upgrade_schema(engine)
        assert done.ran == pending
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(case_entries)).scalar() == entries
            assert conn.execute(select(func.count()).select_from(case_persons)).scalar() == len(
                CASE_IDS
            )
            markers = conn.execute(text("SELECT DISTINCT test_marker FROM cases")).scalars()
            assert list(markers) == ["copied"]
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
