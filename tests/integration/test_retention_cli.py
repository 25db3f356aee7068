"""`ketenpoort retention run`: a dry run changes nothing, a run shreds and prints each case,
the log still verifies, and --now cannot move a real run into the future."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.broker.log_events import RecordKind
from gateway.cli.main import main
from gateway.core import CompiledPolicy
from gateway.store import AuditLog, CaseRepository, create_engine_for
from gateway.store.tables import case_entries, cases
from tests.integration.harness import running_harness
from tests.integration.helpers import accept, register


@pytest.fixture
async def closed_long_ago(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[tuple[str, str]]:
    """(closed case, open case), registered and closed 800 days ago; the gateway is stopped."""
    past = datetime.now(UTC) - timedelta(days=800)
    async with running_harness(db_url, dev_keys, shipped_policy, clock=lambda: past) as harness:
        police = harness.client("police")
        closed, still_open = await register(police), await register(police)
        await accept(harness.client("zvh"), closed)
        await harness.client("zvh").change_phase(closed, "registration", "closure")
    yield closed, still_open


def state(db_url: str) -> tuple[int, int, list[tuple[object, ...]]]:
    """Entries, log records and the cases' keys: what a dry run must leave as it was."""
    engine = create_engine_for(db_url)
    try:
        with engine.begin() as conn:
            entries = conn.execute(select(func.count()).select_from(case_entries)).scalar_one()
            keys = conn.execute(
                select(cases.c.case_id, cases.c.wrapped_data_key, cases.c.shredded_at).order_by(
                    cases.c.case_id
                )
            ).all()
        return int(entries), AuditLog(engine).count(), [tuple(k) for k in keys]
    finally:
        engine.dispose()


def test_dry_run_lists_and_changes_nothing(
    closed_long_ago: tuple[str, str], db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    closed, still_open = closed_long_ago
    before = state(db_url)
    assert main(["retention", "run", "--database", db_url, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would shred {closed}  closed " in out
    assert still_open not in out
    assert "dry run: 1 case would be shredded" in out
    assert state(db_url) == before
    # Looking ahead is allowed in a dry run; it still changes nothing.
    ahead = (datetime.now(UTC) + timedelta(days=3650)).isoformat()
    assert main(["retention", "run", "--database", db_url, "--dry-run", "--now", ahead]) == 0
    assert state(db_url) == before


def test_run_shreds_prints_and_the_log_verifies(
    closed_long_ago: tuple[str, str],
    db_url: str,
    dev_keys: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    closed, still_open = closed_long_ago
    assert main(["retention", "run", "--database", db_url, "--keys", str(dev_keys)]) == 0
    out = capsys.readouterr().out
    assert f"shredded {closed}  closed " in out and "log record " in out
    assert "1 case shredded (closed on or before " in out
    assert "log checkpoint signed at tree size " in out

    engine = create_engine_for(db_url)
    try:
        repo = CaseRepository(engine)
        gone, kept = repo.get_case(closed), repo.get_case(still_open)
        assert gone is not None and gone.shredded_at is not None and gone.wrapped_data_key == b""
        assert kept is not None and kept.shredded_at is None
        records = AuditLog(engine).list_records(kinds=[RecordKind.RETENTION])
        assert [r.event.case_id for r in records] == [closed]
        assert records[0].event.name == "ketenpoort retention run"
    finally:
        engine.dispose()
    assert main(["audit", "verify", "--db", db_url, "--keys", str(dev_keys)]) == 0
    assert "log verifies" in capsys.readouterr().out

    # Nothing is left to do; nothing more is written.
    assert main(["retention", "run", "--database", db_url]) == 0
    assert "0 cases shredded" in capsys.readouterr().out
    engine = create_engine_for(db_url)
    try:
        assert len(AuditLog(engine).list_records(kinds=[RecordKind.RETENTION])) == 1
    finally:
        engine.dispose()


def test_a_real_run_refuses_a_moment_in_the_future(
    closed_long_ago: tuple[str, str], db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = state(db_url)
    ahead = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert main(["retention", "run", "--database", db_url, "--now", ahead]) == 2
    assert "--now lies in the future" in capsys.readouterr().err
    assert main(["retention", "run", "--database", db_url, "--now", "2026-01-01T00:00"]) == 2
    assert "time zone" in capsys.readouterr().err
    assert state(db_url) == before
