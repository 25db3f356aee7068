"""The partner side takes the gateway's keys only from a statement signed by a key it trusts,
and follows a rotation of the gateway's log-signing key through the statements it verified."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.gateway_keys import GatewayKeys, GatewayKeysError, GatewayTrust
from adapters.gateway_trust import TrustedStatements, gateway_signing_pins
from gateway.api.v1 import exchange_pb2
from gateway.crypto.file_provider import FileKeyProvider
from gateway.crypto.keyids import key_id
from gateway.crypto.provider import KeyKind
from tests.key_statements import answer, hpke_ring, signing_ring

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def ids(trusted: object) -> set[str]:
    assert isinstance(trusted, tuple)
    return {key_id(k) for k in trusted}


async def test_a_pinned_client_seals_to_the_key_of_a_verified_statement() -> None:
    signer, hpke = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    response = answer(hpke_ring(hpke), signing_ring(signer))
    keys = GatewayKeys(fetching(response), trust=GatewayTrust.pinned([signer.public_key()]))
    assert (await keys.current()).key_id == key_id(hpke.public_key())


async def test_without_pins_fetched_keys_are_refused_unless_tls_alone_is_chosen() -> None:
    signer, hpke = Ed25519PrivateKey.generate(), X25519PrivateKey.generate()
    fetch = fetching(answer(hpke_ring(hpke), signing_ring(signer)))
    for unpinned in (GatewayKeys(fetch), GatewayKeys(fetch, trust=GatewayTrust())):
        with pytest.raises(GatewayKeysError, match="no gateway log-signing public key"):
            await unpinned.current()
    insecure = GatewayKeys(fetch, trust=GatewayTrust.insecure_tls_alone())
    assert (await insecure.current()).key_id == key_id(hpke.public_key())


async def test_a_proxy_that_swaps_the_key_gets_nothing_sealed_to_it() -> None:
    signer = Ed25519PrivateKey.generate()
    gateway_hpke, proxy_hpke = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    genuine = answer(hpke_ring(gateway_hpke), signing_ring(signer))
    proxy_keys = answer(hpke_ring(proxy_hpke), signing_ring(signer)).keys
    altered = {
        # The proxy's key in clear beside the gateway's statement.
        "differs from its signed statement": exchange_pb2.GetGatewayKeysResponse(
            keys=proxy_keys, statement=genuine.statement, signatures=genuine.signatures
        ),
        # In clear and in a statement the proxy signed itself.
        "no gateway log-signing key this client trusts": answer(
            hpke_ring(proxy_hpke), signing_ring(Ed25519PrivateKey.generate())
        ),
        # In clear, the statement taken out.
        "no signed key statement": exchange_pb2.GetGatewayKeysResponse(keys=proxy_keys),
    }
    for reason, response in altered.items():
        keys = GatewayKeys(fetching(response), trust=GatewayTrust.pinned([signer.public_key()]))
        with pytest.raises(GatewayKeysError, match=reason):
            await keys.current()


def fetching(
    response: exchange_pb2.GetGatewayKeysResponse,
) -> Callable[[], Awaitable[exchange_pb2.GetGatewayKeysResponse]]:
    async def fetch() -> exchange_pb2.GetGatewayKeysResponse:
        return response

    return fetch


def test_trust_follows_a_signing_key_rotation_seen_while_both_keys_sign() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    hpke = hpke_ring(X25519PrivateKey.generate())
    clock = Clock()
    follower = TrustedStatements(GatewayTrust.pinned([old.public_key()]), clock=clock)
    missed = TrustedStatements(GatewayTrust.pinned([old.public_key()]), clock=clock)

    follower.keys(answer(hpke, signing_ring(old), at=clock.now))
    assert ids(follower.trusted) == {key_id(old.public_key())}

    # Rotated: the gateway signs with both keys; a client that sees it trusts both.
    clock.now += timedelta(minutes=10)
    follower.keys(answer(hpke, signing_ring(old, new, current=1), at=clock.now))
    assert ids(follower.trusted) == {key_id(old.public_key()), key_id(new.public_key())}

    # Old key retired: the new one alone signs. The follower verifies, and drops the old key.
    clock.now += timedelta(minutes=10)
    after_retirement = answer(hpke, signing_ring(new), at=clock.now)
    follower.keys(after_retirement)
    assert ids(follower.trusted) == {key_id(new.public_key())}

    # A client pinning only the old key that never saw the overlap cannot verify, and says why.
    with pytest.raises(GatewayKeysError) as err:
        missed.keys(after_retirement)
    assert "give this client the gateway's current signing public key" in str(err.value)
    assert key_id(new.public_key()) in str(err.value)

    # An older statement replayed verifies (it is the gateway's) but brings no key back.
    old_only = answer(hpke, signing_ring(old), at=clock.now - timedelta(hours=1))
    with pytest.raises(GatewayKeysError, match="no gateway log-signing key this client trusts"):
        follower.keys(old_only)
    both = answer(hpke, signing_ring(old, new, current=1), at=clock.now - timedelta(minutes=5))
    follower.keys(both)
    assert ids(follower.trusted) == {key_id(new.public_key())}


def test_pins_are_read_again_from_the_key_directory_when_they_no_longer_suffice(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    provider = FileKeyProvider(keys)
    old_id = provider.rotate(KeyKind.SIGNING)
    provider.rotate(KeyKind.HPKE)
    clock = Clock()
    trust = GatewayTrust.from_key_dir(keys)
    assert {key_id(k) for k in trust.signing_keys} == {old_id}
    client = TrustedStatements(trust, clock=clock)
    client.keys(answer(provider.hpke_keys(), provider.signing_keys(), at=clock.now))

    # Rotated and retired before this client fetched again; the operator's key directory has
    # the new public key, and the retired one only under retired/, which is no pin.
    new_id = provider.rotate(KeyKind.SIGNING)
    provider.retire(KeyKind.SIGNING, old_id)
    assert {key_id(k) for k in gateway_signing_pins(keys)} == {new_id}
    clock.now += timedelta(hours=1)
    client.keys(answer(provider.hpke_keys(), provider.signing_keys(), at=clock.now))
    assert ids(client.trusted) == {new_id}

    # Fixed pins are not read again.
    fixed = TrustedStatements(GatewayTrust.pinned(trust.signing_keys), clock=clock)
    with pytest.raises(GatewayKeysError, match="no gateway log-signing key this client trusts"):
        fixed.keys(answer(provider.hpke_keys(), provider.signing_keys(), at=clock.now))


def test_a_key_directory_without_gateway_keys_gives_no_pins(tmp_path: Path) -> None:
    trust = GatewayTrust.from_key_dir(tmp_path)
    assert trust.signing_keys == ()
    response = answer(hpke_ring(X25519PrivateKey.generate()),
                      signing_ring(Ed25519PrivateKey.generate()))
    with pytest.raises(GatewayKeysError, match="no gateway log-signing public key"):
        TrustedStatements(trust).keys(response)


async def test_a_source_following_a_named_key_takes_it_only_from_a_verified_statement() -> None:
    signer = Ed25519PrivateKey.generate()
    first, second, proxy = (X25519PrivateKey.generate() for _ in range(3))
    serving = [answer(hpke_ring(first), signing_ring(signer))]

    async def fetch() -> exchange_pb2.GetGatewayKeysResponse:
        return serving[0]

    keys = GatewayKeys(fetch, trust=GatewayTrust.pinned([signer.public_key()]),
                       follow_interval_s=0.0)
    assert (await keys.follow(key_id(first.public_key()))).key_id == key_id(first.public_key())

    # A request names a key the proxy offers, in a statement signed by another key: refused.
    serving[0] = answer(hpke_ring(proxy), signing_ring(Ed25519PrivateKey.generate()))
    with pytest.raises(GatewayKeysError):
        await keys.follow(key_id(proxy.public_key()))
    serving[0] = answer(hpke_ring(second, first), signing_ring(signer))
    followed = await keys.follow(key_id(second.public_key()))
    assert followed.key_id == key_id(second.public_key())
