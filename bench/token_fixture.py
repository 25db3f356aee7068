"""The token benchmark's fixture: development keys, the partner registry, and the client's
and the gateway's token code set up as the gateway and ``PartnerClient`` set them up.

The police (role ``case_director``) call; the registry holds every partner the shipped
policy names, as a development gateway's does. Tokens are minted by ``TokenSource`` (what
``PartnerClient`` does per call) and checked by ``TokenVerifier`` with the gateway's default
settings, bound to the police's certificate (mutual TLS) or unbound (plaintext).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from adapters.client import DEFAULT_AUDIENCE, PartnerCredentials
from adapters.tokens import TokenSource, certificate_thumbprint
from gateway.crypto.devkeys import init_dev_keys, load_partner_public_keys
from gateway.policyfiles import load_policy_dir
from gateway.registry.dev import register_dev_partners
from gateway.server.auth import TokenVerifier
from gateway.server.config import (
    DEFAULT_ALGORITHMS,
    DEFAULT_MAX_TOKEN_LIFETIME_S,
    DEFAULT_TOKEN_LEEWAY_S,
    shipped_policy_dir,
)
from gateway.server.config import DEFAULT_AUDIENCE as GATEWAY_AUDIENCE
from gateway.server.partners import PartnerRegistry, load_registry

PARTNER = "police"
ROLE = "case_director"


@dataclass(frozen=True)
class TokenFixture:
    keys: Path
    thumbprint: str  # x5t#S256 of the police's client certificate
    signing_key: Ed25519PrivateKey
    public_key: Ed25519PublicKey
    bound: TokenSource  # mints tokens bound to the certificate
    unbound: TokenSource
    verify_bound: TokenVerifier  # the gateway under mutual TLS
    verify_unbound: TokenVerifier  # the gateway in plaintext (tokens cannot be bound)


def token_fixture(work: Path) -> TokenFixture:
    """Keys and registry in ``work``; the client's token sources and the gateway's verifiers."""
    policy = load_policy_dir(shipped_policy_dir())
    keys = work / "keys"
    partner_ids = sorted(policy.partners)
    init_dev_keys(keys, partner_ids)
    registry = load_registry(policy, _registry(keys, work / "registry", partner_ids))
    creds = PartnerCredentials.from_key_dir(keys, PARTNER)
    if creds.tls is None or not creds.tls.cert_pem:
        raise RuntimeError("the development keys hold no client certificate")
    thumbprint = certificate_thumbprint(creds.tls.cert_pem)

    def source(certificate: str) -> TokenSource:
        return TokenSource(
            partner_id=PARTNER,
            key=creds.token_key,
            key_id=creds.token_key_id,
            audience=DEFAULT_AUDIENCE,
            role=ROLE,
            certificate=certificate,
        )

    return TokenFixture(
        keys=keys,
        thumbprint=thumbprint,
        signing_key=creds.token_key,
        public_key=load_partner_public_keys(keys, PARTNER).token_key,
        bound=source(thumbprint),
        unbound=source(""),
        verify_bound=_verifier(registry, require_binding=True),
        verify_unbound=_verifier(registry, require_binding=False),
    )


def signing_input_and_signature(token: str) -> tuple[bytes, bytes]:
    """A compact JWS split into what is signed and the signature."""
    header, claims, signature = token.split(".")
    return f"{header}.{claims}".encode("ascii"), base64.urlsafe_b64decode(
        signature + "=" * (-len(signature) % 4)
    )


def _registry(keys: Path, directory: Path, partner_ids: list[str]) -> Path:
    register_dev_partners(keys, directory, partner_ids)
    return directory


def _verifier(registry: PartnerRegistry, *, require_binding: bool) -> TokenVerifier:
    # As gateway.server.app builds it, with the configuration's defaults.
    return TokenVerifier(
        lambda: registry.partners,
        lambda: registry.by_certificate,
        audience=GATEWAY_AUDIENCE,
        algorithms=DEFAULT_ALGORITHMS,
        leeway_s=DEFAULT_TOKEN_LEEWAY_S,
        max_lifetime_s=DEFAULT_MAX_TOKEN_LIFETIME_S,
        require_binding=require_binding,
    )
