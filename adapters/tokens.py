"""Partner-side tokens: a short-lived JWT per call, signed with the partner's registered key
and bound to its mutual-TLS client certificate (RFC 8705 ``cnf`` / ``x5t#S256``).

The gateway accepts a token once: a token copied off the wire cannot be replayed, and one
taken together with its connection's certificate key is spent already.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.crypto.keyids import pem_certificate_thumbprint as certificate_thumbprint

__all__ = ["DEFAULT_LIFETIME_S", "TokenSource", "certificate_thumbprint", "mint_token"]

DEFAULT_LIFETIME_S = 120


def mint_token(
    *,
    partner_id: str,
    key: Ed25519PrivateKey,
    key_id: str,
    audience: str,
    role: str,
    user_ref: str = "",
    certificate: str = "",
    lifetime_s: int = DEFAULT_LIFETIME_S,
    now: float | None = None,
) -> str:
    """One token for one call; ``certificate`` is the client certificate's thumbprint."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "iss": partner_id,
        "sub": partner_id,
        "aud": audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_s,
        "jti": secrets.token_urlsafe(18),
        "role": role,
    }
    if user_ref:
        claims["user"] = user_ref
    if certificate:
        claims["cnf"] = {"x5t#S256": certificate}
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": key_id})


@dataclass
class TokenSource:
    """Mints a fresh token for every call (the gateway accepts each token once)."""

    partner_id: str
    key: Ed25519PrivateKey
    key_id: str
    audience: str
    role: str
    user_ref: str = ""
    certificate: str = ""
    lifetime_s: int = DEFAULT_LIFETIME_S
    clock: Callable[[], float] = time.time

    def token(self) -> str:
        return mint_token(
            partner_id=self.partner_id,
            key=self.key,
            key_id=self.key_id,
            audience=self.audience,
            role=self.role,
            user_ref=self.user_ref,
            certificate=self.certificate,
            lifetime_s=self.lifetime_s,
            now=self.clock(),
        )
