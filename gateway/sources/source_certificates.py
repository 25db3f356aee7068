"""The gateway's connection to a source trusts only a certificate registered to its partner.

Mutual TLS to a source checks that the source's certificate comes from the CA and names the
address; every partner's certificate from that CA passes that check, so a system presenting
another partner's certificate (ggz's, serving as the police's source) was asked and believed.
The source's certificate must instead be one the partner registry holds, active, for the
partner the source is configured for.

grpcio does not show a client the certificate its server presented (the auth context is a
server-side API, and a name check covers DNS names and IP addresses, not the partner URI in a
certificate), but it takes any certificate as a trust anchor. So the gateway looks first: one
TLS handshake of its own (Python's ``ssl``, with the gateway's client certificate and the CA)
reads the certificate the source presents; its thumbprint (``x5t#S256``) must be registered to
the partner; and the gRPC channel is then opened with exactly that certificate as its only
trust anchor. grpc's own handshake enforces the pin on every connection, so the look is not a
check that a relay could pass once and then evade. The registry is asked on every call: a
certificate revoked or no longer registered drops the pin, and the next call looks again. A
connection that fails (the source moved to a new certificate, say) drops the pin too; looks
are at most one per ``retry_after_s`` per source, and without a pin the source is unavailable.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from grpc import aio

from adapters.channels import TlsMaterial, open_channel
from gateway.broker.sources import SourceUnavailable
from gateway.crypto.keyids import certificate_thumbprint

__all__ = [
    "CertificateNotRegistered",
    "PinnedChannel",
    "SourceCertificates",
    "probe_context",
]

log = logging.getLogger("ketenpoort.sources")

DEFAULT_PROBE_TIMEOUT_S = 5.0
DEFAULT_RETRY_AFTER_S = 1.0
# Channels replaced by a new pin are closed after the calls on them had time to end.
_OLD_CHANNEL_GRACE_S = 30.0


class RegisteredCertificates(Protocol):
    """What the registry holds of a partner's certificates (RegisteredPartner is one)."""

    @property
    def certificates(self) -> frozenset[str]: ...  # active x5t#S256 thumbprints


class CertificateNotRegistered(SourceUnavailable):
    """The source presented a certificate that is not registered to its partner."""


def probe_context(ca_pem: bytes, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """The TLS client context of the look: the CA that issues sources' certificates, and the
    gateway's own client certificate (sources require one)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem.decode("ascii"))
    context.load_cert_chain(cert_file, key_file)
    context.set_alpn_protocols(["h2"])
    return context


@dataclass(frozen=True)
class SourceCertificates:
    """How the gateway pins its sources: ``partners()`` is the registry in force (partner id
    -> registered certificates), ``probe`` the TLS context of a look."""

    partners: Callable[[], Mapping[str, RegisteredCertificates]]
    probe: ssl.SSLContext
    probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S
    retry_after_s: float = DEFAULT_RETRY_AFTER_S
    clock: Callable[[], float] = time.monotonic

    def registered(self, partner_id: str) -> frozenset[str]:
        partner = self.partners().get(partner_id)
        return partner.certificates if partner is not None else frozenset()

    def owner(self, thumbprint: str) -> str:
        """The partner a certificate is registered to, for the operator's log line."""
        for partner_id, partner in self.partners().items():
            if thumbprint in partner.certificates:
                return partner_id
        return ""


@dataclass(frozen=True)
class _Pin:
    thumbprint: str
    channel: aio.Channel


class PinnedChannel:
    """The channel to one source system, trusting only the certificate of ``partner_id`` that
    the source presented and the registry holds. ``tls`` is the gateway's client material
    (its CA is replaced by the pinned certificate)."""

    def __init__(
        self, address: str, tls: TlsMaterial, partner_id: str, pinning: SourceCertificates
    ) -> None:
        self._host, self._port = host_and_port(address)
        self._address = address
        self._tls = tls
        self._partner_id = partner_id
        self._pinning = pinning
        self._pin: _Pin | None = None
        self._lock: asyncio.Lock | None = None
        self._next_look = 0.0
        # Channels of earlier pins, closing once the calls on them had time to end.
        self._retired: dict[aio.Channel, asyncio.Task[None]] = {}

    @property
    def thumbprint(self) -> str:
        """The pinned certificate's thumbprint, or "" before a look succeeded."""
        return self._pin.thumbprint if self._pin is not None else ""

    async def get(self) -> aio.Channel:
        """The pinned channel; raises SourceUnavailable (CertificateNotRegistered when the
        source presents a certificate that is not its partner's)."""
        pin = self._pin
        if pin is not None and pin.thumbprint in self._pinning.registered(self._partner_id):
            return pin.channel
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            pin = self._pin
            registered = self._pinning.registered(self._partner_id)
            if pin is not None and pin.thumbprint in registered:
                return pin.channel
            if pin is not None:
                log.warning(
                    "the certificate of %s's source is no longer registered; looking again",
                    self._partner_id,
                )
                self.forget()
            return await self._look(registered)

    def forget(self) -> None:
        """Drop the pin (a call failed to connect): the next call looks again."""
        pin, self._pin = self._pin, None
        if pin is not None:
            channel = pin.channel
            task = asyncio.get_running_loop().create_task(channel.close(_OLD_CHANNEL_GRACE_S))
            self._retired[channel] = task
            task.add_done_callback(lambda _: self._retired.pop(channel, None))

    async def close(self) -> None:
        pin, self._pin = self._pin, None
        channels = [pin.channel] if pin is not None else []
        for channel, task in list(self._retired.items()):
            task.cancel()
            channels.append(channel)
        for channel in channels:
            await channel.close(None)

    async def _look(self, registered: frozenset[str]) -> aio.Channel:
        now = self._pinning.clock()
        if now < self._next_look:
            raise SourceUnavailable("the source's certificate could not be checked yet")
        self._next_look = now + self._pinning.retry_after_s
        try:
            der = await asyncio.wait_for(self._presented(), self._pinning.probe_timeout_s)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            log.warning(
                "the certificate of %s's source could not be read: %s",
                self._partner_id, type(exc).__name__,
            )
            raise SourceUnavailable("the source's certificate could not be read") from None
        thumbprint = certificate_thumbprint(der)
        if thumbprint not in registered:
            owner = self._pinning.owner(thumbprint)
            log.warning(
                "the source of %s presented a certificate not registered to %s "
                "(x5t#S256 %s%s): not asked",
                self._partner_id, self._partner_id, thumbprint,
                f", registered to {owner}" if owner else "",
            )
            raise CertificateNotRegistered(
                f"the source's certificate is not registered to {self._partner_id}"
            )
        pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
        channel = open_channel(
            self._address,
            TlsMaterial(
                ca_pem=pem,
                cert_pem=self._tls.cert_pem,
                key_pem=self._tls.key_pem,
                server_name=self._tls.server_name,
            ),
        )
        self._pin = _Pin(thumbprint, channel)
        log.info("the source of %s is pinned to its certificate %s", self._partner_id, thumbprint)
        return channel

    async def _presented(self) -> bytes:
        server_name = self._tls.server_name or self._host
        _, writer = await asyncio.open_connection(
            self._host, self._port, ssl=self._pinning.probe, server_hostname=server_name
        )
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass  # the source may drop the connection first; the certificate is read
        if not der:
            raise ssl.SSLError("no certificate presented")
        return bytes(der)


def host_and_port(address: str) -> tuple[str, int]:
    """Host and port of a gRPC target ``host:port``, ``[v6]:port``, ``dns:///host:port``,
    ``ipv4:a.b.c.d:port`` or ``ipv6:[v6]:port``; ValueError for others (unix sockets)."""
    target = address
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if target.startswith(prefix):
            target = target[len(prefix):]
            break
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"a source whose certificate is pinned needs host:port, not {address!r}")
    return host.strip("[]"), int(port)
