"""Partner authentication: signed JWTs verified against the partner registry.

A partner system signs short-lived tokens with its registered key. The gateway accepts
only algorithms on an explicit allow-list (never ``none``, never HMAC with a public key),
checks issuer, audience, expiry, issue time and the acting role, and caches a verified
token until it expires: verifying EdDSA costs ~240 µs, a cache hit ~1 µs.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.broker.caller import Principal

TokenKey = Ed25519PublicKey | EllipticCurvePublicKey

DEFAULT_CACHE_SIZE = 10_000
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "jti", "role"]


class AuthError(Exception):
    """The caller could not be authenticated. The message is safe to return."""


class RoleNotAllowed(Exception):
    """The token is valid but claims a role the registry does not grant the partner."""


@dataclass(frozen=True)
class RegisteredPartner:
    """What the registry knows about a partner for authentication."""

    partner_id: str
    partner_type: str
    roles: frozenset[str]
    token_keys: Mapping[str, TokenKey]  # key id -> public key


class TokenVerifier:
    def __init__(
        self,
        partners: Callable[[], Mapping[str, RegisteredPartner]],
        *,
        audience: str,
        algorithms: tuple[str, ...],
        leeway_s: int,
        max_lifetime_s: int,
        clock: Callable[[], float] = time.time,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        if not algorithms or any(a.lower() == "none" or a.startswith("HS") for a in algorithms):
            raise ValueError("the algorithm allow-list must name asymmetric algorithms only")
        self._partners = partners
        self._audience = audience
        self._algorithms = list(algorithms)
        self._leeway = leeway_s
        self._max_lifetime = max_lifetime_s
        self._clock = clock
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at + self._leeway > now and self._still_registered(cached):
                return cached
            with self._lock:
                self._cache.pop(token, None)
        principal = self._verify_uncached(token, now)
        with self._lock:
            self._cache[token] = principal
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return principal

    def forget(self) -> None:
        """Drop cached tokens, e.g. after the partner registry changed."""
        with self._lock:
            self._cache.clear()

    def _still_registered(self, principal: Principal) -> bool:
        partner = self._partners().get(principal.partner_id)
        return partner is not None and principal.role in partner.roles

    def _verify_uncached(self, token: str, now: float) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError("malformed token") from exc
        alg = header.get("alg")
        if alg not in self._algorithms:
            raise AuthError(f"token algorithm {alg!r} is not allowed")
        issuer = unverified.get("iss")
        partner = self._partners().get(issuer) if isinstance(issuer, str) else None
        if partner is None:
            raise AuthError("token issuer is not a registered partner")
        key = self._pick_key(partner, header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=partner.partner_id,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError("token is not yet valid") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("token is for another audience") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError("token signature does not verify") from exc
        except jwt.PyJWTError as exc:
            raise AuthError(f"token rejected: {exc}") from exc
        return self._principal(partner, claims, now)

    def _pick_key(self, partner: RegisteredPartner, kid: object) -> TokenKey:
        if isinstance(kid, str) and kid in partner.token_keys:
            return partner.token_keys[kid]
        if kid is None and len(partner.token_keys) == 1:
            return next(iter(partner.token_keys.values()))
        raise AuthError("token key id is not registered for this partner")

    def _principal(
        self, partner: RegisteredPartner, claims: dict[str, object], now: float
    ) -> Principal:
        exp, iat = claims["exp"], claims["iat"]
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise AuthError("token times must be numbers")
        if iat > now + self._leeway:
            raise AuthError("token is issued in the future")
        if exp - iat > self._max_lifetime:
            raise AuthError(f"token lifetime exceeds {self._max_lifetime} seconds")
        role = claims["role"]
        if not isinstance(role, str) or role not in partner.roles:
            raise RoleNotAllowed(f"role {role!r} is not granted to partner {partner.partner_id!r}")
        user = claims.get("user", "")
        return Principal(
            partner_id=partner.partner_id,
            partner_type=partner.partner_type,
            role=role,
            user_ref=str(user) if user else "",
            token_id=str(claims["jti"]),
            expires_at=float(exp),
        )
