"""A partner rolls over its token key, its sealing key and its client certificate while its
systems keep calling: no call is lost, every answer opens, and the log accounts for each."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.client import PartnerClient, PartnerCredentials
from adapters.sealed import open_disclosure
from adapters.source_server import SourceAnswerSigner
from adapters.tokens import certificate_thumbprint
from gateway.api.v1 import exchange_pb2
from gateway.broker.log_events import RecordKind
from gateway.cli.main import main
from gateway.crypto.keyids import key_id
from tests.integration.harness import Harness
from tests.integration.helpers import register, to_case_meeting

WORKERS = 6


class Rolling:
    """The partner system's current credentials, swapped while workers call."""

    def __init__(self, harness: Harness, creds: PartnerCredentials) -> None:
        self.harness = harness
        self.client = PartnerClient(harness.address, creds, role="chain_partner")
        self.retired: list[PartnerClient] = []
        self.private_keys = {creds.hpke_key_id: creds.hpke_key}

    def swap(self, creds: PartnerCredentials) -> None:
        self.retired.append(self.client)
        self.private_keys[creds.hpke_key_id] = creds.hpke_key
        self.client = PartnerClient(self.harness.address, creds, role="chain_partner")

    async def close(self) -> None:
        for client in (self.client, *self.retired):
            await client.close()


async def test_partner_rotations_under_load_lose_no_call(harness: Harness, tmp_path: Path) -> None:
    police, director = harness.client("police"), harness.client("zvh")
    case_id = await register(police, invitees=("zvh", "ggz"))
    await to_case_meeting(director, case_id)
    rolling = Rolling(harness, harness.credentials("ggz"))
    stop = asyncio.Event()
    answers: list[exchange_pb2.DisclosureResponse] = []
    errors: list[BaseException] = []

    async def worker() -> None:
        request = exchange_pb2.DisclosureRequest(
            case_id=case_id, purpose="analysis_and_plan", phase="case_meeting"
        )
        while not stop.is_set():
            try:
                answers.append(await rolling.client.request_disclosure_raw(request))
            except Exception as exc:  # every failure is a lost call
                errors.append(exc)

    workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
    await _until(lambda: len(answers) >= 20)

    # 1. Token key: register the new one beside the old, switch (the partner's source signs
    # its answers with it too), then revoke the old.
    old = rolling.client.credentials
    new_token = Ed25519PrivateKey.generate()
    assert await _cli(harness, "rotate", "ggz", "--token-key", _pem(tmp_path, new_token)) == 0
    assert await harness.gateway.reload_registry() == "applied"
    rolled = replace(old, token_key=new_token, token_key_id=key_id(new_token.public_key()))
    rolling.swap(rolled)
    source = harness.sources["ggz"].servicer
    assert source.sealing is not None
    source.sealing = replace(
        source.sealing, signer=SourceAnswerSigner(new_token, rolled.token_key_id)
    )
    mark = len(answers)
    await _until(lambda: len(answers) >= mark + 20)
    assert await _cli(harness, "revoke", "ggz", "--key", old.token_key_id) == 0

    # 2. Sealing key: current at once; answers sealed to the old key still open on the side
    # that kept it. As docs/partners-and-tokens.md says, the partner's source system is given
    # the new private key before the rotation: requests to it are sealed to the new key too.
    new_hpke = X25519PrivateKey.generate()
    requests = harness.sources["ggz"].servicer.requests
    assert requests is not None
    requests.keys.add(new_hpke)
    assert await _cli(harness, "rotate", "ggz", "--sealing-key", _pem(tmp_path, new_hpke)) == 0
    assert await harness.gateway.reload_registry() == "applied"
    current = rolling.client.credentials
    rolling.swap(replace(current, hpke_key=new_hpke, hpke_key_id=key_id(new_hpke.public_key())))
    mark = len(answers)
    await _until(lambda: len(answers) >= mark + 20)

    # 3. Client certificate: register the new one, reconnect with it, move the partner's
    # source (which presents the same certificate) to it, then revoke the old one.
    tls = harness.new_client_certificate("ggz")
    assert tls.cert_pem is not None
    cert_file = tmp_path / "ggz-new.pem"
    cert_file.write_bytes(tls.cert_pem)
    assert await _cli(harness, "rotate", "ggz", "--certificate", str(cert_file)) == 0
    assert await harness.gateway.reload_registry() == "applied"
    current = rolling.client.credentials
    assert current.tls is not None and current.tls.cert_pem is not None
    old_thumbprint = certificate_thumbprint(current.tls.cert_pem)
    rolling.swap(replace(current, tls=tls))
    mark = len(answers)
    await _until(lambda: len(answers) >= mark + 20)
    moved_at = len(answers)
    await harness.restart_source("ggz", tls)
    # The gateway's pin on the old certificate fails once; it reads the new one and pins it.
    await _until(lambda: any(not a.incomplete for a in answers[moved_at + WORKERS :]))
    settled_at = len(answers)
    assert await _cli(harness, "revoke", "ggz", "--certificate", old_thumbprint) == 0
    mark = len(answers)
    await _until(lambda: len(answers) >= mark + 20)

    stop.set()
    await asyncio.gather(*workers)
    await rolling.close()
    await police.close()
    await director.close()

    assert errors == []
    # No source was ever asked with a key it did not hold, nor answered with a key the gateway
    # did not accept: every answer is complete, but those whose source call met the moment
    # the source system came back with its new certificate (its address was briefly closed).
    moving = range(moved_at, settled_at + WORKERS)
    assert [i for i, a in enumerate(answers) if a.incomplete and i not in moving] == []
    sealed_to = {a.sealed.recipient_key_id for a in answers}
    assert sealed_to == set(rolling.private_keys)  # both sealing keys were used
    for answer in answers:
        record = open_disclosure(
            answer, rolling.private_keys[answer.sealed.recipient_key_id],
            recipient_id="ggz", purpose="analysis_and_plan",
        )
        assert record.fields
    log = harness.gateway.log
    disclosures = log.list_records(kinds=[RecordKind.DISCLOSURE], partner_id="ggz", limit=1000)
    assert {r.event.disclosure_id for r in disclosures} == {a.disclosure_id for a in answers}
    assert log.list_records(kinds=[RecordKind.AUTH_REFUSAL]) == []
    assert log.verify().ok


async def _until(condition: object, timeout: float = 30.0) -> None:
    assert callable(condition)
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "load stalled"
        await asyncio.sleep(0.02)


async def _cli(harness: Harness, *args: str) -> int:
    # An operator's command is a process of its own. Here gateway, sources and partners share
    # one event loop: run on it, the command would stop them all while it opens the database
    # (up to a second on a loaded PostgreSQL), and source calls in flight would miss their
    # deadline. So it runs in a thread, beside them, as it does beside a real gateway.
    argv = ["partner", *args, "--registry", str(harness.registry), "--db", harness.db_url]
    return await asyncio.to_thread(main, argv)


def _pem(directory: Path, key: Ed25519PrivateKey | X25519PrivateKey) -> str:
    path = directory / f"{key_id(key.public_key())}.pub.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return str(path)
