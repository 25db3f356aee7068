"""Where the Prometheus endpoint listens: ``metrics_address`` ("host:port", "" for off), and
the deprecated ``metrics_port`` that still works (it keeps the address's host and sets the port;
0 switches the endpoint off)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_METRICS_ADDRESS = "127.0.0.1:9464"


class MetricsAddressError(ValueError):
    pass


@dataclass(frozen=True)
class MetricsEndpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"


def parse_metrics_address(address: str) -> MetricsEndpoint | None:
    """"127.0.0.1:9464", "0.0.0.0:9464", "[::]:9464"; "" is off (None)."""
    if address == "":
        return None
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise MetricsAddressError(
            f"metrics_address must be host:port (like {DEFAULT_METRICS_ADDRESS}) or \"\" for "
            f"off, not {address!r}"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise MetricsAddressError(f"metrics_address: port {port} is not between 1 and 65535")
    return MetricsEndpoint(host, port)


def metrics_endpoint(address: str, port: int | None) -> MetricsEndpoint | None:
    """The endpoint of ``address``, with ``port`` (the deprecated metrics_port) in place of
    its port when given: 0 switches it off, None leaves the address as it is."""
    endpoint = parse_metrics_address(address)
    if port is None:
        return endpoint
    if port == 0:
        return None
    if not 1 <= port <= 65535:
        raise MetricsAddressError(f"metrics_port {port} is not between 1 and 65535")
    host = endpoint.host if endpoint is not None else "127.0.0.1"
    return MetricsEndpoint(host, port)
