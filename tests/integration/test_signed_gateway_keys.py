"""GetGatewayKeys over real gRPC with mutual TLS: partners take the gateway's HPKE keys only
from a statement signed with the gateway's log-signing keys.

A client pinned to the gateway's signing keys (read from the key directory) seals to verified
keys; an answer altered on the way, as a proxy terminating TLS would alter it, is refused
before anything is sealed; and a log-signing key rotated and retired with ``ketenpoort keys``
while the gateway serves moves the statement's signatures from the old key to both and then
to the new one, which clients that saw the overlap follow."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.client import PartnerClient
from adapters.gateway_keys import GatewayKeys, GatewayKeysError, GatewayTrust, KeyFetch
from adapters.gateway_trust import gateway_signing_pins
from gateway.api.v1 import exchange_pb2
from gateway.cli.demo_data import REASON, SUBJECT
from gateway.cli.main import main
from gateway.core import CompiledPolicy
from gateway.crypto.keyids import key_id
from gateway.formats.gateway_key_statement import open_key_statement
from gateway.formats.log_origin import DEFAULT_LOG_ORIGIN
from tests.integration.harness import Harness, running_harness
from tests.integration.helpers import register
from tests.integration.test_gateway_key_rotation_load import current_id, signing_ring, until

Answer = exchange_pb2.GetGatewayKeysResponse


def signers(response: Answer) -> list[str]:
    return [s.key_id for s in response.signatures]


def trusted_ids(keys: GatewayKeys) -> set[str]:
    return {key_id(k) for k in keys.statements.trusted}


class SentBoxes:
    """The gateway key ids a client's sealed registrations were sealed to, as sent."""

    def __init__(self, client: PartnerClient) -> None:
        self.key_ids: list[str] = []
        send = client.register_case_raw

        async def recording(
            request: exchange_pb2.RegisterCaseRequest, *, timeout: float = 10.0
        ) -> exchange_pb2.RegisterCaseResponse:
            self.key_ids.append(request.sealed.gateway_key_id)
            return await send(request, timeout=timeout)

        client.register_case_raw = recording  # type: ignore[method-assign]


async def test_a_pinned_client_seals_to_keys_the_gateway_signed(harness: Harness) -> None:
    police = harness.client("police")
    pins = police.credentials.gateway_trust.signing_keys
    assert pins and {key_id(k) for k in pins} == {key_id(k) for k in gateway_signing_pins(
        harness.keys)}
    response = await police.gateway_keys()
    statement = open_key_statement(
        response.statement, response.signatures, pins,
        origin=DEFAULT_LOG_ORIGIN, now=datetime.now(UTC),
    )
    assert statement.keys == tuple(response.keys)
    assert statement.keys[0].current and statement.keys[0].key_id == current_id(
        harness.keys, "hpke")
    assert statement.verified_by == current_id(harness.keys, "signing")
    # Signed once, served from memory.
    assert (await police.gateway_keys()).statement == response.statement

    sent = SentBoxes(police)
    assert await register(police)
    assert sent.key_ids == [statement.keys[0].key_id]
    await police.close()


def swapping(fetch: KeyFetch, alter: Callable[[Answer, bytes], None]) -> KeyFetch:
    """``fetch`` as seen through a proxy that puts its own X25519 key into the answer."""
    proxy_key = X25519PrivateKey.generate().public_key().public_bytes_raw()

    async def through_proxy() -> Answer:
        response = Answer()
        response.CopyFrom(await fetch())
        alter(response, proxy_key)
        return response

    return through_proxy


def in_clear(response: Answer, proxy_key: bytes) -> None:
    response.keys[0].public_key = proxy_key


def in_the_statement(response: Answer, proxy_key: bytes) -> None:
    in_clear(response, proxy_key)
    statement = exchange_pb2.GatewayKeyStatement.FromString(response.statement)
    statement.keys[0].public_key = proxy_key
    response.statement = statement.SerializeToString(deterministic=True)


def without_the_statement(response: Answer, proxy_key: bytes) -> None:
    in_clear(response, proxy_key)
    response.ClearField("statement")
    del response.signatures[:]


@pytest.mark.parametrize(
    ("alter", "reason"),
    [
        (in_clear, "differs from its signed statement"),
        (in_the_statement, "altered on the way"),
        (without_the_statement, "no signed key statement"),
    ],
)
async def test_a_key_swapped_on_the_way_is_refused_and_nothing_is_sealed_to_it(
    harness: Harness, alter: Callable[[Answer, bytes], None], reason: str
) -> None:
    fetching = harness.client("police")
    trust = fetching.credentials.gateway_trust
    proxied = GatewayKeys(swapping(fetching.gateway_keys, alter), trust=trust)
    police = harness.client("police", gateway_keys=proxied)
    sent = SentBoxes(police)
    records = harness.gateway.log.count()
    with pytest.raises(GatewayKeysError, match=reason):
        await police.register_case(SUBJECT, "code_rood", reason=REASON)
    assert sent.key_ids == []  # nothing sealed, nothing sent
    assert harness.gateway.log.count() == records

    # The same client through the gateway's own answer seals and is served.
    direct = harness.client("police", gateway_keys=GatewayKeys(fetching.gateway_keys, trust=trust))
    assert await register(direct)
    for client in (fetching, police, direct):
        await client.close()


async def test_a_signing_key_rotation_moves_the_statement_to_the_new_key(
    db_url: str, dev_keys: Path, tmp_path: Path, shipped_policy: CompiledPolicy
) -> None:
    keys = tmp_path / "keys"
    shutil.copytree(dev_keys, keys)
    async with running_harness(db_url, keys, shipped_policy) as harness:
        police = harness.client("police")
        old = current_id(keys, "signing")
        old_only = GatewayTrust.pinned(gateway_signing_pins(keys))
        assert [key_id(k) for k in old_only.signing_keys] == [old]
        # Clients pinned to the old key alone; max_age_s=0 fetches on every use.
        follower = GatewayKeys(police.gateway_keys, trust=old_only, max_age_s=0)
        missed = GatewayKeys(police.gateway_keys, trust=old_only, max_age_s=0)
        await follower.current()
        assert signers(await police.gateway_keys()) == [old]

        assert cli(keys, "rotate", "signing") == 0
        new = current_id(keys, "signing")
        await taken_up(harness, lambda: signing_ring(harness).current_id == new)
        assert signers(await police.gateway_keys()) == [new, old]
        await follower.current()
        assert trusted_ids(follower) == {old, new}

        assert cli(keys, "retire", "signing", old, "--grace-s", "0") == 0
        await taken_up(harness, lambda: old not in signing_ring(harness).keys)
        assert signers(await police.gateway_keys()) == [new]
        await follower.current()
        assert trusted_ids(follower) == {new}
        with pytest.raises(GatewayKeysError, match="current signing public key"):
            await missed.current()

        # Sealing goes on through the follower, and for a client pinned from the key directory.
        following = harness.client("police", gateway_keys=follower)
        assert await register(following)
        fresh = harness.client("police")
        assert [key_id(k) for k in fresh.credentials.gateway_trust.signing_keys] == [new]
        assert await register(fresh)
        for client in (police, following, fresh):
            await client.close()


def cli(keys: Path, *args: str) -> int:
    return main(["keys", *args, "--keys", str(keys)])


async def taken_up(harness: Harness, check: Callable[[], bool]) -> None:
    """Wake the gateway's key look (the re-wrap task's, as every few seconds) until ``check``."""
    task = harness.gateway.rewrap
    assert task is not None
    task.wake()
    await until(check)

