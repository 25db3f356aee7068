"""Errors raised by the storage layer.

Database driver errors are translated here, at the edge of the store, so the rest of the
gateway never sees SQLAlchemy types::

    StoreError
    ├── CaseNotFound        no case with that id
    ├── DuplicateCase       a case with that id already exists
    ├── PhaseConflict       the case is not in the phase the caller expected
    ├── CaseShredded        the case's data was deleted at the end of its retention period
    ├── MalformedRecord     a stored accountability record cannot be read back
    ├── AuditLogClosed      the accountability log writer is not running
    └── AuditWriteError     a batch of accountability records was not committed

Messages carry identifiers (case ids, phases, sequence numbers) and never a field value.

``database_unavailable`` says whether an error, or anything in its chain of causes, is the
database being briefly away rather than a fault of the request or the gateway: a connection
refused, reset or closed by the server (a restart, ``pg_terminate_backend``, an admin
shutdown), a full or failing disk, a database locked past its busy timeout. The edge answers
those UNAVAILABLE, which a client may retry; anything else stays an internal error.
"""

from __future__ import annotations

import sqlite3
import sys
from typing import Final

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = [
    "DATABASE_UNAVAILABLE",
    "AuditLogClosed",
    "AuditWriteError",
    "CaseNotFound",
    "CaseShredded",
    "DuplicateCase",
    "MalformedRecord",
    "PhaseConflict",
    "StoreError",
    "database_unavailable",
]

# The one answer a caller gets: no driver text (it can quote a statement or a path).
DATABASE_UNAVAILABLE: Final = "the gateway's database is briefly unavailable; try again"
# SQLite primary result codes of a database that cannot take work now, not of a bad query.
_SQLITE_AWAY: Final = frozenset({
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL,
})
_MAX_CHAIN: Final = 16


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` or one of its causes is the database being briefly away."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        if _is_away(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_away(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or (exc.orig is not None and _is_away(exc.orig))
    if isinstance(exc, PoolTimeout | ConnectionError):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorcode", -1) & 0xFF in _SQLITE_AWAY
    # psycopg is imported only by a gateway on PostgreSQL; without it, none of its errors
    # can have been raised. Its OperationalError covers refused, reset and closed
    # connections and the server's admin shutdown.
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(exc, psycopg.OperationalError):
        return True
    return isinstance(exc, AuditLogClosed)


class StoreError(Exception):
    """Base class of every storage error."""


class CaseNotFound(StoreError):
    """No case with the given id exists."""

    def __init__(self, case_id: str) -> None:
        super().__init__(f"case {case_id!r} not found")
        self.case_id = case_id


class DuplicateCase(StoreError):
    """A case with the given id already exists."""

    def __init__(self, case_id: str) -> None:
        super().__init__(f"case {case_id!r} already exists")
        self.case_id = case_id


class PhaseConflict(StoreError):
    """An optimistic phase check failed: someone moved the case on first."""

    def __init__(self, case_id: str, expected: str, actual: str) -> None:
        super().__init__(f"case {case_id!r} is in phase {actual!r}, expected {expected!r}")
        self.case_id = case_id
        self.expected = expected
        self.actual = actual


class CaseShredded(StoreError):
    """The case's data was deleted at the end of its retention period; it takes no changes."""

    def __init__(self, case_id: str) -> None:
        super().__init__(f"case {case_id!r} was shredded at the end of its retention period")
        self.case_id = case_id


class PersonNotFound(StoreError):
    """The case has no person with the given id."""

    def __init__(self, case_id: str, person_id: str) -> None:
        super().__init__(f"case {case_id!r} has no person {person_id!r}")
        self.case_id = case_id
        self.person_id = person_id


class PersonConflict(StoreError):
    """The person is removed, or already has a BSN: the change does not apply."""

    def __init__(self, case_id: str, person_id: str, state: str) -> None:
        super().__init__(f"person {person_id!r} of case {case_id!r} is {state}")
        self.case_id = case_id
        self.person_id = person_id
        self.state = state


class MalformedRecord(StoreError):
    """A stored accountability record body does not have the documented shape."""


class AuditLogClosed(StoreError):
    """An append was attempted while the accountability log writer is not running."""


class AuditWriteError(StoreError):
    """A batch of accountability records could not be confirmed as committed."""
