"""The gateway's key statement: its HPKE keys, signed with its log-signing keys.

GetGatewayKeys answers over TLS, and TLS alone does not keep a proxy that terminates it from
handing partners a key of its own, to read every submission sealed to it. So the answer also
carries a ``GatewayKeyStatement`` (the gateway's log origin, when it was signed, the HPKE keys
and the usable log-signing keys), serialised once, and an Ed25519 signature over
``STATEMENT_LABEL || statement`` by each usable log-signing key: the keys that verifiers of the
log already hold, in a file provider or a token. A partner seals to a key of the statement only
after a signature by a key it trusts verifies.

The signed bytes are the statement as sent. A verifier checks the signatures over the bytes it
received and parses those bytes afterwards, so no canonical re-encoding is needed, and nothing
is read from a statement before it verified.

The label keeps these signatures apart from the log's checkpoints, which the same keys sign:
a checkpoint's signed text starts with the log origin and a newline, so the two could meet only
under the origin ``ketenpoort/v1 gateway-keys``, which :func:`check_origin` refuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.message import DecodeError

from gateway.api.v1 import exchange_pb2
from gateway.crypto.keyids import key_id
from gateway.crypto.provider import KeyRing, LogSigningKey
from gateway.crypto.submissions import SUBMISSION_FORMAT_VERSION, SUBMISSION_SUITE_NAME

__all__ = [
    "DEFAULT_MAX_CLOCK_SKEW_S",
    "DEFAULT_MAX_STATEMENT_AGE_S",
    "STATEMENT_LABEL",
    "AdvertisedKey",
    "KeyStatementError",
    "OpenedKeyStatement",
    "SignedKeyStatement",
    "UntrustedStatement",
    "check_origin",
    "format_issued_at",
    "gateway_key_messages",
    "open_key_statement",
    "sign_key_statement",
]

STATEMENT_LABEL = b"ketenpoort/v1 gateway-keys\n"
# The gateway signs again at least hourly; a week leaves room for a gateway whose token is out
# for a weekend, while a replayed old statement (one listing a key since retired) is bounded.
DEFAULT_MAX_STATEMENT_AGE_S = 7 * 24 * 3600.0
# How far a statement's time may lie ahead of the verifier's clock.
DEFAULT_MAX_CLOCK_SKEW_S = 300.0
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_RAW_KEY_BYTES = 32
_SIGNATURE_BYTES = 64


class KeyStatementError(ValueError):
    """A key statement that is missing, malformed, not signed by a trusted key, too old, or
    made by another gateway."""


class UntrustedStatement(KeyStatementError):
    """No signature by a trusted log-signing key is on the statement."""


@dataclass(frozen=True)
class AdvertisedKey:
    """One of the gateway's HPKE public keys as GetGatewayKeys tells it."""

    key_id: str
    public_key: bytes  # raw 32-byte X25519
    current: bool
    suite: str = SUBMISSION_SUITE_NAME
    format_version: int = SUBMISSION_FORMAT_VERSION


@dataclass(frozen=True)
class SignedKeyStatement:
    """A serialised statement and its signatures, as GetGatewayKeysResponse carries them."""

    statement: bytes
    signatures: tuple[exchange_pb2.StatementSignature, ...]


@dataclass(frozen=True)
class OpenedKeyStatement:
    """What a verified statement says. ``verified_by`` is the id of the trusted key whose
    signature was checked first; ``signing_keys`` have each signed it."""

    origin: str
    issued_at: datetime
    keys: tuple[exchange_pb2.GatewayKey, ...]
    signing_keys: tuple[Ed25519PublicKey, ...]
    verified_by: str


def check_origin(origin: str) -> str:
    """``origin`` if it can name a gateway in a statement: one printable line, and not the
    label's own line (see the module doc)."""
    if not origin or "\n" in origin or not origin.isprintable():
        raise ValueError("the origin must be one printable line")
    if origin.encode() + b"\n" == STATEMENT_LABEL:
        raise ValueError(f"the origin {origin!r} is reserved for key statements")
    return origin


def format_issued_at(at: datetime) -> str:
    """RFC 3339 UTC to the second: one spelling per instant."""
    return at.astimezone(UTC).strftime(_TIME_FORMAT)


def gateway_key_messages(keys: Sequence[AdvertisedKey]) -> list[exchange_pb2.GatewayKey]:
    return [
        exchange_pb2.GatewayKey(
            key_id=k.key_id,
            public_key=k.public_key,
            current=k.current,
            suite=k.suite,
            format_version=k.format_version,
        )
        for k in keys
    ]


def sign_key_statement(
    origin: str,
    issued_at: datetime,
    keys: Sequence[AdvertisedKey],
    signing: KeyRing[LogSigningKey],
) -> SignedKeyStatement:
    """The statement of ``keys`` by the gateway ``origin`` at ``issued_at``, signed by every
    key of ``signing`` (the current one first), so that a partner trusting any one of them
    verifies it. Raises what a key's ``sign`` raises (a token that is unavailable)."""
    order = [signing.current_id, *sorted(k for k in signing.keys if k != signing.current_id)]
    # Ids as verifiers derive them from the public keys, whatever the provider calls its keys.
    signers = [(key_id(signing.keys[kid].public_key()), signing.keys[kid]) for kid in order]
    statement = exchange_pb2.GatewayKeyStatement(
        origin=check_origin(origin),
        issued_at=format_issued_at(issued_at),
        keys=gateway_key_messages(keys),
        signing_keys=[
            exchange_pb2.StatementSigningKey(
                key_id=kid, public_key=_raw(signer.public_key()), current=n == 0
            )
            for n, (kid, signer) in enumerate(signers)
        ],
    ).SerializeToString(deterministic=True)
    message = STATEMENT_LABEL + statement
    return SignedKeyStatement(
        statement,
        tuple(
            exchange_pb2.StatementSignature(key_id=kid, signature=signer.sign(message))
            for kid, signer in signers
        ),
    )


def open_key_statement(
    statement: bytes,
    signatures: Sequence[exchange_pb2.StatementSignature],
    trusted: Iterable[Ed25519PublicKey],
    *,
    origin: str,
    now: datetime,
    max_age_s: float = DEFAULT_MAX_STATEMENT_AGE_S,
    max_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S,
) -> OpenedKeyStatement:
    """Verify ``statement`` against the ``trusted`` log-signing keys, then read it.

    Raises :class:`UntrustedStatement` when no trusted key signed it, and
    :class:`KeyStatementError` when a trusted key's signature does not verify (the statement
    was altered), when it does not parse, is for another ``origin``, is older than
    ``max_age_s`` or more than ``max_skew_s`` ahead of ``now``, or lists a signing key that did
    not sign it. Signatures by keys neither trusted nor listed are ignored."""
    if not statement:
        raise KeyStatementError(
            "the gateway's answer carries no signed key statement (a gateway that does not "
            "sign its keys, or something on the way removed the statement)"
        )
    message = STATEMENT_LABEL + statement
    verified_by, verified_key = _verified_by(message, signatures, trusted)
    try:
        parsed = exchange_pb2.GatewayKeyStatement.FromString(statement)
    except DecodeError:
        raise KeyStatementError("the signed key statement is not a GatewayKeyStatement") from None
    if parsed.origin != origin:
        raise KeyStatementError(
            f"the key statement is made by gateway {parsed.origin!r}, not {origin!r}"
        )
    issued_at = _issued_at(parsed.issued_at, now, max_age_s, max_skew_s)
    signing_keys = _listed_signers(parsed, message, signatures, _raw(verified_key))
    return OpenedKeyStatement(
        origin=parsed.origin,
        issued_at=issued_at,
        keys=tuple(parsed.keys),
        signing_keys=signing_keys,
        verified_by=verified_by,
    )


def _verified_by(
    message: bytes,
    signatures: Sequence[exchange_pb2.StatementSignature],
    trusted: Iterable[Ed25519PublicKey],
) -> tuple[str, Ed25519PublicKey]:
    by_id = {key_id(k): k for k in trusted}
    failed: list[str] = []
    for sig in signatures:
        key = by_id.get(sig.key_id)
        if key is None:
            continue
        if _verifies(key, sig.signature, message):
            return sig.key_id, key
        failed.append(sig.key_id)
    if failed:
        raise KeyStatementError(
            f"the signature of trusted gateway key {failed[0]} does not verify: the key "
            "statement was altered on the way"
        )
    signers = ", ".join(sorted({s.key_id for s in signatures})) or "none"
    known = ", ".join(sorted(by_id)) or "none"
    raise UntrustedStatement(
        "no gateway log-signing key this client trusts signed the key statement "
        f"(signed by: {signers}; trusted: {known}); if the gateway rotated its signing key, "
        "give this client the gateway's current signing public key"
    )


def _issued_at(text: str, now: datetime, max_age_s: float, max_skew_s: float) -> datetime:
    try:
        issued_at = datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise KeyStatementError("the key statement's time is not RFC 3339 UTC") from None
    age = (now - issued_at).total_seconds()
    if age > max_age_s:
        raise KeyStatementError(
            f"the key statement was signed at {text}, more than {max_age_s:.0f} s ago: too old "
            "to trust (an old answer replayed, or a gateway that cannot sign)"
        )
    if age < -max_skew_s:
        raise KeyStatementError(
            f"the key statement was signed at {text}, ahead of this client's clock by more "
            f"than {max_skew_s:.0f} s: check the clocks"
        )
    return issued_at


def _listed_signers(
    parsed: exchange_pb2.GatewayKeyStatement,
    message: bytes,
    signatures: Sequence[exchange_pb2.StatementSignature],
    verified_raw: bytes,
) -> tuple[Ed25519PublicKey, ...]:
    # Every key the statement lists signed it, as a new TUF root is signed by its own keys: a
    # client that goes on to trust the listed keys trusts only keys that took part.
    if not parsed.signing_keys:
        raise KeyStatementError("the key statement lists no log-signing key")
    listed: list[Ed25519PublicKey] = []
    for entry in parsed.signing_keys:
        if len(entry.public_key) != _RAW_KEY_BYTES:
            raise KeyStatementError("the key statement lists a signing key that is not Ed25519")
        key = Ed25519PublicKey.from_public_bytes(entry.public_key)
        if entry.key_id != key_id(key):
            raise KeyStatementError(
                f"the key statement names signing key {entry.key_id!r} by another key's id"
            )
        if entry.public_key != verified_raw and not any(
            s.key_id == entry.key_id and _verifies(key, s.signature, message) for s in signatures
        ):
            raise KeyStatementError(
                f"signing key {entry.key_id} is listed in the key statement but did not sign it"
            )
        listed.append(key)
    return tuple(listed)


def _verifies(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    if len(signature) != _SIGNATURE_BYTES:
        return False
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
