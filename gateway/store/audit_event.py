"""Accountability events, their canonical JSON body and the record hash.

An event says who asked what for which purpose and, per field, what the gateway decided. It
holds identifiers, categories and outcomes only: there is no place for a field value.
The body is canonical JSON (sorted keys, no whitespace, UTF-8, times as ISO-8601 with ``Z``),
so the same event always hashes the same, on every replica and after a round trip.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from json.encoder import encode_basestring
from typing import Any

from gateway.store.errors import MalformedRecord
from gateway.tlog.notes import format_time as format_time
from gateway.tlog.notes import parse_time as parse_time

GENESIS_HASH = "0" * 64
HASH_DOMAIN = b"ketenpoort-log-v1\x00"
# Names the body layout; a reader refuses a body with another value.
BODY_SCHEMA = "ketenpoort-log/2"
# dpl.core.data_subject_id_type of Logboek Dataverwerkingen: what subject_pseudonym is.
SUBJECT_ID_TYPE = "urn:ketenpoort:subject-id:hmac-sha256-bsn"
# ... for a person registered without a BSN: the keyed pseudonym of the person id.
PERSON_ID_TYPE = "urn:ketenpoort:subject-id:hmac-sha256-person"


class RecordKind(StrEnum):
    DISCLOSURE = "disclosure"
    REFUSAL = "refusal"
    TRIAGE = "triage"
    REGISTRATION = "registration"
    INVITATION = "invitation"
    PHASE_CHANGE = "phase_change"
    CASE_NOTE = "case_note"
    HOLD_PLACED = "hold_placed"
    HOLD_LIFTED = "hold_lifted"
    BREAK_GLASS_REVIEW = "break_glass_review"
    RETENTION = "retention"
    SUBJECT_ACCESS = "subject_access"
    LOG_EXPORT = "log_export"
    # A call refused before it reached a use case: no valid token, a replay, a revoked key.
    AUTH_REFUSAL = "auth_refusal"
    # A registration or case-file entry sent again under the request id of one already
    # done: answered as the first call was, nothing changed. Names the first call's record.
    REPLAY = "replay"
    # An operator cleared the gateway's log alarm (`ketenpoort audit acknowledge`): the log
    # verified again, or the operator overrode the check and said why (a digest of it).
    LOG_ALARM_CLEARED = "log_alarm_cleared"
    # Calls of one caller turned away by the call limits in one window, counted in one
    # record (start and end of the window, the count, the operations), never one per call.
    RATE_LIMITED = "rate_limited"
    # A person added to a case (by AddPerson, or the second and further persons of a
    # registration), removed from it (soft), or given a BSN later. Each names the person by
    # its pseudonym (the record's subject pseudonym) and its role in the case, never a value.
    PERSON_ADDED = "person_added"
    PERSON_REMOVED = "person_removed"
    PERSON_IDENTIFIED = "person_identified"
    # The plan of a case (CasePlanService): ids, partners, kinds and dates only, never the
    # description, decisions, minutes or summary (those are in the case file, encrypted).
    MEETING_PLANNED = "meeting_planned"
    MEETING_RECORDED = "meeting_recorded"
    PLAN_ACTION_ADDED = "plan_action_added"
    PLAN_ACTION_UPDATED = "plan_action_updated"
    # Closed with a category (CloseCase): the closure moment starts the retention clock.
    CASE_CLOSED = "case_closed"
    # The ZVH's intake of a registered case: detail names the decision (accept, decline,
    # advice_only) and the case-file entry holding the reason (encrypted, never in the log).
    INTAKE_DECISION = "intake_decision"
    # The case's approach changed: detail names the old and new approach ids and the entry.
    APPROACH_CHANGE = "approach_change"
    # A regie (procesregie, casusregie) handed to another holder, or given back to the
    # previous one: detail names the regie and the new holder (partner id, user reference).
    REGIE_TRANSFER = "regie_transfer"
    # An escalation of an acute case reopened its break-glass window: detail names the
    # case-file entry holding the reason, never the reason.
    ESCALATION = "escalation"
    REGIE_RETURN = "regie_return"


class EventStatus(StrEnum):
    OK = "ok"
    INCOMPLETE = "incomplete"
    REFUSED = "refused"
    ERROR = "error"


class FieldOutcome(StrEnum):
    DISCLOSED = "disclosed"
    MASKED = "masked"
    WITHHELD = "withheld"


class Availability(StrEnum):
    AVAILABLE = "available"
    NOT_HELD = "not_held"
    SOURCE_UNAVAILABLE = "source_unavailable"
    NOT_REQUESTED = "not_requested"
    # Masked by the policy, but the transform could not apply to the value: withheld.
    TRANSFORM_FAILED = "transform_failed"
    # No source system of that partner type is configured: it was not asked (triage).
    NOT_ASKED = "not_asked"


_KINDS = frozenset(RecordKind)
_STATUSES = frozenset(EventStatus)
_OUTCOMES = frozenset(FieldOutcome)
_AVAILABILITIES = frozenset(Availability)
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_DETAIL_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_DETAIL_ITEMS = 16
MAX_DETAIL_VALUE = 256


@dataclass(frozen=True, slots=True)
class FieldEntry:
    """The decision on one field: outcome, the mask transform if any, and where it lives."""

    field: str
    category: str
    outcome: str
    transform: str | None
    source: str
    availability: str

    def __post_init__(self) -> None:
        if self.outcome not in _OUTCOMES:
            raise ValueError("unknown field outcome")
        if self.availability not in _AVAILABILITIES:
            raise ValueError("unknown field availability")
        if (self.outcome == FieldOutcome.MASKED) != (self.transform is not None):
            raise ValueError("a transform is named exactly when the outcome is 'masked'")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One disclosure, refusal, triage answer or case change, as written to the log."""

    kind: RecordKind
    occurred_at: datetime
    trace_id: str
    span_id: str
    partner_id: str
    role: str
    user_ref: str
    purpose: str
    legal_basis: str
    processing_activity: str
    phase: str
    case_id: str
    subject_pseudonym: str
    status: str
    refusal_code: str
    disclosure_id: str
    policy_version: str
    break_glass: bool
    justification_ref: str
    fields: tuple[FieldEntry, ...]
    # Logboek Dataverwerkingen ``name``: the operation, e.g. "ExchangeService/RequestDisclosure".
    name: str = ""
    # Logboek ``end_time``; ``occurred_at`` is its ``start_time``. None means the same instant.
    ended_at: datetime | None = None
    # The caller's span from its traceparent (Logboek ``foreign_operation``); "" when none.
    parent_span_id: str = ""
    # Logboek ``dpl.core.data_subject_id_type``; "" when the record is about no subject.
    subject_id_type: str = ""
    # Kind-specific identifiers (a reviewed record's seq, a hold's end date, a digest of a
    # comment kept outside the log): sorted (key, value) pairs, never a case value.
    detail: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError("unknown record kind")
        object.__setattr__(self, "kind", RecordKind(self.kind))
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must be an aware datetime")
        object.__setattr__(self, "occurred_at", self.occurred_at.astimezone(UTC))
        if _TRACE_ID.fullmatch(self.trace_id) is None or self.trace_id == "0" * 32:
            raise ValueError("trace_id must be 32 lowercase hex digits, not all zero")
        if _SPAN_ID.fullmatch(self.span_id) is None or self.span_id == "0" * 16:
            raise ValueError("span_id must be 16 lowercase hex digits, not all zero")
        if self.status not in _STATUSES:
            raise ValueError("unknown event status")
        # Copied into indexed columns, where PostgreSQL refuses a NUL character; refused
        # here so one bad event cannot fail the batch it would share with others.
        if (
            "\x00" in self.partner_id
            or "\x00" in self.case_id
            or "\x00" in self.subject_pseudonym
            or "\x00" in self.purpose
        ):
            raise ValueError("identifiers must not contain NUL characters")
        if not isinstance(self.break_glass, bool):
            raise ValueError("break_glass must be a bool")
        if not isinstance(self.fields, tuple) or not all(
            isinstance(f, FieldEntry) for f in self.fields
        ):
            raise ValueError("fields must be a tuple of FieldEntry")
        if self.ended_at is None:
            object.__setattr__(self, "ended_at", self.occurred_at)
        else:
            if self.ended_at.tzinfo is None or self.ended_at.utcoffset() is None:
                raise ValueError("ended_at must be an aware datetime")
            object.__setattr__(self, "ended_at", self.ended_at.astimezone(UTC))
        if self.parent_span_id and (
            _SPAN_ID.fullmatch(self.parent_span_id) is None or self.parent_span_id == "0" * 16
        ):
            raise ValueError("parent_span_id must be empty or 16 lowercase hex digits")
        _check_detail(self.detail)


def _check_detail(detail: object) -> None:
    if not isinstance(detail, tuple) or len(detail) > MAX_DETAIL_ITEMS:
        raise ValueError(f"detail must be a tuple of at most {MAX_DETAIL_ITEMS} pairs")
    keys: list[str] = []
    for pair in detail:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise ValueError("detail items must be (key, value) pairs")
        key, value = pair
        if not isinstance(key, str) or _DETAIL_KEY.fullmatch(key) is None:
            raise ValueError("detail keys are short lowercase identifiers")
        if not isinstance(value, str) or len(value) > MAX_DETAIL_VALUE or "\x00" in value:
            raise ValueError(f"detail values are strings of at most {MAX_DETAIL_VALUE} chars")
        keys.append(key)
    if keys != sorted(set(keys)):
        raise ValueError("detail keys must be unique and sorted")


def detail_of(**items: str | int) -> tuple[tuple[str, str], ...]:
    """``detail`` pairs from keyword arguments, sorted by key."""
    return tuple(sorted((key, str(value)) for key, value in items.items()))


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
