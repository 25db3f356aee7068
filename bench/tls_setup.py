"""Mutual TLS for the benchmarks: which development certificate each party presents.

In production every hop runs mutual TLS with certificates from one CA (``ketenpoort keys
init`` makes a development CA and certificates). Under ``--tls mtls``:

- the load generator presents the police's client certificate to every target;
- the partner source serves with the police's own certificate (a partner's development
  certificate also names the local host) and requires a client certificate from the CA;
- the gateway serves with its certificate and requires the client's (``TlsMode.MUTUAL``,
  tokens bound to that certificate), and presents its certificate to the source;
- the proxy stands where the gateway stands: it serves with the gateway's certificate,
  requires the client's, and opens its own mutual-TLS connection to the source with the
  gateway's certificate. It terminates TLS and originates it again, as a TLS-terminating
  gRPC proxy (an ingress, a service-mesh sidecar) does, so per call it decrypts and
  encrypts on both hops, as the gateway does.

Everything here is PEM bytes, so it can be handed to a spawned process; server credentials
are made in the process that serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from adapters.channels import TlsMaterial
from gateway.crypto.devkeys import load_partner_private_keys
from gateway.crypto.layout import CaPaths, GatewayKeyPaths


@dataclass(frozen=True)
class ServerTls:
    """A server's certificate and key, and the CA its clients' certificates must come from."""

    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes

    def credentials(self) -> grpc.ServerCredentials:
        """Server credentials that require a client certificate (mutual TLS)."""
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)],
            root_certificates=self.ca_pem,
            require_client_auth=True,
        )


@dataclass(frozen=True)
class BenchTls:
    client: TlsMaterial  # what the load generator presents, to every target
    source: ServerTls  # the partner source's server side
    gateway_side: ServerTls  # the proxy's server side, with the gateway's certificate
    upstream: TlsMaterial  # what the proxy presents to the source, as the gateway does


def bench_tls(keys: Path, partner: str) -> BenchTls:
    """Mutual-TLS material from a development key directory; ``partner`` is both the client
    and the source system (the police ask, and the police's system answers)."""
    own = load_partner_private_keys(keys, partner)
    paths = GatewayKeyPaths.under(keys)
    ca_pem = CaPaths.under(keys).cert.read_bytes()
    cert_pem, key_pem = paths.tls_cert.read_bytes(), paths.tls_key.read_bytes()
    return BenchTls(
        client=TlsMaterial(ca_pem=own.ca_pem, cert_pem=own.tls_cert_pem, key_pem=own.tls_key_pem),
        source=ServerTls(own.tls_key_pem, own.tls_cert_pem, own.ca_pem),
        gateway_side=ServerTls(key_pem, cert_pem, ca_pem),
        upstream=TlsMaterial(ca_pem=ca_pem, cert_pem=cert_pem, key_pem=key_pem),
    )
