"""Fixtures for the storage tests: engines, repositories and accountability events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from gateway.broker.free_texts import FreeTexts
from gateway.broker.log_events import AuditEvent
from gateway.crypto import Keystore
from gateway.crypto.devkeys import init_dev_keys
from gateway.store import AuditLog, CaseRepository, create_engine_for, init_schema
from gateway.store.text_keys import TextKeyStore
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


@pytest.fixture(scope="session")
def gateway_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystore]:
    """The gateway's keys (development keys of its own): KEKs and the pseudonym key."""
    root = tmp_path_factory.mktemp("store-keys") / "keys"
    init_dev_keys(root, ["police"])
    keystore = Keystore.open(root)
    try:
        yield keystore
    finally:
        keystore.close()


@pytest.fixture
def free_texts(engine: Engine, gateway_keys: Keystore) -> FreeTexts:
    return FreeTexts(TextKeyStore(engine), gateway_keys, lambda: datetime.now(UTC))
