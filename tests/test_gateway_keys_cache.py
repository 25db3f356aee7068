"""The partner side's cache of the gateway's HPKE keys: what it takes, when it fetches again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.gateway_keys import GatewayKeys, GatewayKeysError, GatewayTrust, current_key
from gateway.api.v1 import exchange_pb2
from gateway.crypto._pem import public_pem
from gateway.crypto.errors import KeystoreError
from gateway.crypto.keyids import key_id
from gateway.crypto.submissions import (
    SUBMISSION_FORMAT_VERSION,
    SUBMISSION_SUITE_NAME,
    GatewayPublicKey,
)
from tests.key_statements import answer, hpke_ring, signing_ring

# The gateway's log-signing key: fetched answers are signed with it, and the client pins it.
SIGNER = Ed25519PrivateKey.generate()
PINNED = GatewayTrust.pinned([SIGNER.public_key()])


def advertised(
    key: X25519PrivateKey, *, current: bool = True, **changes: object
) -> exchange_pb2.GatewayKey:
    fields: dict[str, object] = dict(
        key_id=key_id(key.public_key()),
        public_key=key.public_key().public_bytes_raw(),
        current=current,
        suite=SUBMISSION_SUITE_NAME,
        format_version=SUBMISSION_FORMAT_VERSION,
    )
    fields.update(changes)
    return exchange_pb2.GatewayKey(**fields)  # type: ignore[arg-type]


def test_the_current_key_is_taken_only_in_a_suite_and_version_this_side_seals_with() -> None:
    old, new = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    response = exchange_pb2.GetGatewayKeysResponse(
        keys=[advertised(old, current=False), advertised(new)]
    )
    assert current_key(response).key_id == key_id(new.public_key())
    for bad in (
        dict(suite="DHKEM(P-256, HKDF-SHA256)/HKDF-SHA256/AES-128-GCM"),
        dict(format_version=2),
        dict(public_key=b"\x01" * 31),
        dict(key_id=""),
    ):
        with pytest.raises(GatewayKeysError):
            current_key(exchange_pb2.GetGatewayKeysResponse(keys=[advertised(new, **bad)]))
    with pytest.raises(GatewayKeysError):
        current_key(exchange_pb2.GetGatewayKeysResponse(keys=[advertised(old, current=False)]))


async def test_keys_are_fetched_once_then_again_when_old_or_refused() -> None:
    first, second = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    serving = [first]
    fetches: list[str] = []
    now = [0.0]

    async def fetch() -> exchange_pb2.GetGatewayKeysResponse:
        fetches.append(key_id(serving[0].public_key()))
        return answer(hpke_ring(serving[0]), signing_ring(SIGNER))

    keys = GatewayKeys(fetch, trust=PINNED, max_age_s=60.0, monotonic=lambda: now[0])
    cached = await keys.current()
    assert list(await asyncio.gather(keys.current(), keys.current())) == [cached, cached]
    assert len(fetches) == 1

    serving[0] = second
    # Two calls refused for the same stale key share one fetch.
    refreshed = await asyncio.gather(keys.refresh(cached), keys.refresh(cached))
    assert {k.key_id for k in refreshed} == {key_id(second.public_key())}
    assert len(fetches) == 2

    now[0] = 59.0
    await keys.current()
    assert len(fetches) == 2
    now[0] = 120.0
    await keys.current()
    assert len(fetches) == 3


async def test_a_fixed_key_is_never_fetched() -> None:
    key = X25519PrivateKey.generate()
    fixed = GatewayPublicKey(key_id(key.public_key()), key.public_key())
    keys = GatewayKeys.fixed(fixed)
    assert await keys.current() is fixed
    assert await keys.refresh(fixed) is fixed
    with pytest.raises(ValueError):
        GatewayKeys(None)


async def test_a_named_key_is_followed_with_one_fetch_per_interval() -> None:
    first, second = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    serving = [first]
    fetches: list[str] = []
    now = [0.0]

    async def fetch() -> exchange_pb2.GetGatewayKeysResponse:
        fetches.append(key_id(serving[0].public_key()))
        return answer(hpke_ring(serving[0]), signing_ring(SIGNER))

    keys = GatewayKeys(fetch, trust=PINNED, follow_interval_s=5.0, monotonic=lambda: now[0])
    first_id, second_id = key_id(first.public_key()), key_id(second.public_key())
    assert (await keys.follow(first_id)).key_id == first_id
    assert (await keys.follow("")).key_id == first_id
    assert len(fetches) == 1

    # The gateway names a key the fetch does not give yet (a replica behind): one fetch, then
    # the known key until the interval has passed.
    for _ in range(3):
        assert (await keys.follow(second_id)).key_id == first_id
    assert len(fetches) == 2
    serving[0] = second
    now[0] = 5.0
    followed = await asyncio.gather(keys.follow(second_id), keys.follow(second_id))
    assert {k.key_id for k in followed} == {second_id}
    assert len(fetches) == 3
    assert (await keys.follow(second_id)).key_id == second_id
    assert len(fetches) == 3


async def test_a_key_file_is_read_again_when_the_gateway_names_another_key(tmp_path: Path) -> None:
    first, second = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    path = tmp_path / "hpke.pub.pem"
    path.write_bytes(public_pem(first.public_key()))
    keys = GatewayKeys.from_public_key_file(path)
    assert (await keys.current()).key_id == key_id(first.public_key())

    path.write_bytes(public_pem(second.public_key()))
    assert (await keys.current()).key_id == key_id(first.public_key())  # cached
    followed = await keys.follow(key_id(second.public_key()))
    assert followed.key_id == key_id(second.public_key())
    assert followed.public_key.public_bytes_raw() == second.public_key().public_bytes_raw()

    (tmp_path / "empty.pem").write_bytes(b"")
    with pytest.raises(KeystoreError):
        GatewayKeys.from_public_key_file(tmp_path / "empty.pem")
