"""How the REST and FHIR adapters reach a partner's HTTP system: one httpx.AsyncClient per
adapter, its authentication and TLS from files, and every failure mapped to the runtime's
outcomes.

A mapping's ``server:`` block (the source.toml ``[system]`` table overrides its keys, so an
operator can point one mapping at a test or a production system)::

    server:
      base_url: https://cases.politie.example.nl     # every request stays under this origin
      auth:                                          # at most one of:
        bearer_token_file: secrets/api-token         #   Authorization: Bearer <file contents>
        # basic: {username: zvh-gateway, password_file: secrets/api-password}
      tls:                                           # https only; all optional
        ca_file: certs/partner-ca.pem                # trust these CAs instead of the system's
        client_cert_file: certs/runtime.pem          # mutual TLS: present this certificate
        client_key_file: certs/runtime.key
      max_response_bytes: 8388608                    # a larger answer is refused (default 8 MiB)

Files are read relative to the directory of the file that names them (the mapping's, or
source.toml's for a key given in ``[system]``). Secrets are read from files, never
written in the mapping, and the token and password files are read again for every request, so
a rotated secret takes effect without a restart.

Outcomes: a timeout, a refused or broken connection, a 5xx, a 401/403 (the system refused the
runtime's credentials), another 4xx, an answer that is not JSON or is too large raise
``SystemUnavailable``; 404 is "not there" (``None``), which the adapter turns into "not known"
or an absent value. Messages name the HTTP status or the kind of failure, never a URL (it can
hold a BSN) or a value.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from adapters.source_runtime.adapter import SystemUnavailable
from adapters.source_runtime.mapping import Mark, YNode, did_you_mean

__all__ = [
    "SERVER_KEYS",
    "HttpSettings",
    "JsonGetter",
    "check_server",
    "open_client",
    "settings_from",
]

# httpx logs every request's URL at INFO, and a URL here carries the person's identifiers (a
# BSN, a name): nothing below a warning from the HTTP stack reaches any log.
for _noisy in ("httpx", "httpcore"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

SERVER_KEYS = ("base_url", "auth", "tls", "max_response_bytes")
AUTH_KEYS = ("bearer_token_file", "basic")
BASIC_KEYS = ("username", "password_file")
TLS_KEYS = ("ca_file", "client_cert_file", "client_key_file")
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class HttpSettings:
    base_url: str
    bearer_token_file: Path | None = None
    basic_username: str | None = None
    basic_password_file: Path | None = None
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES


def check_server(node: YNode | None, problem: Callable[[Mark, str], None], where: Mark) -> None:
    """Report the problems of a mapping's ``server:`` block with their places."""
    if node is None:
        problem(where, "'server' is missing (base_url and how to authenticate)")
        return
    if not node.is_mapping:
        problem(node.mark, "server must be a mapping")
        return
    _keys(node, SERVER_KEYS, problem)
    base = node.get("base_url")
    if base is None:
        problem(node.mark, "'base_url' is missing")
    elif not isinstance(base.value, str) or urlsplit(base.value).scheme not in ("http", "https") \
            or not urlsplit(base.value).netloc:
        problem(base.mark, "base_url must be an http:// or https:// URL")
    size = node.get("max_response_bytes")
    if size is not None and (isinstance(size.value, bool) or not isinstance(size.value, int)
                             or size.value < 1):
        problem(size.mark, "max_response_bytes must be a positive whole number")
    auth = node.get("auth")
    if auth is not None:
        if not auth.is_mapping:
            problem(auth.mark, "auth must be a mapping")
        else:
            _keys(auth, AUTH_KEYS, problem)
            if len(auth.value) > 1:
                problem(auth.mark, "give one of bearer_token_file and basic, not both")
            basic = auth.get("basic")
            if basic is not None:
                if not basic.is_mapping:
                    problem(basic.mark, "basic must be a mapping (username, password_file)")
                else:
                    _keys(basic, BASIC_KEYS, problem)
                    for key in BASIC_KEYS:
                        if not isinstance((basic.get(key) or YNode(None, basic.mark)).value, str):
                            problem(basic.mark, f"basic needs {key!r} (text)")
    tls = node.get("tls")
    if tls is not None:
        if not tls.is_mapping:
            problem(tls.mark, "tls must be a mapping")
        else:
            _keys(tls, TLS_KEYS, problem)
            if (tls.get("client_cert_file") is None) != (tls.get("client_key_file") is None):
                problem(tls.mark, "client_cert_file and client_key_file go together")


def _keys(node: YNode, allowed: tuple[str, ...], problem: Callable[[Mark, str], None]) -> None:
    for key in node.value:
        if key not in allowed:
            problem(node.key_mark(key), f"unknown key {key!r}{did_you_mean(key, allowed)}")


def settings_from(
    server: Mapping[str, Any], mapping_dir: Path, system: Mapping[str, Any], system_dir: Path
) -> HttpSettings:
    """The settings of a checked ``server:`` block, with source.toml's ``[system]`` keys (the
    same names) taking precedence. Relative file names are taken from the directory of the
    file that gave them: the mapping's, or source.toml's. Raises ValueError for a [system]
    key that is not a server key."""
    for key in system:
        if key not in SERVER_KEYS:
            raise ValueError(f"[system]: unknown key {key!r}{did_you_mean(key, SERVER_KEYS)}")
    merged = {key: (server[key], mapping_dir) for key in SERVER_KEYS if key in server}
    merged.update({key: (system[key], system_dir) for key in SERVER_KEYS if key in system})

    def block(key: str) -> tuple[Mapping[str, Any], Path]:
        value, directory = merged.get(key, ({}, mapping_dir))
        return (value if isinstance(value, Mapping) else {}), directory

    def path(value: Any, directory: Path) -> Path | None:
        return None if value is None else directory / str(value)

    (auth, auth_dir), (tls, tls_dir) = block("auth"), block("tls")
    basic = auth.get("basic") or {}
    base_url = merged.get("base_url", (None, mapping_dir))[0]
    if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
        raise ValueError("base_url must be an http:// or https:// URL")
    size = merged.get("max_response_bytes", (DEFAULT_MAX_RESPONSE_BYTES, mapping_dir))[0]
    return HttpSettings(
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        bearer_token_file=path(auth.get("bearer_token_file"), auth_dir),
        basic_username=basic.get("username"),
        basic_password_file=path(basic.get("password_file"), auth_dir),
        ca_file=path(tls.get("ca_file"), tls_dir),
        client_cert_file=path(tls.get("client_cert_file"), tls_dir),
        client_key_file=path(tls.get("client_key_file"), tls_dir),
        max_response_bytes=int(size),
    )


class _FileAuth(httpx.Auth):
    """Bearer or basic credentials read from their file at every request (rotation without a
    restart); a file that cannot be read makes the system unavailable, not the runtime crash."""

    def __init__(self, settings: HttpSettings) -> None:
        self._settings = settings

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        s = self._settings
        if s.bearer_token_file is not None:
            request.headers["Authorization"] = f"Bearer {_secret(s.bearer_token_file)}"
        elif s.basic_password_file is not None and s.basic_username is not None:
            pair = f"{s.basic_username}:{_secret(s.basic_password_file)}".encode()
            request.headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
        yield request


def _secret(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise SystemUnavailable("cannot read the system's credential file") from None


def open_client(settings: HttpSettings) -> httpx.AsyncClient:
    """The client for one system. Timeouts are set per request from the deadline."""
    verify: ssl.SSLContext | bool = True
    if settings.ca_file is not None or settings.client_cert_file is not None:
        context = ssl.create_default_context(
            cafile=str(settings.ca_file) if settings.ca_file is not None else None
        )
        if settings.client_cert_file is not None and settings.client_key_file is not None:
            context.load_cert_chain(str(settings.client_cert_file), str(settings.client_key_file))
        verify = context
    return httpx.AsyncClient(
        base_url=settings.base_url,
        auth=_FileAuth(settings),
        verify=verify,
        follow_redirects=False,  # a redirect could leave the system's origin with credentials
        headers={"Accept": "application/json, application/fhir+json"},
        trust_env=False,  # no proxy or netrc from the environment: the mapping says it all
    )


@dataclass
class JsonGetter:
    """GETs JSON from one system, each request bounded by the fetch's deadline."""

    client: httpx.AsyncClient
    settings: HttpSettings
    deadline: float  # loop time by which the whole answer is due
    accept: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    def resolve(self, url: str) -> str:
        """An absolute URL for ``url`` (relative to the base), refused when it would leave
        the system's origin (a next link pointing elsewhere)."""
        absolute = urljoin(self.settings.base_url, url.lstrip("/")) if not urlsplit(url).scheme \
            else url
        if not _same_origin(absolute, self.settings.base_url):
            raise SystemUnavailable("the system linked to another origin")
        return absolute

    async def get(self, url: str, params: Mapping[str, str] | None = None) -> Any | None:
        """The JSON answer, or None for a 404."""
        loop = asyncio.get_running_loop()
        remaining = self.deadline - loop.time()
        if remaining <= 0:
            raise SystemUnavailable("the deadline passed")
        try:
            async with asyncio.timeout(remaining):
                return await self._get(self.resolve(url), params, remaining)
        except TimeoutError:
            raise SystemUnavailable("the system did not answer within the deadline") from None
        except httpx.TimeoutException:
            raise SystemUnavailable("the system did not answer within the deadline") from None
        except httpx.HTTPError as exc:
            raise SystemUnavailable(f"the system could not be reached ({type(exc).__name__})") \
                from None
        except ssl.SSLError:
            raise SystemUnavailable("TLS with the system failed") from None

    async def _get(self, url: str, params: Mapping[str, str] | None, remaining: float) -> Any:
        timeout = httpx.Timeout(remaining)
        async with self.client.stream("GET", url, params=params, timeout=timeout,
                                      headers={**self.headers, "Accept": self.accept}) as response:
            status = response.status_code
            if status == 404:
                return None
            if status in (401, 403):
                raise SystemUnavailable(f"the system refused the runtime's credentials ({status})")
            if status >= 300:
                raise SystemUnavailable(f"the system answered HTTP {status}")
            body = bytearray()
            async for chunk in _chunks(response):
                body += chunk
                if len(body) > self.settings.max_response_bytes:
                    raise SystemUnavailable("the system's answer is larger than allowed")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise SystemUnavailable("the system's answer is not JSON") from None


async def _chunks(response: httpx.Response) -> AsyncGenerator[bytes, None]:
    async for chunk in response.aiter_bytes():
        yield chunk


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc) and a.path.startswith(b.path)
