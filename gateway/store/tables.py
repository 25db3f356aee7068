"""Table definitions shared by the case file and the accountability log."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend.

    SQLite has no time zone type, so values are stored as naive UTC there and made aware again
    on the way out; PostgreSQL keeps ``timestamptz``. Naive input is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime; the store keeps aware UTC times only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# On SQLite an INTEGER primary key is the rowid, so the log is stored clustered by seq.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

cases = Table(
    "cases",
    metadata,
    Column("case_id", String(), primary_key=True),
    Column("subject_pseudonym", String(), nullable=False, index=True),
    Column("case_type", String(), nullable=False),
    Column("phase", String(), nullable=False),
    Column("registered_by", String(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime(), nullable=True),
    # Empty once the case was shredded at the end of its retention (see shredded_at).
    Column("wrapped_data_key", LargeBinary(), nullable=False),
    Column("shredded_at", UTCDateTime(), nullable=True),
    # Regie and intake (gateway.broker.regie). The approach is a policy approach id; case_type
    # keeps the same id for readers of the older column.
    Column("approach", String(), nullable=False, server_default="general"),
    # pending | accepted | declined | advice_only: the ZVH's intake decision.
    Column("intake", String(), nullable=False, server_default="pending"),
    # Holders: partner id, and the user reference when the regie names one ('' = unassigned
    # or the partner as a whole). The previous holder is kept so a regie can be returned.
    Column("procesregie_partner", String(), nullable=False, server_default=""),
    Column("procesregie_user", String(), nullable=False, server_default=""),
    Column("procesregie_prev_partner", String(), nullable=False, server_default=""),
    Column("procesregie_prev_user", String(), nullable=False, server_default=""),
    Column("casusregie_partner", String(), nullable=False, server_default=""),
    Column("casusregie_user", String(), nullable=False, server_default=""),
    Column("casusregie_prev_partner", String(), nullable=False, server_default=""),
    Column("casusregie_prev_user", String(), nullable=False, server_default=""),
    # Why the case was closed (a category id); set at closure.
    Column("closure_category", String(), nullable=False, server_default=""),
)

case_participants = Table(
    "case_participants",
    metadata,
    Column(
        "case_id",
        String(),
        ForeignKey("cases.case_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("partner_id", String(), primary_key=True),
    Column("role_in_case", String(), nullable=False),
    Column("invited_by", String(), nullable=False),
    Column("joined_at", UTCDateTime(), nullable=False),
    CheckConstraint("role_in_case IN ('registrant', 'invited')", name="ck_case_participants_role"),
)

case_entries = Table(
    "case_entries",
    metadata,
    Column("entry_id", String(), primary_key=True),
    Column(
        "case_id",
        String(),
        ForeignKey("cases.case_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("field", String(), nullable=False),
    # The person of the case the entry is about (an identity field); empty for the case itself.
    Column("person_id", String(), nullable=False, server_default=""),
    Column("ciphertext", LargeBinary(), nullable=False),
    Column("created_by", String(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Serves "all entries of a case", "entries of one field" and "newest per field".
    Index("ix_case_entries_case_field_time", "case_id", "field", "created_at"),
)

# The persons a case is about (a household: alleged perpetrator, victim, children, ...).
# Their identifying data lives in case_entries (person_id set), encrypted under the case key.
# ``pseudonym`` is fixed when the person is added: the keyed pseudonym of the BSN when one is
# known then, else the keyed pseudonym of the person id; every log record about the person
# carries it. ``bsn_pseudonym`` is the keyed pseudonym of a BSN learnt later, so an access
# request by BSN finds the person's records made before the BSN was known.
case_persons = Table(
    "case_persons",
    metadata,
    Column(
        "case_id",
        String(),
        ForeignKey("cases.case_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("person_id", String(), primary_key=True),
    Column("role_in_case", String(), nullable=False),
    Column("pseudonym", String(), nullable=False, index=True),
    Column("bsn_pseudonym", String(), nullable=True, index=True),
    # bsn | name_and_birth | reference | unidentified: how the person was identified.
    Column("identified_by", String(), nullable=False),
    Column("added_by", String(), nullable=False),
    Column("added_at", UTCDateTime(), nullable=False),
    Column("removed_by", String(), nullable=True),
    Column("removed_at", UTCDateTime(), nullable=True),
    CheckConstraint(
        "identified_by IN ('bsn', 'name_and_birth', 'reference', 'unidentified')",
        name="ck_case_persons_identified_by",
    ),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", _SEQ, primary_key=True, autoincrement=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    # Copies of body values, kept as columns so queries can use indexes; verify() checks
    # that each equals the hashed body.
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("partner_id", String(), nullable=False),
    Column("case_id", String(), nullable=False),
    Column("subject_pseudonym", String(), nullable=False),
    Column("purpose", String(), nullable=False),
    Column("status", String(), nullable=False),
    Column("break_glass", Boolean(), nullable=False),
    Column("body", Text(), nullable=False),
    Column("prev_hash", String(), nullable=False),
    Column("record_hash", String(), nullable=False),
    # Queries filter on one of these and page by seq. Every index slows the append path, so
    # there is none for time ranges: those are served within a partner, case or subject.
    Index("ix_audit_log_partner_seq", "partner_id", "seq"),
    Index("ix_audit_log_case_seq", "case_id", "seq"),
    Index("ix_audit_log_subject_seq", "subject_pseudonym", "seq"),
    # The break-glass review queue: few rows, so a partial index costs the append path little.
    Index(
        "ix_audit_log_break_glass_seq",
        "seq",
        sqlite_where=text("break_glass"),
        postgresql_where=text("break_glass"),
    ),
)

# The column order of the raw insert used by the append path.
AUDIT_INSERT_COLUMNS = (
    "seq",
    "recorded_at",
    "occurred_at",
    "kind",
    "partner_id",
    "case_id",
    "subject_pseudonym",
    "purpose",
    "status",
    "break_glass",
    "body",
    "prev_hash",
    "record_hash",
)

log_head = Table(
    "log_head",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=False),
    Column("last_seq", _SEQ, nullable=False),
    Column("last_hash", String(), nullable=False),
    # The Merkle tree's compact range at last_seq: the roots of its complete subtrees, left
    # to right, as concatenated hex. Each batch extends it under the head lock.
    Column("frontier", Text(), nullable=False, server_default=""),
    # The newest signed checkpoint: its tree size and when it was made.
    Column("checkpoint_size", _SEQ, nullable=False, server_default="0"),
    Column("checkpoint_at", UTCDateTime(), nullable=True),
    CheckConstraint("id = 1", name="ck_log_head_single_row"),
)

# Signed checkpoints (C2SP tlog-checkpoint notes) over the Merkle tree of the log.
log_checkpoints = Table(
    "log_checkpoints",
    metadata,
    Column("tree_size", _SEQ, primary_key=True, autoincrement=False),
    Column("root_hash", String(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # sha256 pin of the signing key's SubjectPublicKeyInfo.
    Column("key_id", String(), nullable=False),
    # The signed note, exactly as signed and as exported.
    Column("note", Text(), nullable=False),
)

# Checkpoints cosigned by a witness (a partner that checked consistency with what it saw
# before): the note with the witness's C2SP cosignature line, one row per size and witness.
log_cosignatures = Table(
    "log_cosignatures",
    metadata,
    Column("tree_size", _SEQ, primary_key=True, autoincrement=False),
    Column("witness", String(), primary_key=True),
    Column("cosigned_at", UTCDateTime(), nullable=False),
    Column("key_id", String(), nullable=False),
    Column("note", Text(), nullable=False),
)

# Roots of complete subtrees of 2^level leaves at levels 8, 16, 24, ... (tiles), so that
# proofs read a few hundred hashes instead of every record.
merkle_tiles = Table(
    "merkle_tiles",
    metadata,
    Column("level", Integer(), primary_key=True, autoincrement=False),
    Column("idx", BigInteger(), primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(), nullable=False),
)

# Confidentiality holds (AVG art. 23, Wpg): disclosures they cover are left out of a
# subject access report while the hold lasts.
confidentiality_holds = Table(
    "confidentiality_holds",
    metadata,
    Column("hold_id", String(), primary_key=True),
    Column("subject_pseudonym", String(), nullable=False, index=True),
    Column("placed_by", String(), nullable=False),
    # Empty: every case of the subject.
    Column("case_id", String(), nullable=False),
    # The reason, encrypted under the text key reason_key_id (gateway.crypto.free_text).
    Column("reason_ciphertext", LargeBinary(), nullable=False),
    Column("reason_key_id", String(), nullable=False),
    Column("placed_at", UTCDateTime(), nullable=False),
    Column("until", UTCDateTime(), nullable=False),
    Column("lifted_at", UTCDateTime(), nullable=True),
    Column("record_seq", _SEQ, nullable=False),
)

# Review of break-glass disclosures by a privacy officer; an open review is a break-glass
# disclosure record without a row here.
break_glass_reviews = Table(
    "break_glass_reviews",
    metadata,
    Column("disclosure_seq", _SEQ, primary_key=True, autoincrement=False),
    Column("verdict", String(), nullable=False),
    # The comment, encrypted under the text key comment_key_id (gateway.crypto.free_text).
    Column("comment_ciphertext", LargeBinary(), nullable=False),
    Column("comment_key_id", String(), nullable=False),
    Column("reviewed_by", String(), nullable=False),
    Column("reviewed_at", UTCDateTime(), nullable=False),
    Column("review_seq", _SEQ, nullable=False),
    CheckConstraint(
        "verdict IN ('justified', 'not_justified')", name="ck_break_glass_reviews_verdict"
    ),
)

# Data keys of free texts (hold reasons, break-glass justifications, review comments), one per
# text class and case, or per hold on all of a subject's cases (gateway.crypto.free_text).
# Stored wrapped like a case's key, in the same format, so a re-wrap moves them too; emptied
# when the case they belong to is shredded.
text_keys = Table(
    "text_keys",
    metadata,
    Column("key_id", String(), primary_key=True),
    Column("text_class", String(), nullable=False),
    # Empty for a key that belongs to no case (a hold on every case of a subject).
    Column("case_id", String(), nullable=False, index=True),
    Column("wrapped_data_key", LargeBinary(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("shredded_at", UTCDateTime(), nullable=True),
)

# Withdrawn partners, certificates and keys, shared by every replica: a gateway checks
# the newest id in the same transaction that claims a token's jti, so a revocation takes
# effect on the next call everywhere. kind is partner | certificate | key.
revocations = Table(
    "revocations",
    metadata,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("partner_id", String(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("subject", String(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=False),
    Index("ix_revocations_subject", "kind", "partner_id", "subject", unique=True),
    CheckConstraint(
        "kind IN ('partner', 'certificate', 'key')", name="ck_revocations_kind"
    ),
)

# Token ids (jti) already used, until the token would have expired anyway: a token is good
# for one call. The key is SHA-256 over issuer and jti, so the table holds no token content.
token_uses = Table(
    "token_uses",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

# Request ids of registrations and case-file entries, per partner, for a retention window: a
# resent call finds its first call here and gets the same answer. Written in the transaction
# that creates the case or entry, so the primary key lets exactly one of concurrent calls
# through. No content: only a keyed digest of it (gateway.crypto.request_digest).
request_ids = Table(
    "request_ids",
    metadata,
    Column("partner_id", String(), primary_key=True),
    Column("request_id", String(), primary_key=True),
    Column("operation", String(), nullable=False),
    Column("content_digest", LargeBinary(32), nullable=False),
    Column("case_id", String(), nullable=False),
    # The entry a case-file call added; empty for a registration.
    Column("entry_id", String(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False, index=True),
)

# Schema generation from before migrations: release v0.1.0 wrote 3 here and refuses any other
# value. The schema's revision is now in alembic_version (gateway.store.migrations); a
# migrated database holds 4 here, so that a v0.1.0 gateway refuses it.
schema_info = Table(
    "schema_info",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=False),
    Column("version", Integer(), nullable=False),
    CheckConstraint("id = 1", name="ck_schema_info_single_row"),
)
# Case meetings (casusoverleg) of a case, planned and then recorded by the process director.
# No personal data in clear: the decisions are one ciphertext under the case's data key, the
# minutes a case-file entry (minutes_entry_id) of field case.meeting_minutes[.<class>].
case_meetings = Table(
    "case_meetings",
    metadata,
    Column("meeting_id", String(), primary_key=True),
    Column(
        "case_id",
        String(),
        ForeignKey("cases.case_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("scheduled_at", UTCDateTime(), nullable=False),
    Column("chair_partner", String(), nullable=False),
    Column("planned_by", String(), nullable=False),
    Column("planned_at", UTCDateTime(), nullable=False),
    Column("recorded_by", String(), nullable=True),
    Column("recorded_at", UTCDateTime(), nullable=True),
    # The decisions as JSON, encrypted under the case's data key; empty until recorded.
    Column("decisions_ciphertext", LargeBinary(), nullable=True),
    Column("minutes_entry_id", String(), nullable=True),
    Column("minutes_classification", String(), nullable=True),
)

# The partners of a meeting: invited when it is planned, attended when it is recorded.
case_meeting_partners = Table(
    "case_meeting_partners",
    metadata,
    Column(
        "meeting_id",
        String(),
        ForeignKey("case_meetings.meeting_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("partner_id", String(), primary_key=True),
    Column("invited", Boolean(), nullable=False),
    Column("attended", Boolean(), nullable=False),
)

# The actions of a case's plan of approach. The description is a case-file entry
# (description_entry_id, field case.plan_actions) so that it is disclosed as the policy allows
# that field and deleted with the case file; the newest status note is a ciphertext under the
# case's data key. due_notified_at / overdue_notified_at make the monitoring's events go out
# once per action, whichever replica finds it first.
plan_actions = Table(
    "plan_actions",
    metadata,
    Column("action_id", String(), primary_key=True),
    Column(
        "case_id",
        String(),
        ForeignKey("cases.case_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("owner_partner", String(), nullable=False),
    Column("description_entry_id", String(), nullable=False),
    # The person of the case the action is about; empty for the case itself.
    Column("person_id", String(), nullable=False, server_default=""),
    Column("deadline", UTCDateTime(), nullable=False),
    Column("status", String(), nullable=False),
    Column("note_ciphertext", LargeBinary(), nullable=True),
    Column("created_by", String(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("due_notified_at", UTCDateTime(), nullable=True),
    Column("overdue_notified_at", UTCDateTime(), nullable=True),
    CheckConstraint(
        "status IN ('open', 'in_progress', 'done', 'cancelled')", name="ck_plan_actions_status"
    ),
    # The monitoring's scan: open actions by deadline.
    Index("ix_plan_actions_status_deadline", "status", "deadline"),
)

# What happened to a case, per partner that takes part in it (the partner's work surface
# streams these: gateway.broker.case_events). Written in the transaction of the change; no
# personal data: the case id, the kind and the moment. ``id`` orders events across replicas.
case_events = Table(
    "case_events",
    metadata,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("case_id", String(), nullable=False),
    Column("partner_id", String(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_case_events_partner_id", "partner_id", "id"),
    Index("ix_case_events_case", "case_id"),
)
