"""Sealing both ways over real gRPC with mutual TLS: registrations, case-file entries and
source answers sealed to the gateway's HPKE key ring, triage answers sealed to the caller.

The gateway and every source system here speak mutual TLS with the development CA; the
gateway's key ring is the keystore's, or one built in the test to stand for a rotation.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf.message import Message

from adapters.client import PartnerClient, PartnerCredentials
from adapters.gateway_keys import GatewayKeys, current_key
from adapters.sealed import open_triage
from adapters.source_server import AnswerSealing, InMemoryBackend, RunningSource, serve_source
from adapters.submitting import REASON_METADATA_KEY, is_unknown_gateway_key, new_request_id
from gateway.api.v1 import common_pb2, exchange_pb2, source_pb2, source_pb2_grpc
from gateway.broker.log_events import RecordKind
from gateway.broker.opened_content import BOTH_GIVEN
from gateway.broker.sources import Source
from gateway.broker.submission_gate import NOT_OPENED, SubmissionGate
from gateway.cli.demo_data import GOAL, REASON, SOURCE_RECORDS, SUBJECT
from gateway.core import CompiledPolicy
from gateway.crypto.errors import SealOpenError
from gateway.crypto.keyids import key_id
from gateway.crypto.keystore import Keystore
from gateway.crypto.local_keys import LocalHpkeRecipient
from gateway.crypto.provider import HpkeRecipient, KeyRing
from gateway.crypto.submissions import GatewayPublicKey, SubmissionBinding, seal_submission
from gateway.formats.sealed_content import sealed_submission_message
from gateway.server.app import Gateway, gateway_client_tls, start_gateway
from gateway.sources.grpc_source import GrpcSource
from tests.integration.harness import ROLES, SOURCE_PARTNERS, gateway_config
from tests.integration.helpers import accept
from tests.key_statements import answer as signed_answer

REGISTER = "ExchangeService/RegisterCase"
ADD = "ExchangeService/AddToCaseFile"
NOTE = "Huisbezoek 12 november: kinderen bang, partner wil aangifte doen"
SEALED = "sealed"
CLEAR = "clear"
Ring = Callable[[], KeyRing[HpkeRecipient]]


@dataclass
class Running:
    gateway: Gateway
    keys: Path
    sources: dict[str, RunningSource]

    @property
    def address(self) -> str:
        return f"localhost:{self.gateway.port}"

    def client(self, partner: str, **kw: object) -> PartnerClient:
        creds = PartnerCredentials.from_key_dir(self.keys, partner)
        return PartnerClient(self.address, creds, role=ROLES[partner], **kw)  # type: ignore[arg-type]


@asynccontextmanager
async def sealed_gateway(
    tmp_path: Path,
    keys: Path,
    policy: CompiledPolicy,
    *,
    require_sealed: bool = True,
    hpke_keys: Ring | None = None,
    answering: Mapping[str, AnswerSealing | None] | None = None,
) -> AsyncIterator[Running]:
    """A gateway on mutual TLS with a source system per source partner, also on mutual TLS.

    A source seals its answers to the gateway's key file as its own partner id, unless
    ``answering`` gives it another sealing, or None for clear answers."""
    ring = hpke_keys or Keystore.open(keys).hpke_keys
    file_key = GatewayKeys.from_public_key_file(keys / "gateway" / "hpke.pub.pem")
    answers = SubmissionGate(ring, require_sealed=require_sealed)
    tls = gateway_client_tls(keys)
    running: dict[str, RunningSource] = {}
    adapters: dict[str, Source] = {}
    for partner, partner_type in SOURCE_PARTNERS.items():
        backend = InMemoryBackend()
        backend.add(SOURCE_RECORDS[partner_type])
        own = PartnerCredentials.from_key_dir(keys, partner).tls
        assert own is not None and own.key_pem and own.cert_pem
        creds = grpc.ssl_server_credentials(
            [(own.key_pem, own.cert_pem)], root_certificates=own.ca_pem, require_client_auth=True
        )
        sealing = (answering or {}).get(partner, AnswerSealing(partner, file_key))
        running[partner] = await serve_source(
            backend, credentials=creds, sealing=sealing, clear_answers=sealing is None
        )
        # Asked in clear: what is sealed here is what comes back (sealed requests have
        # their own tests, test_sealed_source_requests.py).
        adapters[partner_type] = GrpcSource(
            f"localhost:{running[partner].port}",
            tls,
            partner_id=partner,
            answers=answers,
            clear_requests=True,
        )
    registry = Path(tempfile.mkdtemp(prefix="ketenpoort-registry-"))
    config = gateway_config(
        f"sqlite:///{tmp_path / 'gateway.db'}",
        keys,
        registry_dir=registry,
        require_sealed_submissions=require_sealed,
    )
    gateway = await start_gateway(config, policy=policy, sources=adapters, hpke_keys=ring)
    try:
        yield Running(gateway, keys, running)
    finally:
        await gateway.stop(grace=None)
        for source in running.values():
            await source.stop(None)
        shutil.rmtree(registry, ignore_errors=True)


def seal_for(
    content: Message, key: GatewayPublicKey, *, operation: str, sender: str, request_id: str
) -> common_pb2.SealedSubmission:
    binding = SubmissionBinding(operation, sender, request_id)
    return sealed_submission_message(seal_submission(content.SerializeToString(), key, binding))


def registration() -> exchange_pb2.RegisterCaseContent:
    return exchange_pb2.RegisterCaseContent(
        subject=SUBJECT, case_type="code_rood", reason=REASON, goal=GOAL, invitees=["zvh"]
    )


def reasons(exc: grpc.aio.AioRpcError) -> list[str]:
    trailing = exc.trailing_metadata()
    assert isinstance(trailing, grpc.aio.Metadata)
    return [str(v) for v in trailing.get_all(REASON_METADATA_KEY)]


async def to_case_meeting(director: PartnerClient, case_id: str) -> None:
    await accept(director, case_id)
    await director.change_phase(case_id, "registration", "triage")
    await director.change_phase(case_id, "triage", "case_meeting")


def file_ring(keys: Path, *extra: X25519PrivateKey, current: int = 0) -> KeyRing[HpkeRecipient]:
    """The keystore's current key and ``extra`` keys; ``current`` indexes (file key first)."""
    recipients: list[HpkeRecipient] = [
        Keystore.open(keys).hpke_keys().current,
        *(LocalHpkeRecipient(k) for k in extra),
    ]
    by_id: dict[str, HpkeRecipient] = {r.key_id: r for r in recipients}
    return KeyRing(recipients[current].key_id, by_id)


async def test_a_sealed_registration_lands_in_the_case_file_and_is_logged(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    async with sealed_gateway(tmp_path, dev_keys, shipped_policy) as g:
        police, director = g.client("police"), g.client("zvh")
        # The gateway takes nothing in clear, so both went in sealed.
        reg = await police.register_case(
            SUBJECT, "code_rood", reason=REASON, goal=GOAL, invitees=["zvh", "ggz"]
        )
        assert set(reg.participants) == {"police", "zvh", "ggz"}
        assert (await director.add_to_case_file(reg.case_id, "case.notes", NOTE)).startswith("e_")
        await to_case_meeting(director, reg.case_id)
        answer = await director.request_disclosure(reg.case_id, "analysis_and_plan", "case_meeting")

        expected = {
            "subject.bsn": SUBJECT.bsn,
            "subject.name": SUBJECT.name,
            "case.reason": REASON,
            "case.goal": GOAL,
            "case.notes": NOTE,
        }
        disclosed = {
            f.field: f.value
            for f in answer.record.fields
            if f.outcome == common_pb2.OUTCOME_DISCLOSED and f.field in expected
        }
        assert {"subject.name", "case.reason", "case.notes"} <= set(disclosed)
        assert all(value == expected[name] for name, value in disclosed.items())

        records = g.gateway.log.list_records(case_id=reg.case_id)
        kinds = [(r.event.kind.value, r.event.partner_id) for r in records]
        assert kinds[0] == ("registration", "police")
        assert ("case_note", "zvh") in kinds
        for record in records:
            shown = str(record.event)
            assert SUBJECT.name not in shown and SUBJECT.bsn not in shown and NOTE not in shown


async def test_a_sealed_box_moved_to_another_operation_sender_or_request_does_not_open(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    async with sealed_gateway(tmp_path, dev_keys, shipped_policy) as g:
        police = g.client("police")
        key = current_key(await police.gateway_keys())
        request_id = new_request_id()

        async def register(
            sealed: common_pb2.SealedSubmission, rid: str = request_id
        ) -> grpc.aio.AioRpcError:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await police.register_case_raw(
                    exchange_pb2.RegisterCaseRequest(sealed=sealed, request_id=rid)
                )
            return err.value

        moved = [
            # sealed for the case-file operation, sent as a registration
            await register(seal_for(registration(), key, operation=ADD, sender="police",
                                    request_id=request_id)),
            # sealed by (or for) another partner, sent by the police
            await register(seal_for(registration(), key, operation=REGISTER, sender="ggz",
                                    request_id=request_id)),
            # replayed under another request id
            await register(
                seal_for(registration(), key, operation=REGISTER, sender="police",
                         request_id=request_id),
                rid=new_request_id(),
            ),
        ]
        for err in moved:
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.details() == NOT_OPENED

        good = seal_for(registration(), key, operation=REGISTER, sender="police",
                        request_id=request_id)
        flipped = bytearray(good.ciphertext)
        flipped[40] ^= 0x01
        tampered = common_pb2.SealedSubmission()
        tampered.CopyFrom(good)
        tampered.ciphertext = bytes(flipped)
        err = await register(tampered)
        assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, NOT_OPENED)
        err = await register(good, rid="")
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as both:
            await police.register_case_raw(
                exchange_pb2.RegisterCaseRequest(
                    subject=SUBJECT, sealed=good, request_id=request_id
                )
            )
        assert (both.value.code(), both.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            BOTH_GIVEN,
        )

        reg = await police.register_case_raw(
            exchange_pb2.RegisterCaseRequest(sealed=good, request_id=request_id)
        )
        registrations = g.gateway.log.list_records(
            partner_id="police", kinds=[RecordKind.REGISTRATION]
        )
        assert [r.event.case_id for r in registrations] == [reg.case_id]

        # A case-file entry sealed for one case's request cannot be resent as another request.
        entry = exchange_pb2.AddToCaseFileContent(
            case_id=reg.case_id, field="case.notes", text=NOTE
        )
        entry_id = new_request_id()
        box = seal_for(entry, key, operation=ADD, sender="police", request_id=entry_id)
        for sealed, rid in (
            (box, new_request_id()),
            (seal_for(entry, key, operation=REGISTER, sender="police", request_id=entry_id),
             entry_id),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err_add:
                await police.add_to_case_file_raw(
                    exchange_pb2.AddToCaseFileRequest(sealed=sealed, request_id=rid)
                )
            assert err_add.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err_add.value.details() == NOT_OPENED
        added = await police.add_to_case_file_raw(
            exchange_pb2.AddToCaseFileRequest(sealed=box, request_id=entry_id)
        )
        assert added.entry_id.startswith("e_")


async def test_clear_submissions_are_refused_only_when_sealing_is_required(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    async with sealed_gateway(tmp_path / "required", dev_keys, shipped_policy) as g:
        clear = g.client("police", seal_submissions=False)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await clear.register_case(SUBJECT, "code_rood", reason=REASON, invitees=["zvh"])
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reasons(err.value) == ["sealing_required"]
        sealing = g.client("police")
        case_id = (await sealing.register_case(SUBJECT, "code_rood", reason=REASON)).case_id
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await clear.add_to_case_file(case_id, "case.notes", NOTE)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert g.gateway.log.list_records(kinds=[RecordKind.CASE_NOTE]) == []

    (tmp_path / "allowed").mkdir()
    async with sealed_gateway(
        tmp_path / "allowed", dev_keys, shipped_policy, require_sealed=False
    ) as g:
        clear = g.client("police", seal_submissions=False)
        reg = await clear.register_case(SUBJECT, "code_rood", reason=REASON, invitees=["zvh"])
        assert (await clear.add_to_case_file(reg.case_id, "case.notes", NOTE)).startswith("e_")


async def test_a_source_answer_is_sealed_and_opened(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    file_key = GatewayKeys.from_public_key_file(dev_keys / "gateway" / "hpke.pub.pem")
    answering: dict[str, AnswerSealing | None] = {
        "om": None,  # answers in clear: no answer where sealing is required
        "probation": AnswerSealing("police", file_key),  # claims to be another partner's system
    }
    async with sealed_gateway(tmp_path, dev_keys, shipped_policy, answering=answering) as g:
        police, director = g.client("police"), g.client("zvh")
        case_id = (await police.register_case(SUBJECT, "code_rood", reason=REASON,
                                              invitees=["zvh"])).case_id
        await to_case_meeting(director, case_id)
        answer = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
        assert set(answer.response.unavailable_sources) == {"om", "probation"}
        released = [
            f for f in answer.response.fields
            if f.source == "police" and f.outcome == common_pb2.OUTCOME_DISCLOSED
        ]
        assert released
        for f in released:
            assert answer.values[f.field] == SOURCE_RECORDS["police"].fields[f.field]
        assert g.sources["police"].servicer.seen[-1].disclosure_id == answer.response.disclosure_id

        # A sealing source answers nothing to a request it could not bind a seal to.
        channel = grpc.aio.secure_channel(
            f"localhost:{g.sources['police'].port}",
            grpc.ssl_channel_credentials(
                root_certificates=gateway_client_tls(dev_keys).ca_pem,
                private_key=gateway_client_tls(dev_keys).key_pem,
                certificate_chain=gateway_client_tls(dev_keys).cert_pem,
            ),
        )
        stub = source_pb2_grpc.SourceServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.FetchFields(
                source_pb2.FetchFieldsRequest(subject=SUBJECT, fields=["police.incidents"]),
                timeout=5,
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        reply = await stub.FetchFields(
            source_pb2.FetchFieldsRequest(
                subject=SUBJECT, fields=["police.incidents"], request_id="f_probe"
            ),
            timeout=5,
        )
        assert not reply.values and reply.sealed.ciphertext
        assert SOURCE_RECORDS["police"].fields["police.incidents"].encode() not in (
            reply.SerializeToString()
        )
        await channel.close(None)


async def test_a_rotated_key_still_opens_old_boxes_and_the_new_one_is_advertised(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    new = X25519PrivateKey.generate()
    old_id = Keystore.open(dev_keys).hpke_keys().current_id
    rings = {"now": file_ring(dev_keys, new, current=1)}
    async with sealed_gateway(
        tmp_path, dev_keys, shipped_policy, hpke_keys=lambda: rings["now"]
    ) as g:
        police = g.client("police")
        advertised = (await police.gateway_keys()).keys
        assert [(k.key_id, k.current) for k in advertised] == [
            (key_id(new.public_key()), True),
            (old_id, False),
        ]
        assert advertised[0].public_key == LocalHpkeRecipient(new).public_key().public_bytes_raw()
        assert current_key(await police.gateway_keys()).key_id == key_id(new.public_key())

        # A partner that still seals to the old key is served, and so are sources that do.
        old = GatewayKeys.from_public_key_file(dev_keys / "gateway" / "hpke.pub.pem")
        stale_client = g.client("police", gateway_keys=old)
        case_id = (await stale_client.register_case(SUBJECT, "code_rood", reason=REASON,
                                                    invitees=["zvh"])).case_id
        assert (await police.register_case(SUBJECT, "code_rood", reason=REASON)).case_id
        director = g.client("zvh")
        await to_case_meeting(director, case_id)
        answer = await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
        assert not answer.response.incomplete

        # Retired: the old key opens nothing any more, and says so in a way a client acts on.
        rings["now"] = KeyRing(key_id(new.public_key()),
                               {key_id(new.public_key()): LocalHpkeRecipient(new)})
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stale_client.add_to_case_file(case_id, "case.notes", NOTE)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert is_unknown_gateway_key(err.value)
        assert "GetGatewayKeys" in (err.value.details() or "")

        # A client whose cached key was retired fetches the keys once more and resends.
        fetched: list[str] = []
        fetching = g.client("police")

        async def fetch() -> exchange_pb2.GetGatewayKeysResponse:
            response = await fetching.gateway_keys()
            if not fetched:  # the first fetch happened before the rotation: the old key
                before = Keystore.open(dev_keys)
                response = signed_answer(before.hpke_keys(), before.signing_keys())
            fetched.append(current_key(response).key_id)
            return response

        pinned = GatewayKeys(fetch, trust=fetching.credentials.gateway_trust)
        retrying = g.client("police", gateway_keys=pinned)
        assert (await retrying.add_to_case_file(case_id, "case.notes", NOTE)).startswith("e_")
        assert fetched == [old_id, key_id(new.public_key())]


async def test_a_triage_answer_is_sealed_to_the_caller_and_opened_by_the_client(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> None:
    async with sealed_gateway(tmp_path, dev_keys, shipped_policy) as g:
        police, director = g.client("police"), g.client("zvh")
        case_id = (await police.register_case(SUBJECT, "code_rood", reason=REASON,
                                              invitees=["zvh"])).case_id
        await accept(director, case_id)
        await director.change_phase(case_id, "registration", "triage")

        raw = await director.triage_raw(case_id)
        assert raw.HasField("sealed") and not raw.hits and not raw.known_anywhere
        assert raw.sealed.recipient_key_id == director.credentials.hpke_key_id
        assert b"suspect" not in raw.SerializeToString()

        opened = await director.triage(case_id)
        hits = {h.partner_type: h for h in opened.hits}
        assert set(hits) == set(SOURCE_RECORDS)
        assert all(h.answered and h.known for h in hits.values())
        assert opened.known_anywhere and not opened.incomplete and opened.log_seq > 0

        zvh_key = director.credentials.hpke_key
        for key, recipient, purpose in (
            (g.client("ggz").credentials.hpke_key, "zvh", "triage"),
            (zvh_key, "ggz", "triage"),
            (zvh_key, "zvh", "analysis_and_plan"),
        ):
            with pytest.raises(SealOpenError):
                open_triage(raw, key, recipient_id=recipient, purpose=purpose)
        moved = exchange_pb2.TriageResponse()
        moved.CopyFrom(raw)
        moved.triage_id = "t_" + "0" * 32
        with pytest.raises(SealOpenError):
            open_triage(moved, zvh_key, recipient_id="zvh", purpose="triage")

        # Outside the case there is no answer at all, sealed or not.
        with pytest.raises(grpc.aio.AioRpcError) as outside:
            await g.client("municipality").triage(case_id)
        assert outside.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_no_submitted_or_fetched_value_appears_in_server_log_lines(
    tmp_path: Path,
    dev_keys: Path,
    shipped_policy: CompiledPolicy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    file_key = GatewayKeys.from_public_key_file(dev_keys / "gateway" / "hpke.pub.pem")
    answering: dict[str, AnswerSealing | None] = {
        "probation": AnswerSealing("police", file_key)
    }
    async with sealed_gateway(tmp_path, dev_keys, shipped_policy, answering=answering) as g:
        police, director = g.client("police"), g.client("zvh")
        case_id = (await police.register_case(SUBJECT, "code_rood", reason=REASON, goal=GOAL,
                                              invitees=["zvh"])).case_id
        await director.add_to_case_file(case_id, "case.notes", NOTE)
        await accept(director, case_id)
        await director.change_phase(case_id, "registration", "triage")
        await director.triage(case_id)
        await director.change_phase(case_id, "triage", "case_meeting")
        await police.request_disclosure(case_id, "analysis_and_plan", "case_meeting")
        key = current_key(await police.gateway_keys())
        for sender, rid in (("ggz", "r_1"), ("police", "")):
            with pytest.raises(grpc.aio.AioRpcError):
                await police.register_case_raw(exchange_pb2.RegisterCaseRequest(
                    sealed=seal_for(registration(), key, operation=REGISTER, sender=sender,
                                    request_id="r_1"),
                    request_id=rid,
                ))
        with pytest.raises(grpc.aio.AioRpcError):
            await g.client("police", seal_submissions=False).add_to_case_file(
                case_id, "case.notes", NOTE
            )

    secrets = [SUBJECT.bsn, SUBJECT.name, SUBJECT.address, REASON, GOAL, NOTE]
    secrets += [v for record in SOURCE_RECORDS.values() for v in record.fields.values()
                if len(v) >= 8]
    lines = [r.getMessage() for r in caplog.records]
    # The refusals were logged (so there were lines to leak into), by partner and operation.
    assert "a sealed ExchangeService/RegisterCase from police did not open" in lines
    assert any("SourceService/FetchFields answer of probation's source was refused" in line
               for line in lines)
    for line in lines:
        for secret in secrets:
            assert secret not in line
