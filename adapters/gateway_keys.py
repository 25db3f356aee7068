"""The gateway's HPKE public keys as a partner system knows them, to seal submissions to.

Either fetched from the gateway (ExchangeService.GetGatewayKeys, over the partner's own
authenticated channel) and taken only from the answer's signed statement, once it verified
against the gateway's log-signing keys the partner trusts (:mod:`adapters.gateway_trust`); or
read from the gateway's public key file (``gateway/hpke.pub.pem``), which is configuration, for
a partner system that does not call the gateway itself; either way cached, and fetched or
read again when the cache is older than ``max_age_s``, when the gateway says the key sealed to
is no longer in use, or when the gateway names another key as current (a source request's
``gateway_key_id``). Or fixed, and then never changed.

Only a key of the suite and format version this library seals with is taken; a response
without one is an error rather than a reason to send in clear.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from adapters.gateway_trust import GatewayKeysError, GatewayTrust, TrustedStatements
from gateway.api.v1 import exchange_pb2
from gateway.crypto._pem import load_x25519_public_key
from gateway.crypto.keyids import key_id
from gateway.crypto.submissions import (
    SUBMISSION_FORMAT_VERSION,
    SUBMISSION_SUITE_NAME,
    GatewayPublicKey,
)

__all__ = [
    "DEFAULT_MAX_AGE_S",
    "GatewayKeys",
    "GatewayKeysError",
    "GatewayTrust",
    "KeyFetch",
    "current_key",
    "current_of",
]

# A rotated-out key stays usable at the gateway for a while; an hour-old cache keeps sealing
# to keys the gateway still opens, and a retirement is noticed on the next refused call.
DEFAULT_MAX_AGE_S = 3600.0
# While replicas disagree about the current key for a moment after a rotation, a source that is
# told one id and fetches another must not fetch on every call: once per this many seconds for
# the same named id. Sealing to the key it has stays safe, as the gateway opens it until retired.
DEFAULT_FOLLOW_INTERVAL_S = 5.0
_RAW_KEY_BYTES = 32

KeyFetch = Callable[[], Awaitable[exchange_pb2.GetGatewayKeysResponse]]
# Gets the key to seal to afresh: fetched and verified, or read from a key file.
_KeyLoad = Callable[[], Awaitable[GatewayPublicKey]]


def current_key(response: exchange_pb2.GetGatewayKeysResponse) -> GatewayPublicKey:
    """The key marked current in the answer's clear list, if it is of the suite and version
    this library seals with. The clear list is not authenticated beyond TLS; a fetched answer
    is verified by :class:`GatewayKeys` (its trust) before a key of it is used."""
    return current_of(response.keys)


def current_of(keys: Iterable[exchange_pb2.GatewayKey]) -> GatewayPublicKey:
    """The key marked current among ``keys``, if it is of the suite and version this library
    seals with."""
    for key in keys:
        if not key.current:
            continue
        if (
            key.suite != SUBMISSION_SUITE_NAME
            or key.format_version != SUBMISSION_FORMAT_VERSION
            or len(key.public_key) != _RAW_KEY_BYTES
            or not key.key_id
        ):
            raise GatewayKeysError(
                "the gateway's current key is of a suite or format this client does not seal with"
            )
        return GatewayPublicKey(key.key_id, X25519PublicKey.from_public_bytes(key.public_key))
    raise GatewayKeysError("the gateway advertises no current key")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class GatewayKeys:
    """The key to seal to now; safe to share between concurrent calls of one event loop."""

    def __init__(
        self,
        fetch: KeyFetch | None,
        *,
        trust: GatewayTrust | None = None,
        fixed: GatewayPublicKey | None = None,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        follow_interval_s: float = DEFAULT_FOLLOW_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        """Keys fetched with ``fetch`` and verified as ``trust`` says; or, with ``fetch``
        None, always ``fixed``. Without ``trust`` nothing fetched is taken (deny by default):
        give pins (``GatewayTrust.pinned``, ``GatewayTrust.from_key_dir``), or explicitly
        ``GatewayTrust.insecure_tls_alone()``. ``clock`` is the wall clock statements' age is
        measured with."""
        if (fetch is None) == (fixed is None):
            raise ValueError("give a fetch function or a fixed key, not both")
        statements = TrustedStatements(trust or GatewayTrust(), clock=clock)
        self._statements = statements

        async def fetched() -> GatewayPublicKey:
            assert fetch is not None
            return current_of(statements.keys(await fetch()))

        self._reload: _KeyLoad | None = None if fetch is None else fetched
        self._max_age_s = max_age_s
        self._follow_interval_s = follow_interval_s
        self._monotonic = monotonic
        self._key = fixed
        self._fetched_at = 0.0
        self._followed: dict[str, float] = {}  # named key id -> when a fetch last looked for it
        self._lock = asyncio.Lock()

    @property
    def statements(self) -> TrustedStatements:
        """What fetched answers are checked with (and the signing keys trusted now)."""
        return self._statements

    @classmethod
    def fixed(cls, key: GatewayPublicKey) -> GatewayKeys:
        """Always ``key`` (from configuration); nothing is fetched."""
        return cls(None, fixed=key)

    @classmethod
    def from_public_key_file(
        cls,
        path: Path,
        *,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> GatewayKeys:
        """The gateway's X25519 public key in a PEM file (``gateway/hpke.pub.pem`` of a key
        directory, or the operator's copy of it), read now and read again whenever a fetch
        would be made; its id is derived the way the gateway derives the ids of its file keys.
        Raises KeystoreError when the file holds no X25519 public key."""

        async def read() -> GatewayPublicKey:
            return _file_key(path)

        # A bad file fails here, not on a call. The file is this partner's own configuration,
        # as pins are: its key is taken as is.
        keys = cls(None, fixed=_file_key(path), max_age_s=max_age_s, monotonic=monotonic)
        keys._reload = read
        keys._fetched_at = monotonic()
        return keys

    async def current(self) -> GatewayPublicKey:
        """The key to seal to: the cached one, or a fresh fetch when there is none yet or the
        cache is older than ``max_age_s``."""
        key = self._key
        if key is not None and (self._reload is None or not self._stale()):
            return key
        async with self._lock:
            if self._key is None or (self._reload is not None and self._stale()):
                await self._load()
            assert self._key is not None
            return self._key

    async def refresh(self, stale: GatewayPublicKey) -> GatewayPublicKey:
        """Fetch again because the gateway refused ``stale``; concurrent callers that saw the
        same refusal share one fetch."""
        async with self._lock:
            if self._reload is not None and (self._key is None or self._key == stale):
                await self._load()
            assert self._key is not None
            return self._key

    async def follow(self, named_id: str) -> GatewayPublicKey:
        """The key to seal to when the gateway names ``named_id`` as its current key: the cached
        key if it is that one, else the key after one more fetch (at most one fetch per
        ``follow_interval_s`` for the same id). The id only selects; a key never comes from
        the one who names it."""
        key = await self.current()
        if not named_id or key.key_id == named_id or self._reload is None:
            return key
        async with self._lock:
            assert self._key is not None
            now = self._monotonic()
            if self._key.key_id != named_id and now - self._followed.get(named_id, -1e18) >= (
                self._follow_interval_s
            ):
                self._followed = {named_id: now}
                await self._load()
            assert self._key is not None
            return self._key

    def _stale(self) -> bool:
        return self._monotonic() - self._fetched_at >= self._max_age_s

    async def _load(self) -> None:
        if self._reload is None:
            return
        self._key = await self._reload()
        self._fetched_at = self._monotonic()


def _file_key(path: Path) -> GatewayPublicKey:
    public = load_x25519_public_key(path)
    return GatewayPublicKey(key_id(public), public)
