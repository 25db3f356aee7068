"""The subject access report as JSON: stable keys (docs/subject-access-report.md), sorted,
UTF-8, times as RFC 3339 UTC with ``Z``. The shape is checked by
docs/subject-access-report.schema.json."""

from __future__ import annotations

import json
from typing import Any

from gateway.reports.subject_access import (
    CheckpointView,
    ReportedField,
    ReportEntry,
    SubjectAccessReport,
)
from gateway.reports.subject_access_text import (
    TRANSFORM_WORDS,
    WITHHELD_STATEMENT,
    check_language,
)
from gateway.tlog.notes import format_time

REPORT_SCHEMA = "ketenpoort-subject-access/1"
MEDIA_TYPE = "application/json"


def report_document(report: SubjectAccessReport, language: str) -> dict[str, Any]:
    """The report as plain data; ``language`` picks the words of transform descriptions."""
    check_language(language)
    return {
        "schema": REPORT_SCHEMA,
        "language": language,
        "generated_at": format_time(report.generated_at),
        "subject": {
            "pseudonym": report.subject_pseudonym,
            "pseudonyms": list(report.subject_pseudonyms or (report.subject_pseudonym,)),
            "id_type": report.subject_id_type,
            "cases": [{"case_id": c.case_id, "role": c.role} for c in report.cases],
        },
        "policy_version": report.policy_version,
        "disclosures": [_entry(e, language) for e in report.entries],
        "withheld_under_exception": report.withheld_under_exception,
        "statement": dict(WITHHELD_STATEMENT) if report.withheld_under_exception else None,
        "checkpoints": [_checkpoint(c) for c in report.checkpoints],
        "log_key": None
        if report.log_key is None
        else {"key_id": report.log_key.key_id, "pem": report.log_key.pem},
        "record_seq": report.record_seq,
    }


def report_json(report: SubjectAccessReport, language: str) -> str:
    return (
        json.dumps(report_document(report, language), indent=2, sort_keys=True, ensure_ascii=False)
        + "\n"
    )


def _entry(e: ReportEntry, language: str) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "kind": e.kind,
        "started_at": format_time(e.started_at),
        "ended_at": format_time(e.ended_at),
        "recipient": {
            "partner_id": e.recipient.partner_id,
            "display_name": e.recipient.display_name,
            "partner_type": e.recipient.partner_type,
        },
        "role": {"id": e.role.id, "description": e.role.description},
        "purpose": {"id": e.purpose.id, "description": e.purpose.description},
        "legal_bases": [
            {"id": g.id, "title": g.title, "description": g.description} for g in e.legal_grounds
        ],
        "processing_activity": e.processing_activity,
        "case_id": e.case_id,
        "role_in_case": e.role_in_case,
        "break_glass": e.break_glass,
        "status": e.status,
        "fields": [_field(f, language) for f in e.fields],
        "policy_version": e.policy_version,
        "record_hash": e.record_hash,
        "proof": None
        if e.proof is None
        else {
            "leaf_index": e.proof.leaf_index,
            "tree_size": e.proof.tree_size,
            "leaf_hash": e.proof.leaf_hash,
            "path": list(e.proof.path),
        },
    }


def _field(f: ReportedField, language: str) -> dict[str, Any]:
    return {
        "field": f.field,
        "description": f.description,
        "category": {"id": f.category.id, "description": f.category.description},
        "outcome": f.outcome,
        "transform": f.transform,
        "transform_description": None
        if f.transform is None
        else TRANSFORM_WORDS[language].get(f.transform, f.transform),
        "source": {"partner_type": f.source.id, "description": f.source.description},
        "availability": f.availability,
    }


def _checkpoint(c: CheckpointView) -> dict[str, Any]:
    return {
        "tree_size": c.tree_size,
        "root_hash": c.root_hash,
        "origin": c.origin,
        "key_id": c.key_id,
        "created_at": format_time(c.created_at),
        "note": c.note,
    }
