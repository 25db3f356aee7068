"""Partner-side tokens: short-lived JWTs signed with the partner's registered key."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DEFAULT_LIFETIME_S = 300
# Renew a little before expiry so a token never expires on the wire.
RENEW_MARGIN_S = 30


def mint_token(
    *,
    partner_id: str,
    key: Ed25519PrivateKey,
    key_id: str,
    audience: str,
    role: str,
    user_ref: str = "",
    lifetime_s: int = DEFAULT_LIFETIME_S,
    now: float | None = None,
) -> str:
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": partner_id,
        "sub": partner_id,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_s,
        "jti": secrets.token_hex(16),
        "role": role,
    }
    if user_ref:
        claims["user"] = user_ref
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": key_id})


@dataclass
class TokenSource:
    """Mints a token once and reuses it until shortly before it expires: the gateway caches
    a verified token, so reuse saves a signature check on both sides."""

    partner_id: str
    key: Ed25519PrivateKey
    key_id: str
    audience: str
    role: str
    user_ref: str = ""
    lifetime_s: int = DEFAULT_LIFETIME_S
    clock: Callable[[], float] = time.time
    _token: str = field(default="", init=False, repr=False)
    _expires: float = field(default=0.0, init=False, repr=False)

    def token(self) -> str:
        now = self.clock()
        if not self._token or now >= self._expires - RENEW_MARGIN_S:
            self._token = mint_token(
                partner_id=self.partner_id,
                key=self.key,
                key_id=self.key_id,
                audience=self.audience,
                role=self.role,
                user_ref=self.user_ref,
                lifetime_s=self.lifetime_s,
                now=now,
            )
            self._expires = now + self.lifetime_s
        return self._token
