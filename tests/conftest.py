"""Database fixtures shared by every test package.

``db_url`` runs a test once on SQLite (a fresh file) and once on PostgreSQL (a fresh schema
on the server named by ``KETENPOORT_TEST_PG_URL``, dropped afterwards). The PostgreSQL run
is skipped, with the reason, only when no server answers.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL, make_url

# The session's SoftHSM2 token (`softhsm` fixture) for the PKCS#11 key-provider tests.
pytest_plugins = ["tests.softhsm"]

DEFAULT_TEST_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_PG_CONNECT_TIMEOUT_S = 3

_pg_unreachable_reason: dict[str, str | None] = {}


def pg_server_url() -> URL:
    return make_url(os.environ.get("KETENPOORT_TEST_PG_URL", DEFAULT_TEST_PG_URL))


def _conninfo(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_reason(url: URL) -> str | None:
    """Why the server cannot be used, or None; asked once per session."""
    key = _conninfo(url)
    if key not in _pg_unreachable_reason:
        try:
            with psycopg.connect(key, connect_timeout=_PG_CONNECT_TIMEOUT_S) as conn:
                conn.execute("SELECT 1")
            _pg_unreachable_reason[key] = None
        except psycopg.Error as exc:
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            _pg_unreachable_reason[key] = first_line
    return _pg_unreachable_reason[key]


def _admin(url: URL, statement: str) -> None:
    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        # A test that leaked a connection must not hang the whole run on the drop.
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(statement)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL no other test uses."""
    if request.param == "sqlite":
        # A missing parent directory is part of the test: the engine must create it.
        yield f"sqlite:///{tmp_path / 'data' / 'ketenpoort.db'}"
        return
    url = pg_server_url()
    reason = _pg_reason(url)
    if reason is not None:
        shown = url.render_as_string(hide_password=True)
        pytest.skip(f"PostgreSQL not reachable at {shown}: {reason}")
    schema = f"t_{secrets.token_hex(8)}"
    _admin(url, f"CREATE SCHEMA {schema}")
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        _admin(url, f"DROP SCHEMA {schema} CASCADE")
