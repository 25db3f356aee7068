"""Table definitions shared by the case file and the accountability log."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
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
    Column("wrapped_data_key", LargeBinary(), nullable=False),
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
    Column("ciphertext", LargeBinary(), nullable=False),
    Column("created_by", String(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # Serves "all entries of a case", "entries of one field" and "newest per field".
    Index("ix_case_entries_case_field_time", "case_id", "field", "created_at"),
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
    Column("body", Text(), nullable=False),
    Column("prev_hash", String(), nullable=False),
    Column("record_hash", String(), nullable=False),
    # Queries filter on one of these and page by seq. Every index slows the append path, so
    # there is none for time ranges: those are served within a partner, case or subject.
    Index("ix_audit_log_partner_seq", "partner_id", "seq"),
    Index("ix_audit_log_case_seq", "case_id", "seq"),
    Index("ix_audit_log_subject_seq", "subject_pseudonym", "seq"),
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
    CheckConstraint("id = 1", name="ck_log_head_single_row"),
)
