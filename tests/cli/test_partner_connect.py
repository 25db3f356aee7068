"""`ketenpoort serve`'s banner names every part of a token the gateway requires, as this
gateway is configured, so that a partner can make its first call from the banner alone."""

from __future__ import annotations

from gateway.cli.partner_connect import connect_lines
from gateway.server import auth
from gateway.server.config import TlsMode, embedded_default


def test_the_banner_names_every_required_claim_and_header() -> None:
    text = "\n".join(connect_lines(embedded_default(), "127.0.0.1:50651"))
    for claim in auth._REQUIRED_CLAIMS:
        assert f"{claim}=" in text or f"{claim} " in text, claim
    for part in ("alg=EdDSA or ES256", "kid=", "cnf={'x5t#S256'", "aud='ketenpoort'", "600 s"):
        assert part in text, part
    assert "mutual TLS" in text


def test_the_banner_follows_the_configuration() -> None:
    config = embedded_default().with_overrides(
        audience="zvh-twente", algorithms=("ES256",), max_token_lifetime_s=120,
        tls_mode=TlsMode.INSECURE, certificate_bound_tokens=False,
    )
    text = "\n".join(connect_lines(config, "127.0.0.1:1"))
    assert "aud='zvh-twente'" in text and "alg=ES256 " in text and "120 s" in text
    assert "cnf=" not in text and "mutual TLS" not in text
