"""`ketenpoort audit verify` names the first bad record after the log table is tampered with."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gateway.cli.main import main
from gateway.store.db import create_engine_for
from tests.integration.harness import Harness
from tests.integration.helpers import register, to_case_meeting


async def _fill_log(harness: Harness) -> int:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await to_case_meeting(director, case_id)
    await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    await director.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    return harness.gateway.log.count()


async def test_an_untouched_log_verifies(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    count = await _fill_log(harness)
    assert count >= 5
    assert main(["audit", "verify", "--db", harness.db_url]) == 0
    assert f"{count} records" in capsys.readouterr().out


@pytest.mark.parametrize("tamper", ["edit", "delete", "reorder"])
async def test_tampering_is_detected(
    harness: Harness, capsys: pytest.CaptureFixture[str], tamper: str
) -> None:
    await _fill_log(harness)
    engine = create_engine_for(harness.db_url)
    with engine.begin() as conn:
        if tamper == "edit":
            conn.execute(
                text(
                    "UPDATE audit_log SET body = "
                    "replace(body, '\"status\":\"ok\"', '\"status\":\"refused\"') WHERE seq = 3"
                )
            )
        elif tamper == "delete":
            conn.execute(text("DELETE FROM audit_log WHERE seq = 3"))
        else:
            rows = conn.execute(
                text(
                    "SELECT seq, body, prev_hash, record_hash FROM audit_log "
                    "WHERE seq IN (3, 4) ORDER BY seq"
                )
            ).all()
            for (seq, *_), (_, body, prev, rec) in zip(rows, reversed(rows), strict=True):
                conn.execute(
                    text("UPDATE audit_log SET body=:b, prev_hash=:p, record_hash=:r WHERE seq=:s"),
                    {"b": body, "p": prev, "r": rec, "s": seq},
                )
    engine.dispose()
    assert main(["audit", "verify", "--db", harness.db_url]) == 1
    err = capsys.readouterr().err
    assert "seq=3" in err
