"""A log wiped, rolled back or rewritten inside the database is caught outside it: by
`ketenpoort audit verify` (the gateway's checkpoint files, read by default), by the gateway's
own check (which then stops signing and reports NOT_SERVING, across restarts, until an
operator acknowledges), and by every partner that witnessed an earlier checkpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text

from adapters.client import PartnerClient, PartnerCredentials
from adapters.log_witness import LogRewritten, LogRolledBack, LogWitnessError
from gateway.cli.main import main
from gateway.core import CompiledPolicy
from gateway.crypto.keystore import Keystore
from gateway.server.app import start_gateway
from gateway.store.audit_proofs import ProofUnavailable
from gateway.store.checkpoint_file import read_notes
from gateway.store.checkpoints import CheckpointSigner
from gateway.store.db import create_engine_for
from gateway.store.log_alarm import LogAlarm
from gateway.tlog.cosignature import add_cosignature, cosign
from tests.integration.harness import Harness, gateway_config, running_harness
from tests.integration.helpers import register, to_case_meeting
from tests.integration.log_tampering import (
    ROLL_BACK_KEEP,
    TAMPERS,
    config_file,
    remove_outside_evidence,
    tamper,
)

ACCOUNTABILITY = "ketenpoort.v1.AccountabilityService"


async def _fill_log(harness: Harness) -> int:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police)
    await to_case_meeting(director, case_id)
    await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    await director.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    # Every record under a checkpoint, as a quiet gateway has them after checkpoint_interval_s.
    return harness.gateway.log.checkpoint_now().tree_size


async def _health(harness: Harness, service: str = ACCOUNTABILITY) -> int:
    channel = harness.channel()
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(reply.status)
    finally:
        await channel.close()


EXPECTED = {
    "wipe": "the log holds 0 records, fewer than the signed checkpoint at tree size",
    "roll_back": f"the log holds {ROLL_BACK_KEEP} records, fewer than the signed checkpoint",
    "rewrite": "do not match the signed checkpoint at tree size",
}


@pytest.mark.parametrize("how", TAMPERS)
async def test_audit_verify_catches_a_log_tampered_inside_the_database(
    db_url: str,
    dev_keys: Path,
    shipped_policy: CompiledPolicy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    async with running_harness(db_url, dev_keys, shipped_policy) as harness:
        size = await _fill_log(harness)
        witnessed = await harness.client("police").witness_log(tmp_path / "police.json")
        assert witnessed.tree_size == size and witnessed.witnesses == 1
        config = config_file(harness, tmp_path / "gateway.toml")
        capsys.readouterr()
        assert main(["audit", "verify", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        assert f"witnesses: 1 cosigned the newest checkpoint (tree size {size}): police" in out
        checkpoint_dir = harness.gateway.config.checkpoints_path
    # The stopped gateway's checkpoints are in its file, as well as in the database.
    assert any(f"\n{size}\n" in note for note in read_notes(checkpoint_dir))
    tamper(db_url, how)
    assert main(["audit", "verify", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "log does NOT verify" in err and EXPECTED[how] in err
    if how != "rewrite":
        assert f"checkpoint at tree size {size}" in err


@pytest.mark.parametrize("how", TAMPERS)
async def test_a_partner_that_witnessed_the_log_catches_it_tampered(
    db_url: str, dev_keys: Path, shipped_policy: CompiledPolicy, tmp_path: Path, how: str
) -> None:
    state = tmp_path / "police-witness.json"
    async with running_harness(db_url, dev_keys, shipped_policy) as harness:
        size = await _fill_log(harness)
        assert (await harness.client("police").witness_log(state)).tree_size == size
        checkpoint_dir = harness.gateway.config.checkpoints_path
    kept = state.read_text()
    # The attacker holds the database and the gateway's host: nothing the gateway keeps
    # betrays the change, and the gateway signs checkpoints over the tampered log.
    tamper(db_url, how)
    remove_outside_evidence(checkpoint_dir)
    async with running_harness(db_url, dev_keys, shipped_policy) as harness:
        assert harness.gateway.log.checkpoints_suspended is None
        if how != "wipe":
            resigned = harness.gateway.log.checkpoint_now()
            assert resigned.tree_size == (ROLL_BACK_KEEP if how == "roll_back" else size)
        expected = LogRewritten if how == "rewrite" else LogRolledBack
        with pytest.raises(expected) as caught:
            await harness.client("police").witness_log(state)
        assert str(size) in str(caught.value)
        # The partner never moves backwards: its state is what it witnessed.
        assert state.read_text() == kept
        # A client witnessing with each key fetch seals nothing to that gateway.
        witnessing = harness.client("police", witness_state=state)
        with pytest.raises(LogWitnessError):
            await register(witnessing)


async def test_a_failed_own_check_stops_signing_and_serving_until_acknowledged(
    db_url: str,
    dev_keys: Path,
    shipped_policy: CompiledPolicy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with running_harness(db_url, dev_keys, shipped_policy) as harness:
        await _fill_log(harness)
        watch = harness.gateway.log_watch
        assert watch is not None
        assert (await watch.check_now()) is not None and watch.alarm is None
        config = config_file(harness, tmp_path / "gateway.toml")
        checkpoint_dir = harness.gateway.config.checkpoints_path
        tamper(db_url, "roll_back")
        # The writer sees the head behind what it signed and signs nothing from the next batch.
        await register(harness.client("police"))
        assert harness.gateway.log.checkpoints_suspended is not None
        assert harness.gateway.metrics.registry.get_sample_value("ketenpoort_log_alarm") == 0
        result = await watch.check_now()
        assert result is not None and not result.ok
        assert harness.gateway.metrics.registry.get_sample_value("ketenpoort_log_alarm") == 1
        assert await _health(harness) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await _health(harness, "ketenpoort.v1.ExchangeService") == (
            health_pb2.HealthCheckResponse.SERVING
        )
        # Records are still written, but no checkpoint vouches for them.
        await register(harness.client("police"))
        with pytest.raises(ProofUnavailable, match="signing is stopped"):
            harness.gateway.log.checkpoint_now()
        officer = harness.client("zvh", role="privacy_officer")
        with pytest.raises(grpc.aio.AioRpcError) as no_checkpoint:
            await officer.get_checkpoint()
        assert no_checkpoint.value.code() == grpc.StatusCode.NOT_FOUND
        # VerifyLog over gRPC checks against the checkpoint file too.
        verified = await officer.verify_log()
        assert not verified.ok and "fewer than the signed checkpoint" in verified.reason
    engine = create_engine_for(db_url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM log_checkpoints")).scalar_one() == 0
    engine.dispose()
    alarm = LogAlarm(checkpoint_dir).current()
    assert alarm is not None and "the head was moved back" in alarm.reason

    # A restart does not forget it.
    async with running_harness(db_url, dev_keys, shipped_policy) as harness:
        assert await _health(harness) == health_pb2.HealthCheckResponse.NOT_SERVING
        assert harness.gateway.log.checkpoints_suspended is not None
        # Exported from the start, before any check ran (an alert on it sees the first scrape).
        assert harness.gateway.metrics.registry.get_sample_value("ketenpoort_log_alarm") == 1
        # The log still does not verify: acknowledging without an override is refused.
        capsys.readouterr()
        assert main(["audit", "acknowledge", "--config", str(config)]) == 1
        assert "The alarm stands" in capsys.readouterr().err
        assert LogAlarm(checkpoint_dir).current() is not None
        assert main(["audit", "acknowledge", "--config", str(config), "--override"]) == 2
        args = ["--override", "--reason", "restored from backup", "--operator", "op-7"]
        assert main(["audit", "acknowledge", "--config", str(config), *args]) == 0
        assert LogAlarm(checkpoint_dir).current() is None
        watch = harness.gateway.log_watch
        assert watch is not None
        result = await watch.check_now()
        assert result is not None and result.ok, result
        assert harness.gateway.metrics.registry.get_sample_value("ketenpoort_log_alarm") == 0
        assert await _health(harness) == health_pb2.HealthCheckResponse.SERVING
        assert harness.gateway.log.checkpoint_now().tree_size > ROLL_BACK_KEEP
        cleared = harness.gateway.log.list_records(kinds=["log_alarm_cleared"])
        assert len(cleared) == 1
        detail = dict(cleared[0].event.detail)
        assert detail["outcome"] == "override"
        assert detail["reason_digest"].startswith("hmac-sha256:")
        assert "restored from backup" not in json.dumps(detail)
    assert main(["audit", "verify", "--config", str(config)]) == 0


async def test_acknowledging_an_alarm_over_a_log_that_verifies(
    harness: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _fill_log(harness)
    checkpoint_dir = harness.gateway.config.checkpoints_path
    LogAlarm(checkpoint_dir).raise_("a disk error while reading", None, None)
    config = config_file(harness, tmp_path / "gateway.toml")
    assert main(["audit", "acknowledge", "--config", str(config)]) == 0
    assert "alarm" in capsys.readouterr().out and LogAlarm(checkpoint_dir).current() is None
    cleared = harness.gateway.log.list_records(kinds=["log_alarm_cleared"])
    assert [dict(r.event.detail)["outcome"] for r in cleared] == ["verified"]


async def test_audit_verify_fails_a_log_with_records_but_no_checkpoint(
    harness: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    police = harness.client("police")
    await register(police)
    await harness.gateway.stop()
    engine = create_engine_for(harness.db_url)
    with engine.begin() as conn:
        records = conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one()
        conn.execute(text("DELETE FROM log_checkpoints"))
        conn.execute(text("UPDATE log_head SET checkpoint_size = 0, checkpoint_at = NULL"))
    engine.dispose()
    remove_outside_evidence(harness.gateway.config.checkpoints_path)
    capsys.readouterr()
    assert main(["audit", "verify", "--db", harness.db_url, "--keys", str(harness.keys)]) == 1
    err = capsys.readouterr().err
    assert f"the log holds {records} records but no signed checkpoint at all" in err


async def test_each_replica_keeps_the_checkpoints_it_saw(
    db_url: str,
    dev_keys: Path,
    shipped_policy: CompiledPolicy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two replicas on one database, each with its own checkpoint directory: a checkpoint one
    signs is copied by the other's check into its own file, so either file alone catches a
    rollback (here the signing replica's host is lost with its file)."""
    replicas = []
    for name in ("gateway-0", "gateway-1"):
        config = gateway_config(
            db_url, dev_keys, checkpoint_dir=tmp_path / name, replica_id=name
        )
        replicas.append(await start_gateway(config, policy=shipped_policy, sources={}))
    first, second = replicas
    try:
        creds = PartnerCredentials.from_key_dir(dev_keys, "police")
        async with PartnerClient(first.address, creds, role="case_director") as police:
            for _ in range(ROLL_BACK_KEEP + 2):
                await register(police)
        size = first.log.checkpoint_now().tree_size
        assert size > ROLL_BACK_KEEP
        assert second.log_watch is not None
        result = await second.log_watch.check_now()
        assert result is not None and result.ok
        assert (tmp_path / "gateway-1" / "checkpoints-gateway-1.jsonl").exists()
        assert any(f"\n{size}\n" in note for note in read_notes(tmp_path / "gateway-1"))
    finally:
        for gateway in replicas:
            await gateway.stop(grace=None)
    tamper(db_url, "roll_back")
    remove_outside_evidence(tmp_path / "gateway-0")
    operator = tmp_path / "gateway-1.toml"
    operator.write_text(
        f"database_url = '{db_url}'\nkeys_dir = '{dev_keys}'\n"
        f"checkpoint_dir = '{tmp_path / 'gateway-1'}'\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert main(["audit", "verify", "--config", str(operator)]) == 1
    assert f"fewer than the signed checkpoint at tree size {size}" in capsys.readouterr().err


async def test_witness_calls_with_bad_cosignatures_are_refused(harness: Harness) -> None:
    await _fill_log(harness)
    police, ggz = harness.client("police"), harness.client("ggz")
    offer = await police.checkpoint_to_witness(0)
    ggz_key = harness.credentials("ggz").token_key
    at = datetime.now(UTC)
    # Police sends a note cosigned by ggz, under police's name and under ggz's.
    for name in ("police", "ggz"):
        cosigned = add_cosignature(offer.note, cosign(offer.note, name, ggz_key, at))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await police.witness_checkpoint(cosigned)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A checkpoint the log never signed, and one of another tree at a size it did sign.
    for note in ("not a note", offer.note.replace("\n", "\nx", 1)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await police.witness_checkpoint(note)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Signed with the log's key, but a tree the database does not hold: not cosigned.
    keystore = Keystore.open(harness.keys)
    signer = CheckpointSigner(keystore.signing_keys().current, harness.gateway.config.log_origin)
    unheld = signer.sign(offer.tree_size + 1000, bytes(32), at).note
    police_key = harness.credentials("police").token_key
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await police.witness_checkpoint(
            add_cosignature(unheld, cosign(unheld, "police", police_key, at))
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    keystore.close()
    good = add_cosignature(offer.note, cosign(offer.note, "ggz", ggz_key, at))
    assert (await ggz.witness_checkpoint(good)).witnesses == 1
