"""Log records and holds made in memory for the report's builder and renderers."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.broker.log_events import SUBJECT_ID_TYPE, AuditEvent, FieldEntry, LogRecord, RecordKind
from gateway.core import CompiledPolicy
from gateway.policyfiles import load_policy_dir
from gateway.server.config import shipped_policy_dir
from gateway.store.holds import Hold

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
SUBJECT_A = "ps_" + "a" * 32
SUBJECT_B = "ps_" + "b" * 32
GROUNDS = "wgs-joint-processing, wgs-supply-to-participant"


@pytest.fixture(scope="session")
def policy() -> CompiledPolicy:
    return load_policy_dir(shipped_policy_dir())


def entry(
    field: str,
    source: str,
    outcome: str = "disclosed",
    category: str = "police_data",
    transform: str | None = None,
) -> FieldEntry:
    if outcome == "masked" and transform is None:
        transform = "presence"
    return FieldEntry(
        field,
        category,
        outcome,
        transform,
        source,
        "available" if outcome != "withheld" else "not_requested",
    )


def record(seq: int, **overrides: Any) -> LogRecord:
    """A disclosure to the municipality about subject A in case c_1, unless overridden."""
    values: dict[str, Any] = {
        "kind": RecordKind.DISCLOSURE,
        "occurred_at": T0 + timedelta(minutes=seq),
        "trace_id": os.urandom(16).hex(),
        "span_id": os.urandom(8).hex(),
        "partner_id": "municipality",
        "role": "chain_partner",
        "user_ref": "u-17",
        "purpose": "analysis_and_plan",
        "legal_basis": GROUNDS,
        "processing_activity": "https://zvh.example/register/pa-p2-analysis-and-plan",
        "phase": "case_meeting",
        "case_id": "c_1",
        "subject_pseudonym": SUBJECT_A,
        "subject_id_type": SUBJECT_ID_TYPE,
        "status": "ok",
        "refusal_code": "",
        "disclosure_id": f"d_{seq}",
        "policy_version": "sha256:" + "0" * 64,
        "break_glass": False,
        "justification_ref": "",
        "fields": (
            entry("mun.debts", "municipality", category="housing_finances"),
            entry("ggz.diagnosis", "ggz", "withheld", category="health"),
        ),
    }
    values.update(overrides)
    digest = hashlib.sha256(str(seq).encode()).hexdigest()
    return LogRecord(seq, AuditEvent(**values), "0" * 64, digest, T0)


def hold(
    placed_by: str = "police",
    *,
    case_id: str = "",
    subject: str = SUBJECT_A,
    until: datetime = T0 + timedelta(days=30),
    lifted_at: datetime | None = None,
) -> Hold:
    return Hold(
        hold_id=f"h_{placed_by}_{case_id}",
        subject_pseudonym=subject,
        placed_by=placed_by,
        case_id=case_id,
        reason_ciphertext=b"\x01r",
        reason_key_id=f"hold_reason/hold/h_{placed_by}_{case_id}",
        placed_at=T0,
        until=until,
        lifted_at=lifted_at,
        record_seq=1,
    )
