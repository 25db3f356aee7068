"""The SQL adapter: a partner's own database, read through views or queries it chooses.

Mapping file (kind: sql)::

    kind: sql
    partner_type: municipality
    queries:                       # one query per field group, each run only when asked
      person:
        sql:                       # alternatives: the first whose parameters all came is used
          - SELECT adres, huishouden FROM v_ketenpoort_persoon WHERE bsn = :bsn
          - SELECT adres, huishouden FROM v_ketenpoort_persoon
            WHERE lower(naam) = lower(:name) AND geboortedatum LIKE :date_of_birth || '%'
      debts:
        sql: SELECT schuld FROM v_ketenpoort_schulden WHERE bsn = :bsn
        rows: all                  # several rows become a list (convert: {join: ", "})
    fields:
      mun.brp_address: {type: text, query: person, column: adres}
      mun.debts: {type: text, query: debts, column: schuld, convert: {join: "; "}}
    lookup: {query: person, role: resident}      # or role_column: <column>

Parameters are the person's identifiers (``:bsn``, ``:name``, ``:date_of_birth``,
``:address``, ``:postcode``, ``:reference``), always bound, never put into the SQL text.
Configuration ([system] in source.toml): ``url`` (a SQLAlchemy URL; SQLite and PostgreSQL),
``password_file`` (optional; the password, kept out of the TOML), ``pool_size``.

The connection is read-only whatever the account may do: SQLite is opened with ``mode=ro``,
PostgreSQL sessions are ``default_transaction_read_only`` and every transaction is set READ
ONLY. Each query gets the time left before the deadline: PostgreSQL's ``statement_timeout``
for the transaction, SQLite's interrupt. A query that fails or runs out of time makes its
group's fields unavailable; a database that cannot be reached, or every asked group failing,
makes the whole answer unavailable (a timeout as a timeout). No row in any asked group: the
person is not known. More than one row where one was expected: that group is unavailable
(the person is not identified uniquely), never a guess.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from adapters.source_runtime.adapter import (
    IDENTIFIER_NAMES,
    FieldReading,
    Found,
    NotKnown,
    Person,
    SystemUnavailable,
)
from adapters.source_runtime.conversions import Conversion, ConversionError, raw_text
from adapters.source_runtime.mapping import KindSchema, MappingFile, Mark, did_you_mean

__all__ = ["SCHEMA", "SqlAdapter", "open_adapter"]

QUERY_KEYS = ("sql", "rows")
SYSTEM_KEYS = ("url", "password_file", "pool_size")
MAX_ROWS = 1000  # rows: all takes at most this many; more is a query that selects too much
_BIND = re.compile(r"(?<![:\w]):(\w+)")
_READ = re.compile(r"^\s*(select|with)\b", re.IGNORECASE)


def _check(mapping: MappingFile, problem: Callable[[Mark, str], None]) -> None:
    queries = mapping.node.get("queries")
    assert queries is not None  # required_top_keys
    if not queries.is_mapping or not queries.value:
        problem(queries.mark, "queries must map group names to {sql: ...}")
        return
    for name, entry in queries.items():
        if not entry.is_mapping:
            problem(entry.mark, f"query {name!r} must be a mapping with 'sql'")
            continue
        for key in entry.value:
            if key not in QUERY_KEYS:
                problem(entry.key_mark(key), f"unknown key {key!r}{did_you_mean(key, QUERY_KEYS)}")
        sql = entry.get("sql")
        if sql is None:
            problem(entry.mark, f"query {name!r} needs 'sql'")
            continue
        texts = sql.value if sql.is_list else [sql]
        for node in texts:
            if not isinstance(node.value, str) or not node.value.strip():
                problem(node.mark, "sql must be text (or a list of alternatives)")
                continue
            if not _READ.match(node.value):
                problem(node.mark, "a query must be a SELECT (or WITH ... SELECT)")
            for param in _params(node.value):
                if param not in IDENTIFIER_NAMES:
                    problem(node.mark, f"parameter :{param} is not an identifier; use "
                            f"{', '.join(':' + n for n in IDENTIFIER_NAMES)}")
        rows = entry.get("rows")
        if rows is not None and rows.value not in ("one", "all"):
            problem(rows.mark, "rows must be 'one' or 'all'")
    fields = mapping.node.get("fields")
    assert fields is not None
    for field_id, entry in fields.items():
        query = entry.get("query")
        if query is not None and query.value not in queries.value:
            problem(query.mark, f"field {field_id!r} names query {query.value!r}, "
                    "which 'queries' does not declare")
    lookup = mapping.node.get("lookup")
    if lookup is None:
        problem(mapping.node.mark, "lookup is missing: {query: <group>, role: <text>}")
        return
    query = lookup.get("query")
    if query is None or query.value not in queries.value:
        problem((query or lookup).mark, "lookup needs a query that 'queries' declares")
    if (lookup.get("role") is None) == (lookup.get("role_column") is None):
        problem(lookup.mark, "lookup needs either role (fixed text) or role_column")


SCHEMA = KindSchema(
    "sql",
    top_keys=("queries",),
    required_top_keys=("queries",),
    field_keys=("query", "column"),
    required_field_keys=("query", "column"),
    lookup_keys=("query", "role", "role_column"),
    check=_check,
)


def _params(sql: str) -> list[str]:
    # The bind parameters as SQLAlchemy's text() finds them (":name"; "::cast" is no parameter).
    return list(text(sql).compile().params)


@dataclass(frozen=True)
class _Query:
    name: str
    alternatives: tuple[tuple[str, frozenset[str]], ...]  # (sql, its parameters)
    many: bool

    def for_person(self, person: Person) -> tuple[str, dict[str, str]] | None:
        given = person.given()
        for sql, params in self.alternatives:
            if params <= given.keys():
                return sql, {p: given[p] for p in params}
        return None


class _Timeout(Exception):
    pass


class SqlAdapter:
    def __init__(self, mapping: MappingFile, engine: Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self.queries: dict[str, _Query] = {}
        for name, spec in mapping.top["queries"].items():
            texts = spec["sql"] if isinstance(spec["sql"], list) else [spec["sql"]]
            self.queries[name] = _Query(
                name,
                tuple((sql, frozenset(_params(sql))) for sql in texts),
                spec.get("rows", "one") == "all",
            )
        self.fields = {
            f.id: (str(f.source["query"]), str(f.source["column"]), f.conversion)
            for f in mapping.fields.values()
        }
        self.lookup_query = str(mapping.lookup["query"])
        self.role = str(mapping.lookup.get("role", ""))
        self.role_column = str(mapping.lookup.get("role_column", ""))

    async def fetch(
        self, person: Person, fields: Sequence[str], *, deadline_s: float, explain: bool = False
    ) -> Found:
        asked = [f for f in dict.fromkeys(fields) if f in self.fields]
        groups = list(dict.fromkeys(self.fields[f][0] for f in asked))
        if not groups:
            # Nothing asked that this system holds: known or not, there is nothing to send.
            return Found({})
        results = await self._run(person, groups, deadline_s)
        values: dict[str, str] = {}
        unavailable: set[str] = set()
        readings: list[FieldReading] = []
        any_rows = False
        failed = [g for g in groups if isinstance(results[g], _Failure)]
        for field_id in asked:
            group, column, conversion = self.fields[field_id]
            result = results[group]
            if isinstance(result, _Failure):
                unavailable.add(field_id)
                readings.append(FieldReading(field_id, None, None, result.problem))
                continue
            if not result:
                readings.append(FieldReading(field_id, None, None, "no row for this person"))
                continue
            any_rows = True
            reading = _convert(field_id, result, column, conversion, self.queries[group].many)
            readings.append(reading)
            if reading.problem:
                unavailable.add(field_id)
            elif reading.value is not None:
                values[field_id] = reading.value
        if len(failed) == len(groups):
            # Nothing of the system answered: the whole source is unavailable just now.
            if all(isinstance(results[g], _Failure) and results[g].timeout for g in failed):  # type: ignore[union-attr]
                raise TimeoutError
            raise SystemUnavailable("every asked query failed")
        if not any_rows and not failed:
            raise NotKnown
        return Found(values, frozenset(unavailable), tuple(readings) if explain else ())

    async def lookup(self, person: Person, *, deadline_s: float) -> tuple[bool, str]:
        result = (await self._run(person, [self.lookup_query], deadline_s))[self.lookup_query]
        if isinstance(result, _Failure):
            if result.timeout:
                raise TimeoutError
            raise SystemUnavailable("the lookup query failed")
        if not result:
            return False, ""
        if self.role_column:
            if self.role_column not in result[0]:
                raise SystemUnavailable("the lookup's role_column is not in its result")
            return True, raw_text(result[0][self.role_column]).strip()
        return True, self.role

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.dispose)

    async def _run(
        self, person: Person, groups: list[str], deadline_s: float
    ) -> dict[str, list[Mapping[str, Any]] | _Failure]:
        # SQLAlchemy's sync engine in a worker thread; the database's own timeouts stop the
        # query, and the wait below stops waiting for a driver that ignores them.
        ends = time.monotonic() + deadline_s
        work = asyncio.to_thread(self._run_sync, person, groups, ends)
        try:
            return await asyncio.wait_for(work, deadline_s + 0.5)
        except TimeoutError:
            raise TimeoutError from None

    def _run_sync(
        self, person: Person, groups: list[str], ends: float
    ) -> dict[str, list[Mapping[str, Any]] | _Failure]:
        results: dict[str, list[Mapping[str, Any]] | _Failure] = {}
        try:
            with self.engine.connect() as connection:
                if self._postgres:
                    connection.exec_driver_sql("SET TRANSACTION READ ONLY")
                for group in groups:
                    results[group] = self._one(connection, self.queries[group], person, ends)
                connection.rollback()
        except SQLAlchemyError as exc:
            if results:
                # The connection broke after some groups answered: the rest are unavailable.
                for group in groups:
                    results.setdefault(group, _Failure("the database connection failed"))
                return results
            raise SystemUnavailable(
                f"the database cannot be reached ({type(exc).__name__})"
            ) from None
        return results

    def _one(
        self, connection: Connection, query: _Query, person: Person, ends: float
    ) -> list[Mapping[str, Any]] | _Failure:
        chosen = query.for_person(person)
        if chosen is None:
            # The identifiers that came are not the ones this group finds people by.
            return []
        sql, params = chosen
        left = ends - time.monotonic()
        if left <= 0.001:
            return _Failure("no time left before the deadline", timeout=True)
        timer: threading.Timer | None = None
        fired = threading.Event()
        try:
            if self._postgres:
                connection.execute(
                    text("SELECT set_config('statement_timeout', :ms, true)"),
                    {"ms": str(max(1, int(left * 1000)))},
                )
            else:
                raw = connection.connection.dbapi_connection
                if isinstance(raw, sqlite3.Connection):
                    def interrupt(db: sqlite3.Connection = raw) -> None:
                        fired.set()
                        db.interrupt()

                    timer = threading.Timer(left, interrupt)
                    timer.daemon = True
                    timer.start()
            limit = MAX_ROWS + 1 if query.many else 2
            result = connection.execute(text(sql), params)
            rows: list[Mapping[str, Any]] = [dict(r._mapping) for r in result.fetchmany(limit)]
        except DBAPIError as exc:
            if self._postgres:
                connection.rollback()
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            if exc.connection_invalidated:
                raise
            timeout = fired.is_set() or _is_timeout(exc)
            return _Failure(
                "the query ran out of time" if timeout else
                f"the query failed ({type(exc.orig).__name__})", timeout=timeout,
            )
        finally:
            if timer is not None:
                timer.cancel()
        if len(rows) > (MAX_ROWS if query.many else 1):
            return _Failure(
                f"more than {MAX_ROWS} rows" if query.many
                else "more than one row: the person is not identified uniquely"
            )
        return rows


@dataclass(frozen=True)
class _Failure:
    problem: str
    timeout: bool = False


def _is_timeout(exc: DBAPIError) -> bool:
    # PostgreSQL's query_canceled (statement_timeout), SQLite's "interrupted".
    code = getattr(exc.orig, "sqlstate", None)
    return code == "57014" or "interrupted" in str(exc.orig).lower()


def _convert(
    field_id: str, rows: list[Mapping[str, Any]], column: str, conversion: Conversion,
    many: bool,
) -> FieldReading:
    if column not in rows[0]:
        return FieldReading(field_id, None, None, f"column {column!r} is not in the query's result")
    raw: Any = [row[column] for row in rows] if many else rows[0][column]
    shown = None if raw is None else (
        ", ".join("NULL" if r is None else raw_text(r) for r in raw) if many else raw_text(raw)
    )
    try:
        return FieldReading(field_id, shown, conversion.apply(raw))
    except ConversionError as exc:
        return FieldReading(field_id, shown, None, str(exc))


def open_adapter(mapping: MappingFile, system: Mapping[str, Any], base_dir: Path) -> SqlAdapter:
    """The adapter, with a read-only engine for ``system`` ([system] of source.toml)."""
    for key in system:
        if key not in SYSTEM_KEYS:
            raise ValueError(f"[system]: unknown key {key!r} for an sql source; "
                             f"known: {', '.join(SYSTEM_KEYS)}")
    return SqlAdapter(mapping, read_only_engine(system, base_dir))


def read_only_engine(system: Mapping[str, Any], base_dir: Path) -> Engine:
    raw_url = system.get("url")
    if not isinstance(raw_url, str) or not raw_url:
        raise ValueError("[system] url is missing: the database's SQLAlchemy URL")
    url = make_url(raw_url)
    password_file = system.get("password_file")
    if password_file:
        path = Path(str(password_file))
        path = path if path.is_absolute() else base_dir / path
        url = url.set(password=path.read_text(encoding="utf-8").strip())
    pool_size = int(system.get("pool_size", 5))
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if not database or database == ":memory:":
            raise ValueError("[system] url: an sqlite source needs a database file")
        file = Path(database)
        file = file if file.is_absolute() else base_dir / file

        def connect() -> sqlite3.Connection:
            # mode=ro: SQLite itself refuses every write, and a missing file is an error
            # rather than a new empty database. A short busy wait: a locked database counts
            # against the deadline through the interrupt, not here.
            return sqlite3.connect(
                f"{file.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0,
                check_same_thread=False,
            )

        return create_engine("sqlite+pysqlite://", creator=connect, pool_size=pool_size,
                             pool_pre_ping=True)
    if url.get_backend_name() != "postgresql":
        raise ValueError("[system] url: the sql source speaks SQLite and PostgreSQL")
    engine = create_engine(url, pool_size=pool_size, pool_pre_ping=True)

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        # Every transaction of the session is read-only, whatever the account may do.
        cursor = dbapi_connection.cursor()
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cursor.close()
        dbapi_connection.commit()

    return engine
