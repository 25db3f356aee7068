"""The schema as release v0.1.0 created it (schema generation 3): the baseline.

A database made by v0.1.0 has these tables, ``schema_info.version`` 3 and no
``alembic_version``; ``gateway.store.migrations.schema_status`` recognises it as being at this
revision, and ``ketenpoort db upgrade`` stamps it so before running the later revisions.

The tables below are a frozen copy of v0.1.0's ``gateway/store/tables.py`` (times as the
``timestamptz``/``DATETIME`` its UTCDateTime stores), created the way v0.1.0 created them
(``create_all``), so the DDL is the same, index names included. Never change this file:
change the schema in a new revision.

Revision ID: 0001_v0_1_0
Revises: (none)
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

revision = "0001_v0_1_0"
down_revision = None
branch_labels = None
depends_on = None

# Of gateway.store.audit_event: the previous hash of the first record.
_GENESIS_HASH = "0" * 64
_TIME = DateTime(timezone=True)
_SEQ = BigInteger().with_variant(Integer(), "sqlite")

_V010 = MetaData()

cases = Table(
    "cases",
    _V010,
    Column("case_id", String(), primary_key=True),
    Column("subject_pseudonym", String(), nullable=False, index=True),
    Column("case_type", String(), nullable=False),
    Column("phase", String(), nullable=False),
    Column("registered_by", String(), nullable=False),
    Column("created_at", _TIME, nullable=False),
    Column("closed_at", _TIME, nullable=True),
    Column("wrapped_data_key", LargeBinary(), nullable=False),
    Column("shredded_at", _TIME, nullable=True),
)

case_participants = Table(
    "case_participants",
    _V010,
    Column(
        "case_id",
        String(),
        ForeignKey("cases.case_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("partner_id", String(), primary_key=True),
    Column("role_in_case", String(), nullable=False),
    Column("invited_by", String(), nullable=False),
    Column("joined_at", _TIME, nullable=False),
    CheckConstraint("role_in_case IN ('registrant', 'invited')", name="ck_case_participants_role"),
)

case_entries = Table(
    "case_entries",
    _V010,
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
    Column("created_at", _TIME, nullable=False),
    Index("ix_case_entries_case_field_time", "case_id", "field", "created_at"),
)

audit_log = Table(
    "audit_log",
    _V010,
    Column("seq", _SEQ, primary_key=True, autoincrement=False),
    Column("recorded_at", _TIME, nullable=False),
    Column("occurred_at", _TIME, nullable=False),
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
    Index("ix_audit_log_partner_seq", "partner_id", "seq"),
    Index("ix_audit_log_case_seq", "case_id", "seq"),
    Index("ix_audit_log_subject_seq", "subject_pseudonym", "seq"),
    Index(
        "ix_audit_log_break_glass_seq",
        "seq",
        sqlite_where=text("break_glass"),
        postgresql_where=text("break_glass"),
    ),
)

log_head = Table(
    "log_head",
    _V010,
    Column("id", Integer(), primary_key=True, autoincrement=False),
    Column("last_seq", _SEQ, nullable=False),
    Column("last_hash", String(), nullable=False),
    Column("frontier", Text(), nullable=False, server_default=""),
    Column("checkpoint_size", _SEQ, nullable=False, server_default="0"),
    Column("checkpoint_at", _TIME, nullable=True),
    CheckConstraint("id = 1", name="ck_log_head_single_row"),
)

log_checkpoints = Table(
    "log_checkpoints",
    _V010,
    Column("tree_size", _SEQ, primary_key=True, autoincrement=False),
    Column("root_hash", String(), nullable=False),
    Column("created_at", _TIME, nullable=False),
    Column("key_id", String(), nullable=False),
    Column("note", Text(), nullable=False),
)

log_cosignatures = Table(
    "log_cosignatures",
    _V010,
    Column("tree_size", _SEQ, primary_key=True, autoincrement=False),
    Column("witness", String(), primary_key=True),
    Column("cosigned_at", _TIME, nullable=False),
    Column("key_id", String(), nullable=False),
    Column("note", Text(), nullable=False),
)

merkle_tiles = Table(
    "merkle_tiles",
    _V010,
    Column("level", Integer(), primary_key=True, autoincrement=False),
    Column("idx", BigInteger(), primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(), nullable=False),
)

confidentiality_holds = Table(
    "confidentiality_holds",
    _V010,
    Column("hold_id", String(), primary_key=True),
    Column("subject_pseudonym", String(), nullable=False, index=True),
    Column("placed_by", String(), nullable=False),
    Column("case_id", String(), nullable=False),
    Column("reason_ciphertext", LargeBinary(), nullable=False),
    Column("reason_key_id", String(), nullable=False),
    Column("placed_at", _TIME, nullable=False),
    Column("until", _TIME, nullable=False),
    Column("lifted_at", _TIME, nullable=True),
    Column("record_seq", _SEQ, nullable=False),
)

break_glass_reviews = Table(
    "break_glass_reviews",
    _V010,
    Column("disclosure_seq", _SEQ, primary_key=True, autoincrement=False),
    Column("verdict", String(), nullable=False),
    Column("comment_ciphertext", LargeBinary(), nullable=False),
    Column("comment_key_id", String(), nullable=False),
    Column("reviewed_by", String(), nullable=False),
    Column("reviewed_at", _TIME, nullable=False),
    Column("review_seq", _SEQ, nullable=False),
    CheckConstraint(
        "verdict IN ('justified', 'not_justified')", name="ck_break_glass_reviews_verdict"
    ),
)

text_keys = Table(
    "text_keys",
    _V010,
    Column("key_id", String(), primary_key=True),
    Column("text_class", String(), nullable=False),
    Column("case_id", String(), nullable=False, index=True),
    Column("wrapped_data_key", LargeBinary(), nullable=False),
    Column("created_at", _TIME, nullable=False),
    Column("shredded_at", _TIME, nullable=True),
)

revocations = Table(
    "revocations",
    _V010,
    Column("id", _SEQ, primary_key=True, autoincrement=True),
    Column("partner_id", String(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("subject", String(), nullable=False),
    Column("revoked_at", _TIME, nullable=False),
    Index("ix_revocations_subject", "kind", "partner_id", "subject", unique=True),
    CheckConstraint(
        "kind IN ('partner', 'certificate', 'key')", name="ck_revocations_kind"
    ),
)

token_uses = Table(
    "token_uses",
    _V010,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("expires_at", _TIME, nullable=False, index=True),
)

request_ids = Table(
    "request_ids",
    _V010,
    Column("partner_id", String(), primary_key=True),
    Column("request_id", String(), primary_key=True),
    Column("operation", String(), nullable=False),
    Column("content_digest", LargeBinary(32), nullable=False),
    Column("case_id", String(), nullable=False),
    Column("entry_id", String(), nullable=False),
    Column("created_at", _TIME, nullable=False, index=True),
)

schema_info = Table(
    "schema_info",
    _V010,
    Column("id", Integer(), primary_key=True, autoincrement=False),
    Column("version", Integer(), nullable=False),
    CheckConstraint("id = 1", name="ck_schema_info_single_row"),
)


def upgrade() -> None:
    bind = op.get_bind()
    _V010.create_all(bind)
    op.bulk_insert(log_head, [{"id": 1, "last_seq": 0, "last_hash": _GENESIS_HASH}])
    op.bulk_insert(schema_info, [{"id": 1, "version": 3}])
    if bind.dialect.name == "postgresql":
        # As v0.1.0 did: lz4 for log bodies where the server has it.
        savepoint = bind.begin_nested()
        try:
            bind.execute(text("ALTER TABLE audit_log ALTER COLUMN body SET COMPRESSION lz4"))
        except SQLAlchemyError:
            savepoint.rollback()
        else:
            savepoint.commit()


def downgrade() -> None:
    raise NotImplementedError("schema migrations go forward only; restore the backup")
