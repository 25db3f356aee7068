"""Addresses a pinned source connection can look at."""

from __future__ import annotations

import pytest

from gateway.sources.source_certificates import host_and_port


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("bron.politie.example:443", ("bron.politie.example", 443)),
        ("127.0.0.1:50051", ("127.0.0.1", 50051)),
        ("[::1]:50051", ("::1", 50051)),
        ("dns:///bron.ggz.example:8443", ("bron.ggz.example", 8443)),
        ("ipv4:10.0.0.5:443", ("10.0.0.5", 443)),
        ("ipv6:[fe80::1]:443", ("fe80::1", 443)),
    ],
)
def test_host_and_port(address: str, expected: tuple[str, int]) -> None:
    assert host_and_port(address) == expected


@pytest.mark.parametrize("address", ["unix:/run/source.sock", "bron.example", "host:port"])
def test_an_address_without_host_and_port_is_refused(address: str) -> None:
    with pytest.raises(ValueError):
        host_and_port(address)
