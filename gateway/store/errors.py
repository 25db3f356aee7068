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
"""

from __future__ import annotations


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


class MalformedRecord(StoreError):
    """A stored accountability record body does not have the documented shape."""


class AuditLogClosed(StoreError):
    """An append was attempted while the accountability log writer is not running."""


class AuditWriteError(StoreError):
    """A batch of accountability records could not be confirmed as committed."""
