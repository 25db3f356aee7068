"""A gateway whose own keys are in a PKCS#11 token (SoftHSM2), over real gRPC with mutual TLS.

The token signs the log's checkpoints, opens the source answers sealed to the gateway and
wraps the cases' data keys. A log-signing key rotated with `ketenpoort keys rotate` while the
gateway serves is taken up at its next key refresh, and the log verifies across the rotation,
in the server and with `ketenpoort audit verify`, also after the old key is retired.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.client import PartnerClient, PartnerCredentials
from adapters.gateway_keys import GatewayKeys
from adapters.source_server import AnswerSealing, InMemoryBackend, RunningSource, serve_source
from gateway.api.v1 import common_pb2
from gateway.broker.sources import Source
from gateway.broker.submission_gate import SubmissionGate
from gateway.cli.demo_data import SOURCE_RECORDS
from gateway.cli.main import main
from gateway.core import CompiledPolicy
from gateway.crypto.devkeys import init_dev_keys
from gateway.crypto.keyids import key_id, key_pin
from gateway.crypto.keystore import Keystore
from gateway.crypto.layout import GatewayKeyPaths
from gateway.crypto.provider import KeyKind
from gateway.crypto.provider_settings import KeyProviderSettings, ProviderType
from gateway.formats.gateway_key_statement import open_key_statement
from gateway.formats.log_origin import DEFAULT_LOG_ORIGIN
from gateway.server.app import Gateway, start_gateway
from gateway.sources.grpc_source import GrpcSource
from gateway.store.db import create_engine_for
from gateway.store.tables import cases
from tests.integration.harness import ROLES, SOURCE_PARTNERS, gateway_config
from tests.integration.helpers import register, to_case_meeting
from tests.softhsm import SoftHsm, pkcs11_settings


@dataclass
class HsmGateway:
    gateway: Gateway
    keys: Path
    db_url: str
    config_file: Path

    def client(self, partner: str) -> PartnerClient:
        creds = PartnerCredentials.from_key_dir(self.keys, partner)
        return PartnerClient(f"127.0.0.1:{self.gateway.port}", creds, role=ROLES[partner])

    def cli(self, *args: str) -> list[str]:
        return [*args, "--config", str(self.config_file)]


@pytest.fixture
async def hsm_gateway(
    softhsm: SoftHsm, tmp_path: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[HsmGateway]:
    keys = tmp_path / "keys"
    init_dev_keys(keys, sorted(shipped_policy.partners))
    token = pkcs11_settings(softhsm)
    db_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    # What an operator writes: the CLI commands below read the same file as the gateway.
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(
        f'keys_dir = "{keys}"\ndatabase_url = "{db_url}"\n[key_provider]\ntype = "pkcs11"\n'
        f'module = "{token.module}"\ntoken_label = "{token.token_label}"\n'
        f'pin_file = "{token.pin_file}"\nnamespace = "{token.namespace}"\n',
        encoding="utf-8",
    )
    for kind in KeyKind:
        assert main(["keys", "rotate", kind.value, "--config", str(config_file)]) == 0
    settings = KeyProviderSettings(type=ProviderType.PKCS11, pkcs11=token)

    # Source systems seal their answers to the gateway's current HPKE key, which now lives in
    # the token: its public half was exported to gateway/hpke.pub.pem by the rotation.
    opener = Keystore.open(keys, settings)
    answers = SubmissionGate(opener.hpke_keys)
    gateway_keys = GatewayKeys.from_public_key_file(GatewayKeyPaths.under(keys).hpke_pub)
    running: dict[str, RunningSource] = {}
    adapters: dict[str, Source] = {}
    for partner, partner_type in SOURCE_PARTNERS.items():
        backend = InMemoryBackend()
        backend.add(SOURCE_RECORDS[partner_type])
        running[partner] = await serve_source(
            backend, sealing=AnswerSealing(partner, gateway_keys)
        )
        adapters[partner_type] = GrpcSource(
            running[partner].address, partner_id=partner, answers=answers, clear_requests=True
        )
    registry = Path(tempfile.mkdtemp(prefix="ketenpoort-registry-"))
    gateway = await start_gateway(
        gateway_config(db_url, keys, registry_dir=registry, key_provider=settings),
        policy=shipped_policy,
        sources=adapters,
    )
    try:
        yield HsmGateway(gateway, keys, db_url, config_file)
    finally:
        await gateway.stop(grace=None)
        for source in running.values():
            await source.stop(None)
        opener.close()
        shutil.rmtree(registry, ignore_errors=True)


async def _disclose(hsm: HsmGateway) -> int:
    police, director = hsm.client("police"), hsm.client("zvh")
    async with police, director:
        case_id = await register(police)
        await to_case_meeting(director, case_id)
        opened = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
    # Every field came: the case file's (its data key unwrapped by the token) and the sources'
    # (their sealed answers opened through the token's X25519).
    assert opened.record.fields
    held = (common_pb2.AVAILABILITY_AVAILABLE, common_pb2.AVAILABILITY_NOT_HELD)
    assert all(f.availability in held for f in opened.record.fields)
    assert opened.values["police.incidents"] and opened.values["case.reason"]
    return hsm.gateway.log.count()


def _signer_pin(hsm: HsmGateway) -> str:
    keystore = hsm.gateway.keystore
    assert keystore is not None
    return key_pin(keystore.signing_keys().current.public_key())


async def test_a_gateway_with_its_keys_in_the_token_serves_and_its_log_verifies(
    hsm_gateway: HsmGateway,
) -> None:
    keystore = hsm_gateway.gateway.keystore
    assert keystore is not None
    assert {keystore.provider(kind).name for kind in KeyKind} == {"pkcs11"}
    records = await _disclose(hsm_gateway)
    checkpoint = hsm_gateway.gateway.log.checkpoint_now()
    assert checkpoint.key_id == _signer_pin(hsm_gateway)
    result = hsm_gateway.gateway.log.verify()
    assert result.ok and result.signatures_checked
    assert result.records_checked == records
    # The case's data key is wrapped under the token's key-encryption key.
    engine = create_engine_for(hsm_gateway.db_url)
    try:
        with engine.begin() as conn:
            stored = conn.execute(cases.select()).first()
    finally:
        engine.dispose()
    assert stored is not None
    assert keystore.current_kek.kek_id.encode() in bytes(stored.wrapped_data_key)[:32]


async def test_a_signing_key_rotated_between_checkpoints_leaves_the_log_verifying(
    hsm_gateway: HsmGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = hsm_gateway.gateway
    await _disclose(hsm_gateway)
    first = gateway.log.checkpoint_now()
    old_pin = first.key_id

    assert main(hsm_gateway.cli("keys", "rotate", "signing")) == 0
    assert gateway.refresh_keys() is True
    assert gateway.refresh_keys() is False

    records = await _disclose(hsm_gateway)
    second = gateway.log.checkpoint_now()
    assert second.tree_size == records > first.tree_size
    assert second.key_id == _signer_pin(hsm_gateway) != old_pin
    result = gateway.log.verify()
    assert result.ok and result.checkpoints_checked >= 2

    capsys.readouterr()
    verify = ["audit", "verify", "--db", hsm_gateway.db_url, "--keys", str(hsm_gateway.keys)]
    assert main(verify) == 0
    assert f"{records} records" in capsys.readouterr().out

    # Retired, the old key's public half stays trusted: the first checkpoint still verifies.
    keystore = gateway.keystore
    assert keystore is not None
    old_id = next(
        kid for kid, key in keystore.signing_keys().keys.items()
        if key_pin(key.public_key()) == old_pin
    )
    assert main(hsm_gateway.cli("keys", "retire", "signing", old_id, "--grace-s", "0")) == 0
    assert gateway.refresh_keys() is True
    assert old_id not in keystore.signing_keys().keys
    assert gateway.log.verify().ok
    assert main(verify) == 0


async def test_the_gateway_keys_are_signed_by_the_token_and_verify_with_the_public_files(
    hsm_gateway: HsmGateway,
) -> None:
    gateway = hsm_gateway.gateway
    keystore = gateway.keystore
    assert keystore is not None
    police = hsm_gateway.client("police")
    async with police:
        pins = police.credentials.gateway_trust.signing_keys
        token_key = keystore.signing_keys().current_id
        assert token_key in {key_id(k) for k in pins}  # exported to the key directory
        first = await police.gateway_keys()
        assert [s.key_id for s in first.signatures] == [token_key]
        statement = open_key_statement(
            first.statement, first.signatures, pins,
            origin=DEFAULT_LOG_ORIGIN, now=datetime.now(UTC),
        )
        assert statement.verified_by == token_key
        assert statement.keys[0].key_id == keystore.hpke_keys().current_id

        # Rotated in the token: both token keys sign, and the client seals to verified keys.
        assert main(hsm_gateway.cli("keys", "rotate", "signing")) == 0
        assert gateway.refresh_keys() is True
        new_key = keystore.signing_keys().current_id
        assert [s.key_id for s in (await police.gateway_keys()).signatures] == [
            new_key, token_key
        ]
        assert await register(police)
