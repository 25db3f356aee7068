"""Partner authentication: certificate-bound, single-use JWTs checked against the registry.

A partner system signs a short-lived token for each call with a key in its registry entry
and presents it over mutual TLS. The gateway:

- takes the partner's identity from the client certificate: its SHA-256 thumbprint must be
  registered to exactly one partner, and that partner must be the token's issuer;
- requires the token to be bound to that certificate (RFC 8705 ``cnf`` / ``x5t#S256``), so a
  token taken from one connection is useless on another;
- accepts only an algorithm that is both on the gateway's allow-list and on the partner's,
  and only the key the header's ``kid`` names (never ``none``, never HMAC: a registry
  cannot even hold such a key);
- requires ``iss``, ``aud``, ``exp``, ``iat``, ``jti`` and ``role``; checks ``nbf`` when
  present, a maximum lifetime and a clock-skew leeway; times are whole seconds (a JSON
  integer), so NaN, Infinity and fractions are refused like any other bad claim;
- checks the acting role against the roles the policy grants the partner and that the
  user reference is an opaque reference, not a name.

The signature is checked with ``cryptography`` directly against the registered key object,
with the algorithm that key was registered for: there is no header-driven key handling to
confuse. Single use (the ``jti`` claim in the shared store) and revocations are checked by
:mod:`gateway.server.token_replay` after this step.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import grpc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from gateway.broker.caller import Principal
from gateway.registry.entries import TOKEN_ALGORITHMS, TokenKey

__all__ = [
    "AuthRefused",
    "RefusalReason",
    "RegisteredPartner",
    "TokenVerifier",
    "VerifiedToken",
]

MAX_TOKEN_BYTES = 8192
_REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti", "role")
# An opaque reference to the acting person (an employee number, a pseudonymous id): no
# spaces, so a full name cannot pass as one by accident.
_USER_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,63}\Z")
_JTI = re.compile(r"[\x21-\x7e]{8,128}\Z")
_ROLE = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
# Beyond the year 9999: no token time the gateway can compare, store or turn into a date.
_MAX_SECONDS = 253_402_300_800


class RefusalReason(StrEnum):
    """Why a call was not authenticated; the values are metric labels and log codes."""

    MISSING_TOKEN = "missing_token"
    MALFORMED_TOKEN = "malformed_token"
    NO_CERTIFICATE = "no_certificate"
    UNREGISTERED_CERTIFICATE = "unregistered_certificate"
    REVOKED_CERTIFICATE = "revoked_certificate"
    UNKNOWN_ISSUER = "unknown_issuer"
    ISSUER_MISMATCH = "issuer_mismatch"
    ALGORITHM_NOT_ALLOWED = "algorithm_not_allowed"
    UNKNOWN_KEY = "unknown_key"
    REVOKED_KEY = "revoked_key"
    BAD_SIGNATURE = "bad_signature"
    NOT_BOUND = "token_not_bound"
    WRONG_CERTIFICATE = "wrong_certificate"
    WRONG_AUDIENCE = "wrong_audience"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    LIFETIME_EXCEEDED = "lifetime_exceeded"
    MISSING_CLAIM = "missing_claim"
    BAD_CLAIM = "bad_claim"
    REPLAYED = "replayed"
    REVOKED_PARTNER = "revoked_partner"
    ROLE_NOT_ALLOWED = "role_not_allowed"
    CHECK_UNAVAILABLE = "check_unavailable"
    CALL_KIND_NOT_SERVED = "call_kind_not_served"

    @property
    def status(self) -> grpc.StatusCode:
        if self in _PERMISSION:
            return grpc.StatusCode.PERMISSION_DENIED
        if self is RefusalReason.CHECK_UNAVAILABLE:
            return grpc.StatusCode.UNAVAILABLE
        if self is RefusalReason.CALL_KIND_NOT_SERVED:
            return grpc.StatusCode.UNIMPLEMENTED
        return grpc.StatusCode.UNAUTHENTICATED


# Who the caller is was established; what it asked for is not granted.
_PERMISSION = frozenset({RefusalReason.REVOKED_PARTNER, RefusalReason.ROLE_NOT_ALLOWED})


class AuthRefused(Exception):
    """The call is refused. ``message`` is safe to return; the rest goes to the log record:
    identifiers only, never the token."""

    def __init__(
        self,
        reason: RefusalReason,
        message: str,
        *,
        partner_id: str = "",
        issuer: str = "",
        key_id: str = "",
        certificate: str = "",
        role: str = "",
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.partner_id = partner_id
        self.issuer = issuer
        self.key_id = key_id
        self.certificate = certificate
        self.role = role


@dataclass(frozen=True)
class RegisteredPartner:
    """What the gateway knows about a partner for authentication (policy + registry)."""

    partner_id: str
    partner_type: str
    roles: frozenset[str]
    token_keys: Mapping[str, tuple[str, TokenKey]]  # active kid -> (algorithm, key)
    algorithms: frozenset[str] = frozenset({"EdDSA"})
    revoked_keys: frozenset[str] = frozenset()
    certificates: frozenset[str] = frozenset()  # active x5t#S256 thumbprints
    revoked_certificates: frozenset[str] = frozenset()
    active: bool = True


@dataclass(frozen=True)
class VerifiedToken:
    principal: Principal
    jti: str
    key_id: str
    certificate: str  # the thumbprint it is bound to; "" when binding is not required


class TokenVerifier:
    def __init__(
        self,
        partners: Callable[[], Mapping[str, RegisteredPartner]],
        by_certificate: Callable[[], Mapping[str, str]],
        *,
        audience: str,
        algorithms: tuple[str, ...],
        leeway_s: int,
        max_lifetime_s: int,
        require_binding: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        unknown = [a for a in algorithms if a not in TOKEN_ALGORITHMS]
        if not algorithms or unknown:
            raise ValueError(
                f"the algorithm allow-list may name only {', '.join(TOKEN_ALGORITHMS)}"
            )
        self._partners = partners
        self._by_certificate = by_certificate
        self._audience = audience
        self._algorithms = frozenset(algorithms)
        self._leeway = leeway_s
        self._max_lifetime = max_lifetime_s
        self._require_binding = require_binding
        self._clock = clock

    def verify(self, token: str, certificate: str | None) -> VerifiedToken:
        """Check ``token`` presented over a connection whose client certificate has the
        thumbprint ``certificate`` (None without one); raise AuthRefused."""
        caller = self._caller_of(certificate)
        header, claims, signing_input, signature = _split(token, caller, certificate)
        issuer = claims.get("iss")
        if not isinstance(issuer, str):
            raise _refuse(RefusalReason.MISSING_CLAIM, "token has no issuer", caller, certificate)
        partner = self._partners().get(issuer)
        if caller is not None and issuer != caller.partner_id:
            raise _refuse(RefusalReason.ISSUER_MISMATCH,
                          "token issuer is not the partner the certificate belongs to",
                          caller, certificate, issuer=issuer)
        if partner is None:
            raise _refuse(RefusalReason.UNKNOWN_ISSUER, "token issuer is not a registered partner",
                          None, certificate, issuer=issuer)
        kid = header.get("kid")
        alg = header.get("alg")
        algorithm, key = self._key(partner, kid, alg, certificate)
        _check_signature(key, algorithm, signing_input, signature, partner, str(kid), certificate)
        if not partner.active:
            raise _refuse(RefusalReason.REVOKED_PARTNER, "partner is revoked", partner,
                          certificate, key_id=str(kid))
        return self._checked_claims(partner, claims, str(kid), certificate)

    def _caller_of(self, certificate: str | None) -> RegisteredPartner | None:
        """The partner the presented certificate is registered to; None when binding is off."""
        if certificate is None:
            if self._require_binding:
                raise AuthRefused(RefusalReason.NO_CERTIFICATE, "a client certificate is required")
            return None
        partner_id = self._by_certificate().get(certificate)
        partner = self._partners().get(partner_id) if partner_id else None
        if partner is None:
            for candidate in self._partners().values():
                if certificate in candidate.revoked_certificates:
                    raise _refuse(RefusalReason.REVOKED_CERTIFICATE, "certificate is revoked",
                                  candidate, certificate)
            raise AuthRefused(RefusalReason.UNREGISTERED_CERTIFICATE,
                              "client certificate is not registered to a partner",
                              certificate=certificate)
        return partner

    def _key(
        self, partner: RegisteredPartner, kid: object, alg: object, certificate: str | None
    ) -> tuple[str, TokenKey]:
        if not isinstance(alg, str) or alg not in self._algorithms or alg not in partner.algorithms:
            raise _refuse(RefusalReason.ALGORITHM_NOT_ALLOWED,
                          f"token algorithm {str(alg)[:16]!r} is not allowed for this partner",
                          partner, certificate)
        if not isinstance(kid, str):
            raise _refuse(RefusalReason.UNKNOWN_KEY, "token header names no key id (kid)",
                          partner, certificate)
        if kid in partner.revoked_keys:
            raise _refuse(RefusalReason.REVOKED_KEY, "token key is revoked", partner,
                          certificate, key_id=kid)
        registered = partner.token_keys.get(kid)
        if registered is None:
            raise _refuse(RefusalReason.UNKNOWN_KEY,
                          "token key id is not registered for this partner", partner,
                          certificate, key_id=kid[:64])
        if registered[0] != alg:
            raise _refuse(RefusalReason.ALGORITHM_NOT_ALLOWED,
                          "token algorithm does not match the registered key", partner,
                          certificate, key_id=kid)
        return registered

    def _checked_claims(
        self,
        partner: RegisteredPartner,
        claims: dict[str, object],
        kid: str,
        certificate: str | None,
    ) -> VerifiedToken:
        def refuse(reason: RefusalReason, message: str) -> AuthRefused:
            role = claims.get("role")
            return _refuse(reason, message, partner, certificate, key_id=kid,
                           role=role if isinstance(role, str) and _ROLE.match(role) else "")

        for name in _REQUIRED_CLAIMS:
            if name not in claims:
                raise refuse(RefusalReason.MISSING_CLAIM, f"token has no {name!r} claim")
        if certificate is not None:
            cnf = claims.get("cnf")
            bound = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
            if not isinstance(bound, str):
                raise refuse(RefusalReason.NOT_BOUND,
                             "token is not bound to a certificate (cnf x5t#S256)")
            if bound != certificate:
                raise refuse(RefusalReason.WRONG_CERTIFICATE,
                             "token is bound to another certificate")
        aud = claims["aud"]
        audiences = aud if isinstance(aud, list) else [aud]
        if self._audience not in audiences:
            raise refuse(RefusalReason.WRONG_AUDIENCE, "token is for another audience")
        now = self._clock()
        exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf", claims["iat"])
        if not (_is_seconds(exp) and _is_seconds(iat) and _is_seconds(nbf)):
            raise refuse(RefusalReason.BAD_CLAIM,
                         "token times (exp, iat, nbf) must be whole seconds since the epoch")
        assert isinstance(exp, int) and isinstance(iat, int) and isinstance(nbf, int)
        if exp + self._leeway <= now:
            raise refuse(RefusalReason.EXPIRED, "token has expired")
        if nbf - self._leeway > now or iat - self._leeway > now:
            raise refuse(RefusalReason.NOT_YET_VALID, "token is not yet valid")
        if exp - iat > self._max_lifetime:
            raise refuse(RefusalReason.LIFETIME_EXCEEDED,
                         f"token lifetime exceeds {self._max_lifetime} seconds")
        jti, role, user = claims["jti"], claims["role"], claims.get("user", "")
        if not isinstance(jti, str) or not _JTI.match(jti):
            raise refuse(RefusalReason.BAD_CLAIM,
                         "token id (jti) must be 8-128 printable characters")
        if not isinstance(user, str) or (user and not _USER_REF.match(user)):
            raise refuse(RefusalReason.BAD_CLAIM,
                         "user must be an opaque reference (letters, digits, ._:@/-), not a name")
        if not isinstance(role, str) or role not in partner.roles:
            raise refuse(
                RefusalReason.ROLE_NOT_ALLOWED,
                f"role {str(role)[:64]!r} is not granted to partner {partner.partner_id!r}",
            )
        principal = Principal(
            partner_id=partner.partner_id,
            partner_type=partner.partner_type,
            role=role,
            user_ref=user,
            token_id=jti,
            expires_at=float(exp),
        )
        return VerifiedToken(principal, jti, kid, certificate or "")


def _is_seconds(value: object) -> bool:
    """A NumericDate as the gateway takes it: a JSON integer within the range a timestamp
    can have. NaN, Infinity (which Python's JSON reader accepts) and fractions are refused:
    NaN compares false with everything, so it would pass every expiry and lifetime check."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_SECONDS


def _refuse(
    reason: RefusalReason,
    message: str,
    partner: RegisteredPartner | None,
    certificate: str | None,
    *,
    issuer: str = "",
    key_id: str = "",
    role: str = "",
) -> AuthRefused:
    return AuthRefused(
        reason,
        message,
        partner_id=partner.partner_id if partner is not None else "",
        issuer=issuer[:64] if issuer.isprintable() else "",
        key_id=key_id,
        certificate=certificate or "",
        role=role,
    )


def _split(
    token: str, caller: RegisteredPartner | None, certificate: str | None
) -> tuple[dict[str, object], dict[str, object], bytes, bytes]:
    def malformed(message: str = "malformed token") -> AuthRefused:
        return _refuse(RefusalReason.MALFORMED_TOKEN, message, caller, certificate)

    if len(token) > MAX_TOKEN_BYTES:
        raise malformed("token is too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise malformed()
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        # RecursionError: a payload of thousands of nested brackets fits in a token's size.
        raise malformed() from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise malformed()
    if header.get("crit") is not None:
        # No extension is understood, so a token that makes one critical is refused (RFC 7515).
        raise malformed("token names critical header parameters")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def _b64url(segment: str) -> bytes:
    if not segment.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _check_signature(
    key: TokenKey,
    algorithm: str,
    signing_input: bytes,
    signature: bytes,
    partner: RegisteredPartner,
    kid: str,
    certificate: str | None,
) -> None:
    try:
        if algorithm == "EdDSA" and isinstance(key, Ed25519PublicKey):
            key.verify(signature, signing_input)
            return
        if algorithm == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                raise InvalidSignature
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
            return
    except InvalidSignature:
        pass
    raise _refuse(RefusalReason.BAD_SIGNATURE, "token signature does not verify", partner,
                  certificate, key_id=kid)
