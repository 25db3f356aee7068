"""GetGatewayKeys' answer is signed when the key rings change or it grows old, not per call."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.broker.signed_gateway_keys import SignedGatewayKeys
from gateway.crypto.keyids import key_id
from gateway.crypto.local_keys import LocalSigningKey
from gateway.crypto.provider import HpkeRecipient, KeyRing, LogSigningKey
from gateway.formats.gateway_key_statement import open_key_statement
from gateway.formats.log_origin import DEFAULT_LOG_ORIGIN
from tests.key_statements import hpke_ring

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


class CountingKey:
    """A log-signing key that counts its signatures and can be made to fail, as a token that
    is away does."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._inner = LocalSigningKey(key)
        self.signed = 0
        self.failing = False

    @property
    def key_id(self) -> str:
        return self._inner.key_id

    def public_key(self) -> Ed25519PublicKey:
        return self._inner.public_key()

    def sign(self, message: bytes) -> bytes:
        if self.failing:
            raise OSError("token not present")
        self.signed += 1
        return self._inner.sign(message)


class Gateway:
    def __init__(self) -> None:
        self.now = NOW
        self.hpke = hpke_ring(X25519PrivateKey.generate())
        self.first = CountingKey(Ed25519PrivateKey.generate())
        self.signing: KeyRing[LogSigningKey] = KeyRing(
            self.first.key_id, {self.first.key_id: self.first}
        )
        self.keys = SignedGatewayKeys(
            lambda: self.hpke, lambda: self.signing, DEFAULT_LOG_ORIGIN, clock=lambda: self.now
        )

    def rotate_signing(self) -> CountingKey:
        new = CountingKey(Ed25519PrivateKey.generate())
        self.signing = KeyRing(new.key_id, {**self.signing.keys, new.key_id: new})
        return new

    def rotate_hpke(self) -> None:
        keys: dict[str, HpkeRecipient] = dict(self.hpke.keys)
        added = hpke_ring(X25519PrivateKey.generate())
        keys.update(added.keys)
        self.hpke = KeyRing(added.current_id, keys)


async def test_the_answer_is_signed_once_and_served_from_memory() -> None:
    g = Gateway()
    answers = await asyncio.gather(*(g.keys.response() for _ in range(20)))
    assert all(a is answers[0] for a in answers)
    assert g.first.signed == 1
    g.now += timedelta(minutes=59)
    assert await g.keys.response() is answers[0]
    statement = open_key_statement(
        answers[0].statement, answers[0].signatures, [g.first.public_key()],
        origin=DEFAULT_LOG_ORIGIN, now=g.now,
    )
    assert statement.keys == tuple(answers[0].keys)
    assert [k.key_id for k in statement.keys] == [g.hpke.current_id]


async def test_a_key_change_or_an_hour_signs_again() -> None:
    g = Gateway()
    first = await g.keys.response()
    g.rotate_hpke()
    after_hpke = await g.keys.response()
    assert after_hpke is not first and after_hpke.keys[0].key_id == g.hpke.current_id
    new = g.rotate_signing()
    after_signing = await g.keys.response()
    assert [s.key_id for s in after_signing.signatures] == [new.key_id, g.first.key_id]
    assert (g.first.signed, new.signed) == (3, 1)

    g.now += timedelta(hours=1)
    hourly = await g.keys.response()
    assert hourly is not after_signing and (g.first.signed, new.signed) == (4, 2)
    g.now -= timedelta(minutes=5)  # a clock set back
    assert await g.keys.response() is not hourly


async def test_a_token_that_is_away_leaves_the_last_statement_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    g = Gateway()
    signed = await g.keys.response()
    g.first.failing = True
    g.now += timedelta(hours=2)
    with caplog.at_level(logging.WARNING, "ketenpoort.keys"):
        assert await g.keys.response() is signed
    assert "OSError" in caplog.text and "token not present" not in caplog.text
    g.now += timedelta(seconds=30)
    assert await g.keys.response() is signed  # no new try before retry_after_s
    g.first.failing = False
    g.now += timedelta(seconds=31)
    assert await g.keys.response() is not signed

    # After a change of keys the old statement is not right any more: the call fails.
    g.first.failing = True
    g.rotate_hpke()
    with pytest.raises(OSError):
        await g.keys.response()


def test_the_origin_must_be_one_line_and_not_the_label() -> None:
    g = Gateway()
    for origin in ("", "a\nb", "ketenpoort/v1 gateway-keys"):
        with pytest.raises(ValueError):
            SignedGatewayKeys(lambda: g.hpke, lambda: g.signing, origin)
    assert key_id(g.first.public_key()) == g.first.key_id
