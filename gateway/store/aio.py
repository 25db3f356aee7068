"""Asyncio face of the case file: each call runs the synchronous repository in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from datetime import datetime

from gateway.store.cases import CaseRepository, CaseRow, EntryRow, ParticipantRow


class AsyncCaseRepository:
    """Same methods as ``CaseRepository``, awaitable, so the event loop never blocks on I/O."""

    def __init__(self, repository: CaseRepository) -> None:
        self.sync = repository

    async def create_case(
        self,
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
    ) -> CaseRow:
        return await asyncio.to_thread(
            lambda: self.sync.create_case(
                case_id=case_id,
                subject_pseudonym=subject_pseudonym,
                case_type=case_type,
                phase=phase,
                registered_by=registered_by,
                wrapped_data_key=wrapped_data_key,
                entries=entries,
                invitees=invitees,
                now=now,
            )
        )

    async def get_case(self, case_id: str) -> CaseRow | None:
        return await asyncio.to_thread(self.sync.get_case, case_id)

    async def add_participant(
        self, case_id: str, partner_id: str, invited_by: str, now: datetime
    ) -> CaseRow:
        return await asyncio.to_thread(
            self.sync.add_participant, case_id, partner_id, invited_by, now
        )

    async def is_participant(self, case_id: str, partner_id: str) -> bool:
        return await asyncio.to_thread(self.sync.is_participant, case_id, partner_id)

    async def participants(self, case_id: str) -> list[ParticipantRow]:
        return await asyncio.to_thread(self.sync.participants, case_id)

    async def add_entries(self, case_id: str, entries: Sequence[EntryRow]) -> None:
        await asyncio.to_thread(self.sync.add_entries, case_id, entries)

    async def latest_entries(self, case_id: str, fields: Collection[str]) -> dict[str, EntryRow]:
        return await asyncio.to_thread(self.sync.latest_entries, case_id, fields)

    async def entries(self, case_id: str, field: str) -> list[EntryRow]:
        return await asyncio.to_thread(self.sync.entries, case_id, field)

    async def set_phase(
        self,
        case_id: str,
        phase: str,
        *,
        expected_phase: str | None = None,
        closed_at: datetime | None = None,
    ) -> CaseRow:
        return await asyncio.to_thread(
            lambda: self.sync.set_phase(
                case_id, phase, expected_phase=expected_phase, closed_at=closed_at
            )
        )

    async def find_cases_by_subject(self, subject_pseudonym: str) -> list[CaseRow]:
        return await asyncio.to_thread(self.sync.find_cases_by_subject, subject_pseudonym)

    async def delete_case(self, case_id: str) -> None:
        await asyncio.to_thread(self.sync.delete_case, case_id)
