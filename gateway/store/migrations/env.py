"""Alembic environment: runs the revisions on the connection the gateway hands in.

``gateway.store.migrations.upgrade`` puts an open connection, inside a transaction, in
``config.attributes["connection"]``; the revisions run in that transaction, so an upgrade
either completes or leaves the database as it was (SQLite and PostgreSQL both have
transactional DDL). SQLite cannot ALTER most things: revisions use batch mode there
(``render_as_batch``), which copies a table when it must.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from gateway.store.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "the gateway's migrations run through `ketenpoort db upgrade` "
            "(gateway.store.migrations.upgrade), which hands in the connection"
        )
    _run(connection)


_main()
