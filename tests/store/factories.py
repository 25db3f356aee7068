"""Test data for the storage tests."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.broker.log_events import AuditEvent, FieldEntry, RecordKind

T0 = datetime(2026, 3, 2, 9, 30, 0, 123456, tzinfo=UTC)


def event(n: int = 0, **overrides: Any) -> AuditEvent:
    """A realistic disclosure event; ``n`` varies ids and time."""
    values: dict[str, Any] = {
        "kind": RecordKind.DISCLOSURE,
        "occurred_at": T0 + timedelta(seconds=n),
        "trace_id": os.urandom(16).hex(),
        "span_id": os.urandom(8).hex(),
        "partner_id": "politie-oost",
        "role": "casusregisseur",
        "user_ref": f"user-{n % 7}",
        "purpose": "casusoverleg",
        "legal_basis": "wgs-art-2.3",
        "processing_activity": "pa-17",
        "phase": "case_meeting",
        "case_id": f"case-{n % 5}",
        "subject_pseudonym": f"ps-{n % 3}",
        "status": "ok",
        "refusal_code": "",
        "disclosure_id": f"disc-{n}",
        "policy_version": "2026.03-1",
        "break_glass": False,
        "justification_ref": "",
        "fields": (
            FieldEntry("name", "identifying", "masked", "initials", "brp", "available"),
            FieldEntry("bsn", "identifying", "withheld", None, "brp", "not_requested"),
            FieldEntry("risk", "risk_assessment", "disclosed", None, "vt", "source_unavailable"),
        ),
    }
    values.update(overrides)
    return AuditEvent(**values)
