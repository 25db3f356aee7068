"""Opening a sealed answer on the partner side."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.api.v1 import common_pb2, exchange_pb2
from gateway.crypto.sealing import SealBinding, SealedBox, open_sealed


def open_disclosure(
    response: exchange_pb2.DisclosureResponse,
    private_key: X25519PrivateKey,
    *,
    recipient_id: str,
    purpose: str,
) -> common_pb2.DisclosedRecord:
    """Open the sealed record of a disclosure answer; raises SealOpenError if it was not
    sealed to this key, or for another disclosure, recipient or purpose, or was altered."""
    s = response.sealed
    box = SealedBox(
        version=s.format_version,
        suite=s.suite,
        recipient_key_id=s.recipient_key_id,
        ciphertext=s.ciphertext,
    )
    binding = SealBinding(
        disclosure_id=response.disclosure_id, recipient_id=recipient_id, purpose=purpose
    )
    record = common_pb2.DisclosedRecord()
    record.ParseFromString(open_sealed(box, private_key, binding))
    if record.disclosure_id != response.disclosure_id or record.recipient_id != recipient_id:
        # The binding already guarantees this; checking the inner copy costs nothing.
        raise ValueError("sealed record does not belong to this disclosure")
    return record
