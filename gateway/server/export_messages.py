"""Export pages as contract messages (ExchangeService.ExportDisclosures)."""

from __future__ import annotations

from gateway.api.v1 import exchange_pb2
from gateway.broker.disclosure_export import ExportedRecord, ExportPage
from gateway.server.logged_fields import field_values
from gateway.tlog.notes import format_time


def export_page(page: ExportPage) -> exchange_pb2.ExportPage:
    return exchange_pb2.ExportPage(
        disclosures=[exported_disclosure(r) for r in page.records],
        last_seq=page.last_seq,
        done=page.done,
    )


def exported_disclosure(shown: ExportedRecord) -> exchange_pb2.ExportedDisclosure:
    record, e = shown.record, shown.record.event
    assert e.ended_at is not None  # set by AuditEvent
    return exchange_pb2.ExportedDisclosure(
        seq=record.seq,
        occurred_at=format_time(e.occurred_at),
        ended_at=format_time(e.ended_at),
        trace_id=e.trace_id,
        span_id=e.span_id,
        disclosure_id=e.disclosure_id,
        recipient_partner_id=e.partner_id,
        recipient_role=e.role,
        user_ref=shown.user_ref,
        purpose=e.purpose,
        legal_basis=e.legal_basis,
        processing_activity=e.processing_activity,
        phase=e.phase,
        case_id=e.case_id,
        subject_pseudonym=e.subject_pseudonym,
        status=e.status,
        break_glass=e.break_glass,
        policy_version=e.policy_version,
        fields=[exchange_pb2.ExportedField(**field_values(f)) for f in shown.fields],
        record_hash=record.record_hash,
    )
