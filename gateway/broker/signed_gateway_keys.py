"""GetGatewayKeys' answer: the gateway's HPKE keys in clear and in a signed statement
(:mod:`gateway.formats.gateway_key_statement`), signed once and served from memory.

Signing costs a signature per usable log-signing key (a round trip to the token with PKCS#11),
so the answer is signed again only when a key ring changed (a rotation or retirement that the
gateway's key refresh took up) or when the statement is older than ``resign_after_s``, never
per call: partners refuse statements older than a week, and an hourly one keeps every answer
far from that. The rings are asked for on every call, which costs a lookup, so the next answer
after a key refresh names the new keys.

Signing runs on a worker thread, once at a time; concurrent calls meanwhile wait for it. When
a signature cannot be made (a token that is away) and the keys have not changed, the statement
signed before is served and a new signature is tried after ``retry_after_s``; after a change
of keys there is nothing right to serve, and the call fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.api.v1 import exchange_pb2
from gateway.broker.submission_gate import advertised_keys
from gateway.crypto.provider import HpkeRecipient, KeyRing, LogSigningKey
from gateway.formats.gateway_key_statement import (
    check_origin,
    gateway_key_messages,
    sign_key_statement,
)

__all__ = ["DEFAULT_RESIGN_AFTER_S", "DEFAULT_RETRY_AFTER_S", "SignedGatewayKeys"]

DEFAULT_RESIGN_AFTER_S = 3600.0
DEFAULT_RETRY_AFTER_S = 60.0

log = logging.getLogger("ketenpoort.keys")

_Shape = tuple[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]]]


@dataclass(frozen=True)
class _Signed:
    shape: _Shape
    signed_at: datetime
    next_try: datetime  # when to sign again though the keys did not change
    response: exchange_pb2.GetGatewayKeysResponse


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SignedGatewayKeys:
    """The signed GetGatewayKeys answer for the rings ``hpke`` and ``signing`` hand out now.

    Both are asked for on every call; ``origin`` is the gateway's log origin."""

    def __init__(
        self,
        hpke: Callable[[], KeyRing[HpkeRecipient]],
        signing: Callable[[], KeyRing[LogSigningKey]],
        origin: str,
        *,
        clock: Callable[[], datetime] = _utc_now,
        resign_after_s: float = DEFAULT_RESIGN_AFTER_S,
        retry_after_s: float = DEFAULT_RETRY_AFTER_S,
    ) -> None:
        if resign_after_s <= 0 or retry_after_s <= 0:
            raise ValueError("resign_after_s and retry_after_s must be more than 0")
        self._hpke = hpke
        self._signing = signing
        self._origin = check_origin(origin)
        self._clock = clock
        self._resign_after_s = resign_after_s
        self._retry_after_s = retry_after_s
        self._signed: _Signed | None = None
        self._lock = asyncio.Lock()

    async def response(self) -> exchange_pb2.GetGatewayKeysResponse:
        """The answer to serve: the one signed before while it fits, else one signed now.
        The message is shared between calls and must not be changed."""
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        async with self._lock:
            fresh = self._fresh()  # another call may have signed while this one waited
            if fresh is not None:
                return fresh
            return await self._sign()

    def _fresh(self) -> exchange_pb2.GetGatewayKeysResponse | None:
        signed = self._signed
        if signed is None or signed.shape != _shape(self._hpke(), self._signing()):
            return None
        now = self._clock()
        # A clock set back makes the statement look younger than it is: sign again.
        if now >= signed.next_try or now < signed.signed_at:
            return None
        return signed.response

    async def _sign(self) -> exchange_pb2.GetGatewayKeysResponse:
        hpke, signing = self._hpke(), self._signing()
        shape = _shape(hpke, signing)
        now = self._clock()
        keys = advertised_keys(hpke)
        try:
            signed = await asyncio.to_thread(sign_key_statement, self._origin, now, keys, signing)
        except Exception as exc:
            before = self._signed
            if before is None or before.shape != shape:
                raise
            # The type only: a token's error text may name its slot or objects.
            log.warning(
                "the gateway's key statement was not signed again (%s); the statement signed "
                "at %s is served, next try in %.0f s",
                type(exc).__name__, before.signed_at.isoformat(), self._retry_after_s,
            )
            self._signed = _Signed(
                shape, before.signed_at, _later(now, self._retry_after_s), before.response
            )
            return before.response
        response = exchange_pb2.GetGatewayKeysResponse(
            keys=gateway_key_messages(keys),
            statement=signed.statement,
            signatures=list(signed.signatures),
        )
        self._signed = _Signed(shape, now, _later(now, self._resign_after_s), response)
        log.info(
            "gateway key statement signed: hpke %s current, %d usable; signed by %s",
            hpke.current_id, len(hpke.keys), ", ".join(s.key_id for s in signed.signatures),
        )
        return response


def _shape(
    hpke: KeyRing[HpkeRecipient], signing: KeyRing[LogSigningKey]
) -> _Shape:
    # Key ids are derived from the public keys: the same ids are the same keys.
    return (
        (hpke.current_id, tuple(sorted(hpke.keys))),
        (signing.current_id, tuple(sorted(signing.keys))),
    )


def _later(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
