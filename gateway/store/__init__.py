"""Storage: the ZVH case file and the hash-chained accountability log (SQLite, PostgreSQL)."""

from gateway.store.aio import AsyncCaseRepository
from gateway.store.audit_event import GENESIS_HASH, encode_event, parse_event
from gateway.store.audit_log import DEFAULT_MAX_BATCH, AuditLog, BatchStats, ChainHead
from gateway.store.audit_verify import VerifyResult
from gateway.store.cases import (
    CaseRepository,
    CaseRow,
    CaseSnapshot,
    EntryRow,
    ParticipantRole,
    ParticipantRow,
)
from gateway.store.database import Database
from gateway.store.db import create_engine_for, init_schema
from gateway.store.errors import (
    AuditLogClosed,
    AuditWriteError,
    CaseNotFound,
    DuplicateCase,
    MalformedRecord,
    PhaseConflict,
    StoreError,
)
from gateway.store.snapshots import CaseSnapshots

__all__ = [
    "DEFAULT_MAX_BATCH",
    "GENESIS_HASH",
    "AsyncCaseRepository",
    "AuditLog",
    "AuditLogClosed",
    "AuditWriteError",
    "BatchStats",
    "CaseNotFound",
    "CaseRepository",
    "CaseRow",
    "CaseSnapshot",
    "CaseSnapshots",
    "ChainHead",
    "Database",
    "DuplicateCase",
    "EntryRow",
    "MalformedRecord",
    "ParticipantRole",
    "ParticipantRow",
    "PhaseConflict",
    "StoreError",
    "VerifyResult",
    "create_engine_for",
    "encode_event",
    "init_schema",
    "parse_event",
]
