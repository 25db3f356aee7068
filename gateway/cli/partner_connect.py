"""What `ketenpoort serve` tells about how a partner connects: the transport, and every part a
token must have for this gateway's configuration (docs/partners-and-tokens.md, "Tokens";
docs/partners/onboarding.md). Kept beside the banner so a partner writing its own client, in
any language, needs nothing else to make its first call."""

from __future__ import annotations

from gateway.server.config import GatewayConfig, TlsMode

__all__ = ["connect_lines"]


def connect_lines(c: GatewayConfig, address: str) -> list[str]:
    """The banner's lines on connecting to the gateway at ``address`` configured as ``c``."""
    keys = c.keys_dir
    lines = ["how a partner connects:"]
    if c.tls_mode is TlsMode.MUTUAL:
        lines += [
            f"  address {address}, mutual TLS with the CA {keys}/ca/ca.pem and the",
            f"  partner's certificate {keys}/partners/<id>/tls.pem (registered to the partner);",
        ]
    else:
        lines.append(f"  address {address} ({c.tls_mode.value}: no client certificate);")
    algorithms = " or ".join(c.algorithms)
    lines += [
        "  every call carries 'authorization: Bearer <JWT>', a token for that one call:",
        f"    header  alg={algorithms} (partners/<id>/token.key.pem is EdDSA),",
        "            kid=<the registered token key's id: k_ + 16 hex of SHA-256 of the key>",
        "    claims  iss=<partner id>, role=<acting role the policy grants the partner>,",
        f"            aud={c.audience!r}, iat and exp (whole seconds, exp - iat <= "
        f"{c.max_token_lifetime_s} s),",
        "            jti=<8-128 printable characters, never used before>,",
    ]
    if c.certificate_bound_tokens:
        lines.append(
            "            cnf={'x5t#S256': <base64url SHA-256 of the client certificate's DER>},"
        )
    lines += [
        "            optional: nbf, user=<opaque reference to the acting person>",
        "  (docs/partners/onboarding.md). The Python client does all of this:",
        "  adapters.PartnerClient(address, PartnerCredentials.from_key_dir(keys, '<id>'),",
        "                         role=...)",
    ]
    return lines
