"""`ketenpoort db status|upgrade` on the database release v0.1.0 made, SQLite and PostgreSQL.

Before the upgrade every command that opens the database, `serve` included, refuses it in one
line naming the pending revision and the command to run; after it, the log verifies with the
fixture's own keys and checkpoint file, every old case has exactly one person, and a partner
gets a case's record from the gateway started on it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.client import PartnerClient, PartnerCredentials
from gateway.cli.main import main
from gateway.server.app import start_gateway
from gateway.server.config import load_config
from gateway.store.db import create_engine_for
from gateway.store.migrations import head_revision
from gateway.store.tables import case_persons, cases
from tests.fixtures.v0_1_0.load import CASE_IDS, copy_data_dir, load_database, write_config

# The fixture's TLS certificates end then (tests/fixtures/v0_1_0/README.md).
CERTIFICATES_END = datetime(2028, 1, 8, tzinfo=UTC)
# Of the demo's subject (gateway/cli/demo_data.py at v0.1.0).
DEMO_SUBJECT_NAME = "Jan de Vries"


@pytest.fixture
def v010_config(db_url: str, tmp_path: Path) -> Path:
    load_database(db_url)
    return write_config(copy_data_dir(tmp_path / "gateway"), db_url)


def test_a_v0_1_0_database_is_refused_until_upgraded(
    v010_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(v010_config)
    assert main(["serve", "--config", config]) == 1
    refused = capsys.readouterr().err.strip()
    assert "\n" not in refused
    assert "0002_persons" in refused and "ketenpoort db upgrade --config <file>" in refused
    assert "Traceback" not in refused

    assert main(["db", "status", "--config", config]) == 1
    shown = capsys.readouterr().out
    assert "0001_v0_1_0 (release v0.1.0" in shown and "pending   0002_persons" in shown

    assert main(["db", "upgrade", "--config", config]) == 0
    out = capsys.readouterr().out
    assert f"upgraded from revision 0001_v0_1_0 (release v0.1.0) to {head_revision()}" in out
    assert "ran 0002_persons: Persons of a case" in out

    assert main(["db", "status", "--config", config]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["db", "upgrade", "--config", config]) == 0
    assert "nothing to do" in capsys.readouterr().out

    # The fixture's log, checked with the fixture's keys and its checkpoint file.
    assert main(["audit", "verify", "--config", config]) == 0
    verified = capsys.readouterr().out
    assert "log verifies: 28 records" in verified and "4 signed checkpoints match" in verified

    engine = create_engine_for(load_config(v010_config).database_url)
    try:
        with engine.connect() as conn:
            subjects = {
                r.case_id: r.subject_pseudonym for r in conn.execute(select(cases)).all()
            }
            persons = conn.execute(select(case_persons)).all()
    finally:
        engine.dispose()
    assert sorted(subjects) == sorted(CASE_IDS)
    assert sorted(p.case_id for p in persons) == sorted(CASE_IDS)
    assert all(p.pseudonym == subjects[p.case_id] for p in persons)


def test_db_commands_say_in_one_line_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("upgrade", "status"):
        status = main(["db", command, "--db", "mysql://nowhere/db"])
        err = capsys.readouterr().err.strip()
        assert status != 0 and err.startswith(f"ketenpoort db {command}: ") and "\n" not in err
    unreachable = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    assert main(["db", "upgrade", "--db", unreachable]) == 1
    err = capsys.readouterr().err.strip()
    assert "upgrading the schema failed" in err and "nothing changed" in err and "\n" not in err
    fresh = f"sqlite:///{tmp_path / 'new.db'}"
    assert main(["db", "status", "--db", fresh]) == 0
    assert "empty database" in capsys.readouterr().out
    assert main(["db", "upgrade", "--db", fresh]) == 0
    assert f"new database created at revision {head_revision()}" in capsys.readouterr().out


@pytest.mark.skipif(
    datetime.now(UTC) >= CERTIFICATES_END,
    reason="the v0.1.0 fixture's TLS certificates have ended; make the fixture again",
)
async def test_a_partner_gets_an_upgraded_case_from_the_gateway(
    v010_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade", "--config", str(v010_config)]) == 0
    capsys.readouterr()
    config = load_config(v010_config)
    gateway = await start_gateway(config)
    try:
        creds = PartnerCredentials.from_key_dir(config.keys_dir, "police")
        async with PartnerClient(
            f"localhost:{gateway.port}", creds, role="case_director"
        ) as police:
            answer = await police.request_disclosure(
                CASE_IDS[0], "analysis_and_plan", "case_meeting"
            )
    finally:
        await gateway.stop()
    # The case key, wrapped by v0.1.0 under the fixture's key-encryption key, still opens.
    assert answer.values.get("subject.name") == DEMO_SUBJECT_NAME
