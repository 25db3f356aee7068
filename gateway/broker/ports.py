"""What the use cases need from the case store, the case reader and the accountability log.

The use cases depend on these small protocols, not on the store's classes: the gateway wires
in ``gateway.store.cases.CaseRepository``, ``gateway.store.snapshots.CaseSnapshots`` and
``gateway.store.audit_log.AuditLog`` (mypy checks they fit, in server/app.py), and the
use-case tests hand in fakes that keep everything in dicts and lists. Each protocol names
only the calls the use cases make; a store grows methods for other callers (the CLI, the
server's listings) without the use cases seeing them. The sources have their own protocol,
``gateway.broker.sources.Source``.

The rows these calls take and give (``CaseRow``, ``PersonRow``, ``EntryRow``,
``CaseSnapshot``, ``PriorRequest``, ``RequestClaim``) and the errors they raise stay in
``gateway.store``: they are plain values shared with the server and the CLI, and moving them
would change imports across most of the code base for no change in who depends on what.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from gateway.broker.log_events import AuditEvent, LogRecord, RecordKind
from gateway.store.cases import CaseRow, CaseSnapshot, EntryRow, PersonRow
from gateway.store.request_ids import PriorRequest, RequestClaim


class CaseLookup(Protocol):
    """Reads one case's row: enough for a use case that only checks the case's state."""

    def get_case(self, case_id: str) -> CaseRow | None: ...


class CaseStore(CaseLookup, Protocol):
    """The case file's writes, and the reads that go with them.

    Blocking calls: the use cases run them in a worker thread (``asyncio.to_thread``).
    A write to a shredded case raises ``CaseShredded``, to an unknown one ``CaseNotFound``
    (``gateway.store.errors``)."""

    def create_case_once(
        self,
        claim: RequestClaim | None,
        *,
        case_id: str,
        subject_pseudonym: str,
        case_type: str,
        phase: str,
        registered_by: str,
        wrapped_data_key: bytes,
        entries: Sequence[EntryRow],
        invitees: Sequence[tuple[str, str]],
        now: datetime,
        persons: Sequence[PersonRow] = (),
        approach: str = "general",
        casusregie_partner: str = "",
    ) -> CaseRow | PriorRequest:
        """Create the case (and claim the request id) in one transaction; the first call's
        ``PriorRequest`` if the request id was used before."""
        ...

    def add_participant(
        self, case_id: str, partner_id: str, invited_by: str, now: datetime
    ) -> CaseRow: ...

    def add_entries(self, case_id: str, entries: Sequence[EntryRow]) -> None: ...

    def add_entry_once(self, claim: RequestClaim, entry: EntryRow) -> PriorRequest | None: ...

    def persons(self, case_id: str) -> list[PersonRow]:
        """The persons of the case in the order they were added, removed ones included."""
        ...

    def add_person_once(
        self, claim: RequestClaim | None, person: PersonRow, entries: Sequence[EntryRow]
    ) -> PersonRow | PriorRequest: ...

    def remove_person(
        self, case_id: str, person_id: str, removed_by: str, now: datetime
    ) -> PersonRow: ...

    def identify_person(
        self, case_id: str, person_id: str, bsn_pseudonym: str, entry: EntryRow
    ) -> PersonRow: ...

    def set_phase(
        self,
        case_id: str,
        phase: str,
        *,
        expected_phase: str | None = None,
        closed_at: datetime | None = None,
        now: datetime | None = None,
    ) -> CaseRow: ...

    def prune_request_ids(self, before: datetime) -> int: ...


class CaseReader(Protocol):
    """Reads a whole case (row, persons, entries) in one round: what a disclosure and the
    case file show. Shared by every use case that reads a case through
    ``gateway.broker.case_reading``."""

    async def read(self, case_id: str) -> CaseSnapshot | None:
        """The case with its persons and entries (oldest first); ``None`` if there is none."""
        ...


class AccountabilityLog(Protocol):
    """The hash-chained log, as the use cases write and search it."""

    async def append(self, event: AuditEvent) -> LogRecord:
        """Return once the record is committed; raise if it could not be: the caller must
        then not let its answer leave."""
        ...

    async def append_many(self, events: Sequence[AuditEvent]) -> list[LogRecord]:
        """Several events in one commit, one after another in the chain, records in order."""
        ...

    def list_records(
        self,
        *,
        partner_id: str | None = None,
        case_id: str | None = None,
        subject_pseudonym: str | None = None,
        kinds: Collection[RecordKind] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> list[LogRecord]:
        """Records matching every given filter, by seq (blocking); page with ``after_seq``."""
        ...
