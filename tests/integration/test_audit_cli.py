"""`ketenpoort audit verify` names the first bad record after the log table is tampered with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.cli.main import main
from gateway.crypto.layout import GatewayKeyPaths
from gateway.store.db import create_engine_for
from gateway.store.merkle import Frontier, leaf_hash
from tests.integration.harness import Harness
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_tampering import config_file


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
    assert main(["audit", "verify", "--db", harness.db_url, "--keys", str(harness.keys)]) == 0
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
    assert main(["audit", "verify", "--db", harness.db_url, "--keys", str(harness.keys)]) == 1
    err = capsys.readouterr().err
    assert "seq=3" in err


DOCS = Path(__file__).resolve().parents[2] / "docs"


def _cli(harness: Harness, *args: str) -> list[str]:
    """``args`` against the harness's gateway, named by its configuration file."""
    return [*args, "--config", str(config_file(harness, harness.keys.parent / "gateway.toml"))]


async def test_a_proof_checks_with_the_cli_and_with_the_standalone_script(
    harness: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    count = await _fill_log(harness)
    public_key = str(GatewayKeyPaths.under(harness.keys).signing_pub)
    for seq in (1, 3, count):
        capsys.readouterr()
        assert main(_cli(harness, "audit", "prove", str(seq))) == 0
        document = json.loads(capsys.readouterr().out)
        assert document["seq"] == seq and document["tree_size"] >= seq
        proof_file = tmp_path / f"proof-{seq}.json"
        proof_file.write_text(json.dumps(document))
        assert main(["audit", "check-proof", str(proof_file), "--public-key", public_key]) == 0
        assert f"record {seq} is in the log" in capsys.readouterr().out
        script = subprocess.run(
            [sys.executable, str(DOCS / "check_proof.py"), str(proof_file), public_key],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (script.returncode, script.stdout.strip()) == (0, "ok")
        # The same proof for a changed record, or against another key, fails both checkers.
        forged = dict(document, record=document["record"].replace('"ok"', '"refused"', 1))
        assert forged["record"] != document["record"]
        proof_file.write_text(json.dumps(forged))
        assert main(["audit", "check-proof", str(proof_file), "--public-key", public_key]) == 1
        script = subprocess.run(
            [sys.executable, str(DOCS / "check_proof.py"), str(proof_file), public_key],
            capture_output=True,
            text=True,
            check=False,
        )
        assert script.returncode == 1


async def test_an_exported_checkpoint_catches_a_cut_log(
    harness: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await _fill_log(harness)
    capsys.readouterr()
    assert main(_cli(harness, "audit", "checkpoint", "--new")) == 0
    note = capsys.readouterr().out
    saved = tmp_path / "checkpoint.txt"
    saved.write_text(note)
    size = int(note.split("\n")[1])
    await harness.gateway.stop()
    engine = create_engine_for(harness.db_url)
    with engine.begin() as conn:
        # Cut the last record and everything that would betray it: chain head, checkpoints.
        last = conn.execute(text("SELECT prev_hash FROM audit_log WHERE seq = :s"), {"s": size})
        prev_hash = last.scalar_one()
        conn.execute(text("DELETE FROM audit_log WHERE seq >= :s"), {"s": size})
        conn.execute(text("DELETE FROM log_checkpoints"))
        frontier = Frontier()
        for (body,) in conn.execute(text("SELECT body FROM audit_log ORDER BY seq")):
            frontier.append(leaf_hash(body.encode()))
        conn.execute(
            text("UPDATE log_head SET last_seq = :n, last_hash = :h, frontier = :f, "
                 "checkpoint_size = 0"),
            {"n": size - 1, "h": prev_hash, "f": frontier.encode()},
        )
    engine.dispose()
    # Inside the database the cut no longer shows; the gateway's checkpoint files, read by
    # default, catch it, and so does the note kept elsewhere.
    assert main(_cli(harness, "audit", "verify")) == 1
    assert f"seq={size}" in capsys.readouterr().err
    assert main(_cli(harness, "audit", "verify", "--checkpoint", str(saved))) == 1
    assert f"seq={size}" in capsys.readouterr().err


async def test_consistency_between_checkpoints_from_the_cli(
    harness: Harness, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    await _fill_log(harness)
    assert main(_cli(harness, "audit", "checkpoint", "--new")) == 0
    old = int(capsys.readouterr().out.split("\n")[1])
    police = harness.client("police")
    await register(police)
    assert main(_cli(harness, "audit", "checkpoint", "--new")) == 0
    new = int(capsys.readouterr().out.split("\n")[1])
    assert new > old
    assert main(_cli(harness, "audit", "prove", "--consistency", str(old), str(new))) == 0
    proof_file = tmp_path / "consistency.json"
    proof_file.write_text(capsys.readouterr().out)
    public_key = str(GatewayKeyPaths.under(harness.keys).signing_pub)
    assert main(["audit", "check-proof", str(proof_file), "--public-key", public_key]) == 0
    assert f"extends the log of {old} records" in capsys.readouterr().out
