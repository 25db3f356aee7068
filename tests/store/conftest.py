"""Fixtures for the storage tests: engines, repositories and accountability events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from sqlalchemy import Engine

from gateway.store import AuditEvent, AuditLog, CaseRepository, create_engine_for, init_schema
from tests.store.factories import event

EventFactory = Callable[..., AuditEvent]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_engine_for(db_url)
    init_schema(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def cases(engine: Engine) -> CaseRepository:
    return CaseRepository(engine)


@pytest.fixture
async def audit(engine: Engine) -> AsyncIterator[AuditLog]:
    log = AuditLog(engine)
    await log.start()
    try:
        yield log
    finally:
        await log.close()


@pytest.fixture
def make_event() -> EventFactory:
    return event
