"""Key rings and signed GetGatewayKeys answers made with the gateway's own code, for tests of
the partner side's verification."""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.api.v1 import exchange_pb2
from gateway.broker.submission_gate import advertised_keys
from gateway.crypto.local_keys import LocalHpkeRecipient, LocalSigningKey
from gateway.crypto.provider import HpkeRecipient, KeyRing, LogSigningKey
from gateway.formats.gateway_key_statement import gateway_key_messages, sign_key_statement
from gateway.formats.log_origin import DEFAULT_LOG_ORIGIN

__all__ = ["answer", "hpke_ring", "signing_ring"]


def hpke_ring(*keys: X25519PrivateKey, current: int = 0) -> KeyRing[HpkeRecipient]:
    ring: dict[str, HpkeRecipient] = {}
    for key in keys:
        recipient = LocalHpkeRecipient(key)
        ring[recipient.key_id] = recipient
    return KeyRing(LocalHpkeRecipient(keys[current]).key_id, ring)


def signing_ring(*keys: Ed25519PrivateKey, current: int = 0) -> KeyRing[LogSigningKey]:
    ring: dict[str, LogSigningKey] = {}
    for key in keys:
        signer = LocalSigningKey(key)
        ring[signer.key_id] = signer
    return KeyRing(LocalSigningKey(keys[current]).key_id, ring)


def answer(
    hpke: KeyRing[HpkeRecipient],
    signing: KeyRing[LogSigningKey],
    *,
    origin: str = DEFAULT_LOG_ORIGIN,
    at: datetime | None = None,
) -> exchange_pb2.GetGatewayKeysResponse:
    """What a gateway with these rings answers GetGatewayKeys with."""
    keys = advertised_keys(hpke)
    signed = sign_key_statement(origin, at or datetime.now(UTC), keys, signing)
    return exchange_pb2.GetGatewayKeysResponse(
        keys=gateway_key_messages(keys),
        statement=signed.statement,
        signatures=list(signed.signatures),
    )
