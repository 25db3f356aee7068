"""One partner's registry entry: its document form and the checked, typed form.

A document is what the YAML file holds::

    partner: police
    status: active                 # or revoked
    certificates:                  # mTLS client certificates the partner's systems present
      - x5t#S256: <base64url SHA-256 of the DER certificate>
        spki: sha256:<hex SHA-256 of its SubjectPublicKeyInfo>
        subject: CN=police
        not_after: "2027-11-23T10:00:00Z"
        status: active
    token:
      algorithms: [EdDSA]          # what this partner may sign tokens with
      keys:                        # a JWK set (RFC 7517); `status` is ours
        - {kty: OKP, crv: Ed25519, x: ..., kid: k_..., alg: EdDSA, use: sig, status: active}
    sealing:
      current: k_...               # the key answers are sealed to
      keys:
        - {kty: OKP, crv: X25519, x: ..., kid: k_..., use: enc, status: active}

Revoked certificates and keys stay in the file with ``status: revoked`` and ``revoked_at``,
so a reader sees that a key was withdrawn rather than that it was never there.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from gateway.crypto.keyids import certificate_thumbprint, key_id, key_pin
from gateway.crypto.layout import validate_partner_id

__all__ = [
    "TOKEN_ALGORITHMS",
    "CertificateEntry",
    "KeyStatus",
    "RegistryEntry",
    "RegistryError",
    "SealingKeyEntry",
    "TokenKey",
    "TokenKeyEntry",
    "certificate_thumbprint",
    "parse_entry",
]

TokenKey = Ed25519PublicKey | ec.EllipticCurvePublicKey
# The asymmetric algorithms a registry may allow, with the JWK shape each needs. HMAC and
# "none" are not representable: a registry can never allow them.
TOKEN_ALGORITHMS: Mapping[str, tuple[str, str]] = {
    "EdDSA": ("OKP", "Ed25519"),
    "ES256": ("EC", "P-256"),
}
_THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}\Z")
_PIN = re.compile(r"sha256:[0-9a-f]{64}\Z")
_KID = re.compile(r"[A-Za-z0-9_.:-]{1,64}\Z")
_ENTRY_KEYS = frozenset({"partner", "status", "revoked_at", "certificates", "token", "sealing"})


class RegistryError(ValueError):
    """A registry file that cannot be used; the message names the file and the problem."""


class KeyStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


@dataclass(frozen=True)
class CertificateEntry:
    thumbprint: str
    spki_pin: str
    subject: str = ""
    not_after: datetime | None = None
    status: KeyStatus = KeyStatus.ACTIVE
    revoked_at: datetime | None = None

    @classmethod
    def of(cls, certificate: x509.Certificate) -> CertificateEntry:
        der = certificate.public_bytes(serialization.Encoding.DER)
        return cls(
            thumbprint=certificate_thumbprint(der),
            spki_pin=key_pin(certificate.public_key()),
            subject=certificate.subject.rfc4514_string(),
            not_after=certificate.not_valid_after_utc,
        )


@dataclass(frozen=True)
class TokenKeyEntry:
    kid: str
    algorithm: str
    key: TokenKey
    status: KeyStatus = KeyStatus.ACTIVE
    revoked_at: datetime | None = None

    @classmethod
    def of(cls, key: TokenKey) -> TokenKeyEntry:
        if isinstance(key, Ed25519PublicKey):
            return cls(key_id(key), "EdDSA", key)
        if isinstance(key.curve, ec.SECP256R1):
            return cls(key_id(key), "ES256", key)
        raise RegistryError("token keys are Ed25519 or EC P-256 keys")


@dataclass(frozen=True)
class SealingKeyEntry:
    kid: str
    key: X25519PublicKey
    status: KeyStatus = KeyStatus.ACTIVE
    revoked_at: datetime | None = None

    @classmethod
    def of(cls, key: X25519PublicKey) -> SealingKeyEntry:
        return cls(key_id(key), key)


@dataclass(frozen=True)
class RegistryEntry:
    partner_id: str
    status: KeyStatus = KeyStatus.ACTIVE
    revoked_at: datetime | None = None
    certificates: tuple[CertificateEntry, ...] = ()
    algorithms: tuple[str, ...] = ("EdDSA",)
    token_keys: tuple[TokenKeyEntry, ...] = ()
    sealing_keys: tuple[SealingKeyEntry, ...] = ()
    current_sealing: str = ""
    # Where the entry was read from, for messages; not part of the document.
    source: str = field(default="", compare=False)

    @property
    def active(self) -> bool:
        return self.status is KeyStatus.ACTIVE

    def current_sealing_key(self) -> SealingKeyEntry | None:
        for entry in self.sealing_keys:
            if entry.kid == self.current_sealing and entry.status is KeyStatus.ACTIVE:
                return entry
        return None

    def document(self) -> dict[str, Any]:
        """The entry as the YAML file holds it."""
        doc: dict[str, Any] = {"partner": self.partner_id, "status": self.status.value}
        if self.revoked_at is not None:
            doc["revoked_at"] = _time_text(self.revoked_at)
        doc["certificates"] = [_certificate_doc(c) for c in self.certificates]
        doc["token"] = {
            "algorithms": list(self.algorithms),
            "keys": [_token_jwk(k) for k in self.token_keys],
        }
        doc["sealing"] = {
            "current": self.current_sealing,
            "keys": [_sealing_jwk(k) for k in self.sealing_keys],
        }
        return doc


def parse_entry(doc: object, source: str) -> RegistryEntry:
    """Check a registry document and build the entry; raise RegistryError naming ``source``."""
    try:
        return _parse(doc, source)
    except RegistryError:
        raise
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise RegistryError(f"{source}: {exc}") from None


def _parse(doc: object, source: str) -> RegistryEntry:
    m = _mapping(doc, source, "the file")
    unknown = sorted(set(m) - _ENTRY_KEYS)
    if unknown:
        raise RegistryError(f"{source}: unknown key(s) {', '.join(unknown)}")
    partner_id = m.get("partner")
    if not isinstance(partner_id, str):
        raise RegistryError(f"{source}: 'partner' must name the partner id")
    validate_partner_id(partner_id)
    token = _mapping(m.get("token", {}), source, "token")
    algorithms = tuple(_strings(token.get("algorithms", ["EdDSA"]), source, "token.algorithms"))
    for alg in algorithms:
        if alg not in TOKEN_ALGORITHMS:
            raise RegistryError(
                f"{source}: token algorithm {alg!r} is not allowed "
                f"(allowed: {', '.join(TOKEN_ALGORITHMS)})"
            )
    token_keys = tuple(
        _token_key(k, source) for k in _list(token.get("keys", []), source, "token.keys")
    )
    sealing = _mapping(m.get("sealing", {}), source, "sealing")
    sealing_keys = tuple(
        _sealing_key(k, source) for k in _list(sealing.get("keys", []), source, "sealing.keys")
    )
    current = sealing.get("current", "")
    if not isinstance(current, str):
        raise RegistryError(f"{source}: sealing.current must be a key id")
    if sealing_keys and current not in {k.kid for k in sealing_keys}:
        raise RegistryError(f"{source}: sealing.current {current!r} is not among sealing.keys")
    certificates = tuple(
        _certificate(c, source) for c in _list(m.get("certificates", []), source, "certificates")
    )
    _unique([c.thumbprint for c in certificates], source, "certificate")
    _unique([k.kid for k in token_keys], source, "token key id")
    _unique([k.kid for k in sealing_keys], source, "sealing key id")
    return RegistryEntry(
        partner_id=partner_id,
        status=_status(m.get("status", "active"), source),
        revoked_at=_optional_time(m.get("revoked_at"), source, "revoked_at"),
        certificates=certificates,
        algorithms=algorithms,
        token_keys=token_keys,
        sealing_keys=sealing_keys,
        current_sealing=current,
        source=source,
    )


def _certificate(item: object, source: str) -> CertificateEntry:
    m = _mapping(item, source, "a certificate")
    thumbprint = m.get("x5t#S256")
    if not isinstance(thumbprint, str) or not _THUMBPRINT.match(thumbprint):
        raise RegistryError(f"{source}: a certificate needs 'x5t#S256' (43 base64url characters)")
    pin = m.get("spki", "")
    if not isinstance(pin, str) or (pin and not _PIN.match(pin)):
        raise RegistryError(f"{source}: certificate 'spki' must be sha256:<64 hex digits>")
    subject = m.get("subject", "")
    return CertificateEntry(
        thumbprint=thumbprint,
        spki_pin=pin,
        subject=subject if isinstance(subject, str) else "",
        not_after=_optional_time(m.get("not_after"), source, "not_after"),
        status=_status(m.get("status", "active"), source),
        revoked_at=_optional_time(m.get("revoked_at"), source, "revoked_at"),
    )


def _token_key(item: object, source: str) -> TokenKeyEntry:
    jwk = _mapping(item, source, "a token key")
    kid = _kid(jwk, source)
    kty, crv = jwk.get("kty"), jwk.get("crv")
    key: TokenKey
    if kty == "OKP" and crv == "Ed25519":
        key = Ed25519PublicKey.from_public_bytes(_b64url(jwk.get("x"), 32, source, kid))
        algorithm = "EdDSA"
    elif kty == "EC" and crv == "P-256":
        x = _b64url(jwk.get("x"), 32, source, kid)
        y = _b64url(jwk.get("y"), 32, source, kid)
        key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
        algorithm = "ES256"
    else:
        raise RegistryError(f"{source}: token key {kid}: only OKP/Ed25519 and EC/P-256 keys")
    if jwk.get("alg", algorithm) != algorithm:
        raise RegistryError(f"{source}: token key {kid}: 'alg' must be {algorithm}")
    if jwk.get("use", "sig") != "sig":
        raise RegistryError(f"{source}: token key {kid}: 'use' must be 'sig'")
    return TokenKeyEntry(
        kid=kid,
        algorithm=algorithm,
        key=key,
        status=_status(jwk.get("status", "active"), source),
        revoked_at=_optional_time(jwk.get("revoked_at"), source, "revoked_at"),
    )


def _sealing_key(item: object, source: str) -> SealingKeyEntry:
    jwk = _mapping(item, source, "a sealing key")
    kid = _kid(jwk, source)
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "X25519":
        raise RegistryError(f"{source}: sealing key {kid}: only OKP/X25519 keys")
    if jwk.get("use", "enc") != "enc":
        raise RegistryError(f"{source}: sealing key {kid}: 'use' must be 'enc'")
    key = X25519PublicKey.from_public_bytes(_b64url(jwk.get("x"), 32, source, kid))
    if key_id(key) != kid:
        # Answers name the recipient key by this id; it must be the one computed from the key.
        raise RegistryError(f"{source}: sealing key id {kid} is not {key_id(key)}")
    return SealingKeyEntry(
        kid=kid,
        key=key,
        status=_status(jwk.get("status", "active"), source),
        revoked_at=_optional_time(jwk.get("revoked_at"), source, "revoked_at"),
    )


def _certificate_doc(c: CertificateEntry) -> dict[str, Any]:
    doc: dict[str, Any] = {"x5t#S256": c.thumbprint}
    if c.spki_pin:
        doc["spki"] = c.spki_pin
    if c.subject:
        doc["subject"] = c.subject
    if c.not_after is not None:
        doc["not_after"] = _time_text(c.not_after)
    doc["status"] = c.status.value
    if c.revoked_at is not None:
        doc["revoked_at"] = _time_text(c.revoked_at)
    return doc


def _token_jwk(k: TokenKeyEntry) -> dict[str, Any]:
    if isinstance(k.key, Ed25519PublicKey):
        raw = k.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        doc: dict[str, Any] = {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}
    else:
        numbers = k.key.public_numbers()
        doc = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
    doc.update({"kid": k.kid, "alg": k.algorithm, "use": "sig", "status": k.status.value})
    if k.revoked_at is not None:
        doc["revoked_at"] = _time_text(k.revoked_at)
    return doc


def _sealing_jwk(k: SealingKeyEntry) -> dict[str, Any]:
    raw = k.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    doc: dict[str, Any] = {
        "kty": "OKP",
        "crv": "X25519",
        "x": _b64(raw),
        "kid": k.kid,
        "use": "enc",
        "status": k.status.value,
    }
    if k.revoked_at is not None:
        doc["revoked_at"] = _time_text(k.revoked_at)
    return doc


def _mapping(value: object, source: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RegistryError(f"{source}: {what} must be a mapping")
    return value


def _list(value: object, source: str, what: str) -> Sequence[object]:
    if not isinstance(value, list):
        raise RegistryError(f"{source}: {what} must be a list")
    return value


def _strings(value: object, source: str, what: str) -> list[str]:
    items = _list(value, source, what)
    if not items or not all(isinstance(i, str) for i in items):
        raise RegistryError(f"{source}: {what} must be a non-empty list of names")
    return [str(i) for i in items]


def _kid(jwk: Mapping[str, Any], source: str) -> str:
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not _KID.match(kid):
        raise RegistryError(f"{source}: every key needs a 'kid' of 1-64 plain characters")
    return kid


def _b64url(value: object, length: int, source: str, kid: str) -> bytes:
    if not isinstance(value, str):
        raise RegistryError(f"{source}: key {kid}: coordinates must be base64url text")
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    if len(raw) != length:
        raise RegistryError(f"{source}: key {kid}: a coordinate must be {length} bytes")
    return raw


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _status(value: object, source: str) -> KeyStatus:
    try:
        return KeyStatus(str(value))
    except ValueError:
        raise RegistryError(f"{source}: status must be 'active' or 'revoked'") from None


def _optional_time(value: object, source: str, what: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise RegistryError(f"{source}: {what} must be an ISO 8601 time")
    if moment.tzinfo is None:
        raise RegistryError(f"{source}: {what} must name its time zone (e.g. end in Z)")
    return moment.astimezone(UTC)


def _time_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _unique(items: list[str], source: str, what: str) -> None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise RegistryError(f"{source}: {what} {item} appears twice")
        seen.add(item)
