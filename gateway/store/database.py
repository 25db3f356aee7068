"""One object that owns an engine and the repositories built on it."""

from __future__ import annotations

from sqlalchemy import Engine

from gateway.store.aio import AsyncCaseRepository
from gateway.store.audit_log import DEFAULT_MAX_BATCH, AuditLog
from gateway.store.cases import CaseRepository
from gateway.store.db import create_engine_for, init_schema


class Database:
    """Engine, case file (sync and async faces) and accountability log of one database."""

    def __init__(self, engine: Engine, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self.engine = engine
        self.cases = CaseRepository(engine)
        self.cases_async = AsyncCaseRepository(self.cases)
        self.audit = AuditLog(engine, max_batch=max_batch)

    @classmethod
    def open(
        cls, url: str, *, create_schema: bool = True, max_batch: int = DEFAULT_MAX_BATCH
    ) -> Database:
        engine = create_engine_for(url)
        try:
            if create_schema:
                init_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, max_batch=max_batch)

    def close(self) -> None:
        """Release pooled connections; close the audit log's writer first when it runs."""
        self.engine.dispose()
