"""How an accountability event is written: its canonical JSON body and the record hash.

The event itself (``AuditEvent``, its kinds and field entries) is the use cases' model and
lives in ``gateway.broker.log_events``; this module only encodes and parses it.
The body is canonical JSON (sorted keys, no whitespace, UTF-8, times as ISO-8601 with ``Z``),
so the same event always hashes the same, on every replica and after a round trip.
"""

from __future__ import annotations

import hashlib
import json
from json.encoder import encode_basestring
from typing import Any

from gateway.broker.log_events import AuditEvent, FieldEntry, RecordKind
from gateway.store.errors import MalformedRecord
from gateway.tlog.notes import format_time as format_time
from gateway.tlog.notes import parse_time as parse_time

GENESIS_HASH = "0" * 64
HASH_DOMAIN = b"ketenpoort-log-v1\x00"
# Names the body layout; a reader refuses a body with another value.
BODY_SCHEMA = "ketenpoort-log/2"

BODY_KEYS = frozenset(
    {
        "schema",
        "name",
        "ended_at",
        "parent_span_id",
        "subject_id_type",
        "detail",
        "kind",
        "occurred_at",
        "trace_id",
        "span_id",
        "partner_id",
        "role",
        "user_ref",
        "purpose",
        "legal_basis",
        "processing_activity",
        "phase",
        "case_id",
        "subject_pseudonym",
        "status",
        "refusal_code",
        "disclosure_id",
        "policy_version",
        "break_glass",
        "justification_ref",
        "fields",
    }
)
FIELD_KEYS = frozenset({"field", "category", "outcome", "transform", "source", "availability"})
_STRING_KEYS = BODY_KEYS - {"kind", "occurred_at", "ended_at", "break_glass", "fields", "detail"}
_FIELD_STRING_KEYS = FIELD_KEYS - {"transform"}

# JSON string escaping exactly as json.dumps(..., ensure_ascii=False) does it.
_q = encode_basestring


def encode_event(event: AuditEvent) -> str:
    """The canonical JSON body of an event.

    Equal to ``json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
    but written out by hand with the keys in sorted order: at the log's append rate the
    generic encoder costs more than hashing and inserting the record together.
    """
    return encode_event_with_time(event)[0]


def encode_event_with_time(event: AuditEvent) -> tuple[str, str]:
    """The canonical body and, reused by the writer, its ``occurred_at`` text."""
    e = event
    # occurred_at is already normalised to UTC by AuditEvent.
    when = e.occurred_at.isoformat("T", "microseconds")[:26] + "Z"
    assert e.ended_at is not None  # set by AuditEvent
    ended = when if e.ended_at == e.occurred_at else format_time(e.ended_at)
    fields = ",".join([_encode_field(f) for f in e.fields])
    detail = ",".join([f"{_q(k)}:{_q(v)}" for k, v in e.detail])
    body = (
        f'{{"break_glass":{"true" if e.break_glass else "false"},"case_id":{_q(e.case_id)},'
        f'"detail":{{{detail}}},'
        f'"disclosure_id":{_q(e.disclosure_id)},"ended_at":"{ended}","fields":[{fields}],'
        f'"justification_ref":{_q(e.justification_ref)},"kind":{_q(e.kind)},'
        f'"legal_basis":{_q(e.legal_basis)},"name":{_q(e.name)},"occurred_at":"{when}",'
        f'"parent_span_id":{_q(e.parent_span_id)},'
        f'"partner_id":{_q(e.partner_id)},"phase":{_q(e.phase)},'
        f'"policy_version":{_q(e.policy_version)},'
        f'"processing_activity":{_q(e.processing_activity)},"purpose":{_q(e.purpose)},'
        f'"refusal_code":{_q(e.refusal_code)},"role":{_q(e.role)},'
        f'"schema":"{BODY_SCHEMA}","span_id":{_q(e.span_id)},'
        f'"status":{_q(e.status)},"subject_id_type":{_q(e.subject_id_type)},'
        f'"subject_pseudonym":{_q(e.subject_pseudonym)},'
        f'"trace_id":{_q(e.trace_id)},"user_ref":{_q(e.user_ref)}}}'
    )
    return body, when


# Field fragments repeat from event to event (the policy names a bounded set of fields,
# outcomes and transforms), so each distinct one is encoded once.
_FIELD_CACHE_LIMIT = 8192
_field_fragments: dict[tuple[str, str, str, str | None, str, str], str] = {}


def _encode_field(f: FieldEntry) -> str:
    key = (f.field, f.category, f.outcome, f.transform, f.source, f.availability)
    fragment = _field_fragments.get(key)
    if fragment is None:
        transform = "null" if f.transform is None else _q(f.transform)
        fragment = (
            f'{{"availability":{_q(f.availability)},"category":{_q(f.category)},'
            f'"field":{_q(f.field)},"outcome":{_q(f.outcome)},"source":{_q(f.source)},'
            f'"transform":{transform}}}'
        )
        if len(_field_fragments) >= _FIELD_CACHE_LIMIT:
            _field_fragments.clear()
        _field_fragments[key] = fragment
    return fragment


def parse_event(body: str) -> AuditEvent:
    """The event a canonical body was made from; ``MalformedRecord`` if it has another shape."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise MalformedRecord("record body is not JSON") from exc
    if not isinstance(data, dict) or data.keys() != BODY_KEYS:
        raise MalformedRecord("record body keys differ from the documented set")
    if not all(isinstance(data[k], str) for k in _STRING_KEYS):
        raise MalformedRecord("record body has a non-string identifier")
    if not isinstance(data["fields"], list):
        raise MalformedRecord("record body fields are not a list")
    if data["schema"] != BODY_SCHEMA:
        raise MalformedRecord(f"record body schema is not {BODY_SCHEMA}")
    detail = data["detail"]
    if not isinstance(detail, dict):
        raise MalformedRecord("record body detail is not an object")
    try:
        return AuditEvent(
            kind=RecordKind(data["kind"]),
            occurred_at=parse_time(data["occurred_at"]),
            trace_id=data["trace_id"],
            span_id=data["span_id"],
            partner_id=data["partner_id"],
            role=data["role"],
            user_ref=data["user_ref"],
            purpose=data["purpose"],
            legal_basis=data["legal_basis"],
            processing_activity=data["processing_activity"],
            phase=data["phase"],
            case_id=data["case_id"],
            subject_pseudonym=data["subject_pseudonym"],
            status=data["status"],
            refusal_code=data["refusal_code"],
            disclosure_id=data["disclosure_id"],
            policy_version=data["policy_version"],
            break_glass=data["break_glass"],
            justification_ref=data["justification_ref"],
            fields=tuple(_parse_field(f) for f in data["fields"]),
            name=data["name"],
            ended_at=parse_time(data["ended_at"]),
            parent_span_id=data["parent_span_id"],
            subject_id_type=data["subject_id_type"],
            detail=tuple(sorted(detail.items())),
        )
    except (TypeError, ValueError) as exc:
        raise MalformedRecord("record body holds an invalid event") from exc


def _parse_field(item: Any) -> FieldEntry:
    if not isinstance(item, dict) or item.keys() != FIELD_KEYS:
        raise MalformedRecord("field entry keys differ from the documented set")
    if not all(isinstance(item[k], str) for k in _FIELD_STRING_KEYS):
        raise MalformedRecord("field entry has a non-string identifier")
    transform = item["transform"]
    if transform is not None and not isinstance(transform, str):
        raise MalformedRecord("field entry transform is neither null nor a string")
    return FieldEntry(
        field=item["field"],
        category=item["category"],
        outcome=item["outcome"],
        transform=transform,
        source=item["source"],
        availability=item["availability"],
    )


def chain_hash(seq: int, prev_hash: bytes, body: bytes) -> bytes:
    """SHA-256 over domain tag, seq (8 bytes big-endian), previous hash and body."""
    return hashlib.sha256(HASH_DOMAIN + seq.to_bytes(8, "big") + prev_hash + body).digest()
