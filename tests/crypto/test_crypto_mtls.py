"""The development certificates work for real: a gRPC server on loopback requiring mTLS."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import grpc
import pytest

from gateway.crypto import DevKeyPaths, init_dev_keys, load_partner_private_keys

SERVICE = "ketenpoort.test.Echo"
METHOD = f"/{SERVICE}/Echo"
TIMEOUT_S = 10


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    # grpc-stubs types the values as bytes; at run time each is a list of bytes.
    auth = cast(Mapping[str, list[bytes]], context.auth_context())
    common_names = auth.get("x509_common_name") or [b"?"]
    return common_names[0] + b"|" + request


@pytest.fixture(scope="module")
def server(dev_keys: DevKeyPaths) -> Iterator[int]:
    srv = grpc.server(ThreadPoolExecutor(max_workers=2))
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)}
    )
    srv.add_generic_rpc_handlers((handler,))
    credentials = grpc.ssl_server_credentials(
        [(dev_keys.gateway.tls_key.read_bytes(), dev_keys.gateway.tls_cert.read_bytes())],
        root_certificates=dev_keys.ca.cert.read_bytes(),
        require_client_auth=True,
    )
    port = srv.add_secure_port("127.0.0.1:0", credentials)
    srv.start()
    try:
        yield port
    finally:
        srv.stop(None)


def _call(
    port: int,
    credentials: grpc.ChannelCredentials,
    *,
    server_name: str | None = None,
) -> bytes:
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options) as channel:
        response: bytes = channel.unary_unary(
            METHOD, request_serializer=None, response_deserializer=None
        )(b"ping", timeout=TIMEOUT_S)
        return response


def _partner_credentials(root: Path, partner: str) -> grpc.ChannelCredentials:
    keys = load_partner_private_keys(root, partner)
    return grpc.ssl_channel_credentials(
        root_certificates=keys.ca_pem,
        private_key=keys.tls_key_pem,
        certificate_chain=keys.tls_cert_pem,
    )


def test_partner_with_its_certificate_gets_through(dev_keys: DevKeyPaths, server: int) -> None:
    # Verified against the IP address in the server certificate's SAN.
    assert _call(server, _partner_credentials(dev_keys.root, "politie")) == b"politie|ping"


def test_server_name_in_san_verifies(dev_keys: DevKeyPaths, server: int) -> None:
    credentials = _partner_credentials(dev_keys.root, "ggz-twente")
    assert _call(server, credentials, server_name="localhost") == b"ggz-twente|ping"


def test_wrong_server_name_is_rejected_by_the_client(dev_keys: DevKeyPaths, server: int) -> None:
    credentials = _partner_credentials(dev_keys.root, "politie")
    with pytest.raises(grpc.RpcError) as caught:
        _call(server, credentials, server_name="gateway.example")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_client_without_certificate_is_rejected(dev_keys: DevKeyPaths, server: int) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=dev_keys.ca.cert.read_bytes())
    with pytest.raises(grpc.RpcError) as caught:
        _call(server, credentials)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_client_certificate_from_another_ca_is_rejected(
    dev_keys: DevKeyPaths, server: int, tmp_path: Path
) -> None:
    other = init_dev_keys(tmp_path / "other", ["politie"])
    keys = load_partner_private_keys(other.root, "politie")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=dev_keys.ca.cert.read_bytes(),  # trusts the right server
        private_key=keys.tls_key_pem,
        certificate_chain=keys.tls_cert_pem,
    )
    with pytest.raises(grpc.RpcError) as caught:
        _call(server, credentials)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_client_that_trusts_another_ca_rejects_the_server(
    dev_keys: DevKeyPaths, server: int, tmp_path: Path
) -> None:
    other = init_dev_keys(tmp_path / "other", ["politie"])
    theirs = load_partner_private_keys(other.root, "politie")
    ours = load_partner_private_keys(dev_keys.root, "politie")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=theirs.ca_pem,
        private_key=ours.tls_key_pem,
        certificate_chain=ours.tls_cert_pem,
    )
    with pytest.raises(grpc.RpcError) as caught:
        _call(server, credentials)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
