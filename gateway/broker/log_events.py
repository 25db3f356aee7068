"""The accountability log's events, as the use cases make them and the log hands them back.

An event says who asked what for which purpose and, per field, what the gateway decided. It
holds identifiers, categories and outcomes only: there is no place for a field value. This
is the model; how an event is written (its canonical JSON body, the record hash, the chain)
belongs to the log's storage (``gateway.store.audit_event``), which encodes exactly these
fields and nothing else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

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
    # The database was restored from a backup (`ketenpoort restore`): the first record after
    # the backup's. detail names the backup's log size and, when the operator accepted a
    # rollback below checkpoints known outside, their size, the witnesses and a digest of
    # the reason.
    LOG_RESTORED = "log_restored"
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


@dataclass(frozen=True, slots=True)
class LogRecord:
    """An event as the log holds it: its place in the chain and the hashes that bind it."""

    seq: int
    event: AuditEvent
    prev_hash: str
    record_hash: str
    recorded_at: datetime
