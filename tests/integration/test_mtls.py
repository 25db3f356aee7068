"""The gateway over mutual TLS with the development CA: partners with a certificate get in,
others are turned away at the handshake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from adapters.channels import TlsMaterial
from adapters.client import PartnerClient, PartnerCredentials
from gateway.cli.demo_data import SUBJECT
from gateway.core import CompiledPolicy
from gateway.crypto.layout import CaPaths
from gateway.server.app import Gateway, start_gateway
from gateway.server.config import TlsMode
from tests.integration.harness import gateway_config


@pytest.fixture
async def mtls_gateway(
    tmp_path: Path, dev_keys: Path, shipped_policy: CompiledPolicy
) -> AsyncIterator[Gateway]:
    config = gateway_config(f"sqlite:///{tmp_path / 'g.db'}", dev_keys, tls_mode=TlsMode.MUTUAL)
    gateway = await start_gateway(config, policy=shipped_policy, sources={})
    yield gateway
    await gateway.stop(grace=None)


async def test_partner_with_certificate_is_served(mtls_gateway: Gateway, dev_keys: Path) -> None:
    creds = PartnerCredentials.from_key_dir(dev_keys, "police")
    async with PartnerClient(f"localhost:{mtls_gateway.port}", creds, role="case_director") as c:
        reply = await c.register_case(SUBJECT, "code_rood", reason="acute")
    assert reply.case_id


async def test_client_without_certificate_is_refused(mtls_gateway: Gateway, dev_keys: Path) -> None:
    creds = PartnerCredentials.from_key_dir(dev_keys, "police")
    no_cert = TlsMaterial(ca_pem=CaPaths.under(dev_keys).cert.read_bytes())
    anonymous = PartnerCredentials(
        creds.partner_id,
        creds.token_key,
        creds.token_key_id,
        creds.hpke_key,
        creds.hpke_key_id,
        no_cert,
    )
    async with PartnerClient(
        f"localhost:{mtls_gateway.port}", anonymous, role="case_director"
    ) as c:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await c.register_case(SUBJECT, "code_rood", reason="acute")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_plaintext_client_is_refused(mtls_gateway: Gateway, dev_keys: Path) -> None:
    creds = PartnerCredentials.from_key_dir(dev_keys, "police", tls=False)
    async with PartnerClient(f"localhost:{mtls_gateway.port}", creds, role="case_director") as c:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await c.register_case(SUBJECT, "code_rood", reason="acute")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
