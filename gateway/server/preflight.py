"""Can this configuration serve? What `ketenpoort config check` reports and `ketenpoort serve`
checks before it starts: the database (reachable, exists, at this version's schema), the keys,
the TLS files, the policy and the partner registry.

Each problem is one line naming the part and what to do; nothing here raises past
``check_gateway`` or prints a traceback. Database URLs are shown without their password.
"""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass
from pathlib import Path

from gateway.core import CompiledPolicy
from gateway.server.config import GatewayConfig, TlsMode

__all__ = ["Problem", "StartupRefused", "check_gateway", "in_use", "one_line_summary"]


class StartupRefused(Exception):
    """The configuration reads, but the gateway cannot serve with it (one line; exit 1)."""


@dataclass(frozen=True)
class Problem:
    part: str  # "listen", "database", "keys", "tls", "policy" or "registry"
    message: str

    def __str__(self) -> str:
        return f"{self.part}: {self.message}"


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def shown_url(url: str) -> str:
    """The database URL without its password (for messages)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(not a database URL)"


def _sqlite_file_to_come(url: str) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return False
    database = parsed.database or ""
    return (
        parsed.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not database.startswith("file:")
        and not Path(database).expanduser().exists()
    )


def check_database(config: GatewayConfig) -> list[Problem]:
    """Open the database, and see that it is at this version's schema (or empty)."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from gateway.store import migrations
    from gateway.store.db import create_engine_for

    url = config.database_url
    if _sqlite_file_to_come(url):
        # The gateway creates it on its first start; a check does not.
        return []
    try:
        engine = create_engine_for(url)
    except (ArgumentError, ValueError) as exc:
        reason = "it cannot be parsed" if isinstance(exc, ArgumentError) else _one_line(str(exc))
        return [Problem(
            "database",
            f"database_url {shown_url(url)!r} is not usable: {reason} (expected "
            "sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DATABASE)",
        )]
    except OSError as exc:
        return [Problem("database", f"cannot create the database directory: {exc}")]
    try:
        with engine.connect() as conn:
            status = migrations.schema_status(conn)
        if not (status.empty or status.up_to_date):
            return [Problem("database", migrations.refusal(status))]
    except migrations.SchemaMismatch as exc:
        return [Problem("database", _one_line(str(exc)))]
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        return [Problem(
            "database",
            f"cannot open {shown_url(url)}: {_one_line(str(cause)) or type(cause).__name__}",
        )]
    finally:
        engine.dispose()
    return []


def check_keys(config: GatewayConfig) -> list[Problem]:
    """Load the gateway's keys (files or PKCS#11 token) and, unless insecure, its TLS files."""
    from gateway.crypto.errors import CryptoError
    from gateway.crypto.keystore import Keystore
    from gateway.server.tls_reload import TlsMismatch, check_tls_files, tls_files

    problems: list[Problem] = []
    try:
        Keystore.open(config.keys_dir, config.key_provider).close()
    except (CryptoError, OSError, ValueError) as exc:
        problems.append(Problem(
            "keys", f"cannot load the keys in {config.keys_dir}: {_one_line(str(exc))}"
        ))
    if config.tls_mode is not TlsMode.INSECURE:
        try:
            check_tls_files(tls_files(config.keys_dir, config.tls_mode))
        except OSError as exc:
            problems.append(Problem("tls", f"cannot read {exc.filename}: {exc.strerror}"))
        except TlsMismatch as exc:
            problems.append(Problem("tls", _one_line(str(exc))))
    return problems


def check_policy(config: GatewayConfig) -> tuple[CompiledPolicy | None, list[Problem]]:
    from gateway.core.errors import PolicyError
    from gateway.policyfiles import PolicyDirectoryError, load_policy_dir
    from gateway.runtime.policy_reload import describe_issue

    try:
        return load_policy_dir(
            config.policy_dir, max_file_bytes=config.max_policy_file_bytes
        ), []
    except PolicyError as exc:
        return None, [Problem("policy", describe_issue(config.policy_dir, issue))
                      for issue in exc.issues]
    except (PolicyDirectoryError, OSError) as exc:
        return None, [Problem("policy", _one_line(str(exc)))]


def check_registry(config: GatewayConfig, policy: CompiledPolicy) -> list[Problem]:
    from gateway.registry.entries import RegistryError
    from gateway.registry.files import read_registry
    from gateway.server.partners import join_registry

    # Joining warns of partners without an entry; the start logs that itself, once.
    partners_log = logging.getLogger("ketenpoort.partners")
    quiet, partners_log.disabled = partners_log.disabled, True
    try:
        join_registry(policy, read_registry(config.registry_path))
    except (RegistryError, OSError, ValueError) as exc:
        return [Problem("registry", _one_line(str(exc)))]
    finally:
        partners_log.disabled = quiet
    return []


def check_listen(config: GatewayConfig) -> list[Problem]:
    """Is the gRPC address free? A second gateway on the same address is an error (the
    gateway does not share its port; tls_reload.LISTEN_OPTIONS)."""
    host, _, port_text = config.listen.rpartition(":")
    bind_host = host.strip("[]") or None
    if not port_text.isdigit():
        return [Problem("listen", f"listen must be HOST:PORT (got {config.listen!r})")]
    if int(port_text) == 0:
        return []
    try:
        infos = socket.getaddrinfo(bind_host, int(port_text), type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except OSError as exc:
        return [Problem("listen", f"cannot resolve {config.listen}: {exc.strerror or exc}")]
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            # As grpc binds: a port with connections of an earlier process in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return [Problem("listen", in_use(config.listen))]
                return [Problem("listen", f"cannot listen on {config.listen}: {exc.strerror}")]
    return []


def in_use(listen: str) -> str:
    return f"{listen} is already in use: another process (a second gateway?) listens there"


def check_gateway(config: GatewayConfig, *, listen: bool = True) -> list[Problem]:
    """Every problem found, in the order listen address, database, keys, TLS, policy,
    registry. Without ``listen`` the address is not looked at (a check beside the running
    gateway)."""
    problems = check_listen(config) if listen else []
    problems += check_database(config)
    problems += check_keys(config)
    policy, policy_problems = check_policy(config)
    problems += policy_problems
    if policy is not None:
        problems += check_registry(config, policy)
    return problems


def one_line_summary(problems: list[Problem]) -> str:
    """The first problem, and how many more there are."""
    more = len(problems) - 1
    return str(problems[0]) + (
        f" (and {more} more: ketenpoort config check lists them)" if more else ""
    )
