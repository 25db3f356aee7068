"""The gateway's TLS certificate is taken again from disk when its files change, without a
restart; and its address is not shared with another process."""

from __future__ import annotations

import asyncio
import socket
import ssl
from datetime import UTC, datetime

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from grpc import aio

from gateway.crypto import _certs
from gateway.crypto._pem import load_certificate, load_ec_private_key
from gateway.crypto.layout import CaPaths, GatewayKeyPaths, PartnerKeyPaths
from tests.integration.harness import Harness
from tests.integration.helpers import register

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _served_certificate(harness: Harness) -> bytes:
    """The DER certificate the gateway presents to a new connection (mutual TLS, as the
    police)."""
    host, port = harness.address.rsplit(":", 1)
    police = PartnerKeyPaths.under(harness.keys, "police")
    context = ssl.create_default_context(cafile=str(CaPaths.under(harness.keys).cert))
    context.check_hostname = False
    context.load_cert_chain(police.tls_cert, police.tls_key)
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def _der(pem: bytes) -> bytes:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)


def _renew(harness: Harness) -> bytes:
    """A new key and certificate for the gateway from the same CA, written over the old
    files (key first, as a renewal script would); the new certificate's PEM."""
    ca = CaPaths.under(harness.keys)
    paths = GatewayKeyPaths.under(harness.keys)
    key = _certs.new_tls_key()
    cert = _certs.build_server_cert(
        load_certificate(ca.cert), load_ec_private_key(ca.key), key,
        ("localhost",), ("127.0.0.1",), datetime.now(UTC),
    ).public_bytes(serialization.Encoding.PEM)
    paths.tls_key.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    paths.tls_cert.write_bytes(cert)
    return cert


async def test_a_new_connection_sees_the_certificate_replaced_on_disk(harness: Harness) -> None:
    old = GatewayKeyPaths.under(harness.keys).tls_cert.read_bytes()
    assert await asyncio.to_thread(_served_certificate, harness) == _der(old)
    police = harness.client("police")
    await register(police)

    new = _renew(harness)
    assert await asyncio.to_thread(_served_certificate, harness) == _der(new)
    # Partners on new connections keep working with the renewed certificate.
    assert (await register(harness.client("police"))).startswith("c_")
    # So does the connection opened before the renewal.
    assert (await register(police)).startswith("c_")


async def test_a_half_written_renewal_keeps_the_certificate_in_force(harness: Harness) -> None:
    paths = GatewayKeyPaths.under(harness.keys)
    old = paths.tls_cert.read_bytes()
    # A key that is not the certificate's: the pair in force keeps serving.
    other = PartnerKeyPaths.under(harness.keys, "ggz").tls_key.read_bytes()
    paths.tls_key.write_bytes(other)
    assert await asyncio.to_thread(_served_certificate, harness) == _der(old)
    assert (await register(harness.client("police"))).startswith("c_")


async def test_the_address_is_not_shared_with_another_server(harness: Harness) -> None:
    # A server that would share (grpc's default SO_REUSEPORT) cannot take the gateway's port:
    # the gateway's socket does not allow it.
    second = aio.server()
    try:
        with pytest.raises(RuntimeError, match="Failed to bind"):
            second.add_insecure_port(harness.address)
    finally:
        await second.stop(None)
    channel = harness.channel("police")
    try:
        await grpc.aio.Channel.channel_ready(channel)
    finally:
        await channel.close()
