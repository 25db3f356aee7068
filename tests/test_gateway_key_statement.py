"""The signed statement of the gateway's HPKE keys: what verifies, and everything refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.api.v1 import exchange_pb2
from gateway.crypto.keyids import key_id
from gateway.formats.gateway_key_statement import (
    DEFAULT_MAX_STATEMENT_AGE_S,
    STATEMENT_LABEL,
    KeyStatementError,
    UntrustedStatement,
    check_origin,
    open_key_statement,
)
from gateway.formats.log_origin import DEFAULT_LOG_ORIGIN
from gateway.store.checkpoints import CheckpointSigner
from tests.key_statements import answer, hpke_ring, signing_ring

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def opened(
    response: exchange_pb2.GetGatewayKeysResponse,
    *trusted: Ed25519PrivateKey,
    now: datetime = NOW,
    origin: str = DEFAULT_LOG_ORIGIN,
) -> object:
    return open_key_statement(
        response.statement,
        response.signatures,
        [k.public_key() for k in trusted],
        origin=origin,
        now=now,
    )


def test_a_statement_signed_by_every_signing_key_verifies_with_any_of_them() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    hpke_old, hpke_new = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    response = answer(hpke_ring(hpke_old, hpke_new, current=1), signing_ring(old, new, current=1),
                      at=NOW)
    assert [s.key_id for s in response.signatures] == [
        key_id(new.public_key()), key_id(old.public_key())
    ]
    for trusted in (old, new):
        statement = open_key_statement(
            response.statement, response.signatures, [trusted.public_key()],
            origin=DEFAULT_LOG_ORIGIN, now=NOW,
        )
        assert statement.verified_by == key_id(trusted.public_key())
        assert statement.origin == DEFAULT_LOG_ORIGIN and statement.issued_at == NOW
        assert [(k.key_id, k.current) for k in statement.keys] == [
            (key_id(hpke_new.public_key()), True), (key_id(hpke_old.public_key()), False)
        ]
        assert statement.keys == tuple(response.keys)
        assert [key_id(k) for k in statement.signing_keys] == [
            key_id(new.public_key()), key_id(old.public_key())
        ]
    parsed = exchange_pb2.GatewayKeyStatement.FromString(response.statement)
    assert parsed.issued_at == "2025-03-01T12:00:00Z"
    assert [s.current for s in parsed.signing_keys] == [True, False]


def test_an_altered_statement_is_refused() -> None:
    signer = Ed25519PrivateKey.generate()
    response = answer(hpke_ring(X25519PrivateKey.generate()), signing_ring(signer), at=NOW)
    # A proxy's own key put into the signed statement.
    parsed = exchange_pb2.GatewayKeyStatement.FromString(response.statement)
    parsed.keys[0].public_key = X25519PrivateKey.generate().public_key().public_bytes_raw()
    swapped = exchange_pb2.GetGatewayKeysResponse(
        statement=parsed.SerializeToString(), signatures=response.signatures
    )
    with pytest.raises(KeyStatementError, match="altered on the way"):
        opened(swapped, signer)
    flipped = bytearray(response.statement)
    flipped[-1] ^= 1
    with pytest.raises(KeyStatementError, match="altered on the way"):
        opened(exchange_pb2.GetGatewayKeysResponse(
            statement=bytes(flipped), signatures=response.signatures), signer)


def test_a_signature_under_another_label_or_none_does_not_verify() -> None:
    signer = Ed25519PrivateKey.generate()
    response = answer(hpke_ring(X25519PrivateKey.generate()), signing_ring(signer), at=NOW)
    kid = key_id(signer.public_key())
    for message in (
        response.statement,
        b"ketenpoort/v1 gateway-keyz\n" + response.statement,
        b"ketenpoort/v2 gateway-keys\n" + response.statement,
    ):
        relabelled = exchange_pb2.GetGatewayKeysResponse(
            statement=response.statement,
            signatures=[
                exchange_pb2.StatementSignature(key_id=kid, signature=signer.sign(message))
            ],
        )
        with pytest.raises(KeyStatementError, match="altered"):
            opened(relabelled, signer)
    assert STATEMENT_LABEL == b"ketenpoort/v1 gateway-keys\n"


def test_a_statement_no_trusted_key_signed_is_refused_and_names_the_keys() -> None:
    gateway, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    response = answer(hpke_ring(X25519PrivateKey.generate()), signing_ring(stranger), at=NOW)
    with pytest.raises(UntrustedStatement) as err:
        opened(response, gateway)
    assert key_id(stranger.public_key()) in str(err.value)
    assert key_id(gateway.public_key()) in str(err.value)
    with pytest.raises(UntrustedStatement):
        opened(response)  # nothing trusted
    unsigned = exchange_pb2.GetGatewayKeysResponse(statement=response.statement)
    with pytest.raises(UntrustedStatement):
        opened(unsigned, gateway)


def test_an_answer_without_a_statement_is_refused() -> None:
    signer = Ed25519PrivateKey.generate()
    clear_only = answer(hpke_ring(X25519PrivateKey.generate()), signing_ring(signer), at=NOW)
    clear_only.ClearField("statement")
    with pytest.raises(KeyStatementError, match="no signed key statement"):
        opened(clear_only, signer)


def test_a_stale_or_future_statement_is_refused() -> None:
    signer = Ed25519PrivateKey.generate()
    response = answer(hpke_ring(X25519PrivateKey.generate()), signing_ring(signer), at=NOW)
    week = timedelta(seconds=DEFAULT_MAX_STATEMENT_AGE_S)
    opened(response, signer, now=NOW + week)
    with pytest.raises(KeyStatementError, match="too old"):
        opened(response, signer, now=NOW + week + timedelta(seconds=1))
    opened(response, signer, now=NOW - timedelta(minutes=4))
    with pytest.raises(KeyStatementError, match="check the clocks"):
        opened(response, signer, now=NOW - timedelta(minutes=6))


def test_a_statement_of_another_gateway_is_refused() -> None:
    signer = Ed25519PrivateKey.generate()
    acceptance = answer(hpke_ring(X25519PrivateKey.generate()), signing_ring(signer),
                        origin="acceptance.zvh.example/log", at=NOW)
    with pytest.raises(KeyStatementError, match="acceptance.zvh.example/log"):
        opened(acceptance, signer)
    assert opened(acceptance, signer, origin="acceptance.zvh.example/log")


def test_every_listed_signing_key_must_have_signed() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    response = answer(hpke_ring(X25519PrivateKey.generate()), signing_ring(old, new), at=NOW)
    only_old = exchange_pb2.GetGatewayKeysResponse(
        statement=response.statement,
        signatures=[s for s in response.signatures if s.key_id == key_id(old.public_key())],
    )
    with pytest.raises(KeyStatementError, match=f"{key_id(new.public_key())} is listed"):
        opened(only_old, old)


def test_the_label_origin_is_refused_so_no_checkpoint_reads_as_a_statement() -> None:
    with pytest.raises(ValueError, match="reserved"):
        check_origin("ketenpoort/v1 gateway-keys")
    with pytest.raises(ValueError):
        check_origin("two\nlines")
    # A checkpoint signed by the same key does not verify as a statement.
    signer = Ed25519PrivateKey.generate()
    note = CheckpointSigner(signer, DEFAULT_LOG_ORIGIN).sign(1, b"\x00" * 32, NOW).note
    text = note.partition("\n\n")[0] + "\n"
    forged = exchange_pb2.GetGatewayKeysResponse(
        statement=text.encode(),
        signatures=[exchange_pb2.StatementSignature(
            key_id=key_id(signer.public_key()), signature=signer.sign(text.encode()))],
    )
    with pytest.raises(KeyStatementError):
        opened(forged, signer)
