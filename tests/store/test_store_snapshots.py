"""Case snapshots read on the driver's own connections, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text

from gateway.store import CaseRepository, StoreError, create_engine_for, init_schema
from gateway.store.snapshots import CaseSnapshots
from tests.store.factories import T0
from tests.store.test_store_cases import entry, register

ROOT = Path(__file__).resolve().parents[2]
# Runs the test on the PostgreSQL database of the ``db_url`` fixture only.
POSTGRES_ONLY = pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
async def snapshots(engine: Engine) -> AsyncIterator[CaseSnapshots]:
    reader = CaseSnapshots(engine)
    try:
        yield reader
    finally:
        await reader.close()


async def test_snapshot_matches_the_repository(
    cases: CaseRepository, snapshots: CaseSnapshots
) -> None:
    register(cases)
    # Entries out of time order, two at one moment (ordered by id), and a later invitee.
    cases.add_entries(
        "c1",
        [entry("e9", "notes", 30), entry("e4", "notes", 10), entry("e3", "notes", 10)],
    )
    cases.add_participant("c1", "ggz", "gemeente", T0 + timedelta(minutes=5))
    snap = await snapshots.read("c1")
    assert snap == cases.snapshot("c1")
    assert snap is not None
    assert snap.case.participants == ("gemeente", "politie", "veilig-thuis", "ggz")
    assert [e.entry_id for e in snap.entries] == ["e1", "e2", "e3", "e4", "e9"]
    assert all(e.created_at.tzinfo is not None for e in snap.entries)
    assert snap.case.wrapped_data_key == b"\x01wrapped-data-key\x00\xff"


async def test_unknown_case_is_none(cases: CaseRepository, snapshots: CaseSnapshots) -> None:
    register(cases)
    assert await snapshots.read("nope") is None


async def test_case_without_entries(cases: CaseRepository, snapshots: CaseSnapshots) -> None:
    register(cases, entries=[], invitees=[])
    snap = await snapshots.read("c1")
    assert snap is not None
    assert snap.entries == ()
    assert snap.case.participants == ("gemeente",)


async def test_every_read_sees_the_latest_state(
    cases: CaseRepository, snapshots: CaseSnapshots
) -> None:
    """Nothing is cached: a new participant or phase counts at the very next read."""
    register(cases)
    before = await snapshots.read("c1")
    assert before is not None and "ggz" not in before.case.participants
    cases.add_participant("c1", "ggz", "gemeente", T0)
    cases.set_phase("c1", "triage")
    after = await snapshots.read("c1")
    assert after is not None
    assert "ggz" in after.case.participants
    assert after.case.phase == "triage"
    cases.delete_case("c1")
    assert await snapshots.read("c1") is None


async def test_concurrent_reads(cases: CaseRepository, snapshots: CaseSnapshots) -> None:
    for n in range(6):
        register(cases, case_id=f"c{n}", entries=[entry(f"e{n}", "reason", 0, f"c{n}")])
    snaps = await asyncio.gather(*(snapshots.read(f"c{n % 6}") for n in range(40)))
    assert [s.case.case_id if s else None for s in snaps] == [f"c{n % 6}" for n in range(40)]


async def test_storage_errors_become_store_errors(
    engine: Engine, cases: CaseRepository, snapshots: CaseSnapshots
) -> None:
    register(cases)
    assert await snapshots.read("c1") is not None
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE case_entries"))
    with pytest.raises(StoreError) as err:
        await snapshots.read("c1")
    assert "c1" not in str(err.value)


async def test_sqlite_read_waits_for_a_locked_database_off_the_event_loop(
    tmp_path: Path,
) -> None:
    """While another process holds the database exclusively, the reader waits for it on a
    worker thread: the event loop keeps serving, and the read completes once the lock goes."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'k.db'}")
    init_schema(engine)
    register(CaseRepository(engine))
    engine.dispose()
    reader = CaseSnapshots(engine)
    locker = sqlite3.connect(tmp_path / "k.db", isolation_level=None)
    try:
        locker.execute("PRAGMA locking_mode = EXCLUSIVE")
        locker.execute("BEGIN EXCLUSIVE")
        locker.execute("UPDATE cases SET phase = 'triage'")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        read = asyncio.create_task(reader.read("c1"))
        await asyncio.sleep(0.3)
        assert not read.done()
        locker.execute("COMMIT")
        locker.close()
        snap = await asyncio.wait_for(read, 20)
        ticking.cancel()
        assert snap is not None and snap.case.phase == "triage"
        # The loop kept running while the read waited.
        assert ticks >= 10
    finally:
        locker.close()
        await reader.close()
        engine.dispose()


@POSTGRES_ONLY
async def test_postgres_reconnects_after_the_server_dropped_a_connection(
    engine: Engine, cases: CaseRepository
) -> None:
    register(cases)
    reader = CaseSnapshots(engine, pg_connections=1)
    try:
        assert await reader.read("c1") is not None
        assert _terminate(engine, _idle_pids(reader)) == 1
        snap = await reader.read("c1")
        assert snap is not None and snap.case.case_id == "c1"
    finally:
        await reader.close()
    with pytest.raises(StoreError):
        await reader.read("c1")


@POSTGRES_ONLY
async def test_postgres_reads_on_after_the_server_dropped_every_idle_connection(
    engine: Engine, cases: CaseRepository
) -> None:
    """A restart or an operator cuts all idle connections at once: the read that finds one
    dead must not retry on another dead one (an INTERNAL answer under load before)."""
    register(cases)
    reader = CaseSnapshots(engine, pg_connections=3)
    try:
        while len(_idle_pids(reader)) < 3:
            await asyncio.gather(*(reader.read("c1") for _ in range(6)))
        assert _terminate(engine, _idle_pids(reader)) == 3
        snap = await reader.read("c1")
        assert snap is not None and snap.case.case_id == "c1"
    finally:
        await reader.close()


def _idle_pids(reader: CaseSnapshots) -> list[int]:
    # This reader's own server sessions only: other tests on the same server keep theirs.
    return [c.info.backend_pid for c in reader._reader._idle]  # type: ignore[attr-defined]


def _terminate(engine: Engine, pids: list[int]) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                text("SELECT count(pg_terminate_backend(pid)) FROM unnest(:pids) AS pid"),
                {"pids": pids},
            ).scalar_one()
        )


@POSTGRES_ONLY
async def test_postgres_connections_are_closed(engine: Engine) -> None:
    reader = CaseSnapshots(engine, pg_connections=2)
    await asyncio.gather(*(reader.read("none") for _ in range(8)))
    pids = _idle_pids(reader)
    assert pids
    await reader.close()
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as conn:
        # This reader's sessions only: other tests on the same server keep theirs.
        left = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
        ).fetchone()
    assert left == (0,)


def test_sqlite_gateway_does_not_need_psycopg() -> None:
    """psycopg is an optional dependency: SQLite users never import it."""
    code = (
        "import sys, asyncio\n"
        "from gateway.store import create_engine_for, init_schema\n"
        "from gateway.store.snapshots import CaseSnapshots\n"
        "import gateway.server.app\n"
        "e = create_engine_for('sqlite://'); init_schema(e)\n"
        "r = CaseSnapshots(e)\n"
        "assert asyncio.run(r.read('x')) is None\n"
        "assert 'psycopg' not in sys.modules, 'psycopg imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
