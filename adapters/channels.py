"""gRPC channels to the gateway or a source, with TLS or mutual TLS from PEM material."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class TlsMaterial:
    """PEM bytes: the CA that signed the server, and optionally our client certificate."""

    ca_pem: bytes
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    server_name: str | None = None  # override when the address is not in the certificate


def open_channel(
    address: str,
    tls: TlsMaterial | None,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    interceptors: Sequence[aio.UnaryUnaryClientInterceptor[Any, Any]] = (),
) -> aio.Channel:
    """A channel to ``address``: mutual TLS with ``tls`` (plaintext without, for loopback
    tests); ``interceptors`` see every call on it."""
    chained: Any = list(interceptors) or None
    options: list[tuple[str, int | str]] = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    if tls is None:
        return aio.insecure_channel(address, options=options, interceptors=chained)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    creds = grpc.ssl_channel_credentials(
        root_certificates=tls.ca_pem,
        private_key=tls.key_pem,
        certificate_chain=tls.cert_pem,
    )
    return aio.secure_channel(address, creds, options=options, interceptors=chained)
