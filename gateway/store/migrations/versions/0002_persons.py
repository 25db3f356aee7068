"""Persons of a case: table case_persons and case_entries.person_id, filled from the cases.

Until now a case was about one subject, named by ``cases.subject_pseudonym``. Every case
becomes a case with one person: role_in_case ``subject``, a new person id (``p_`` and 128
random bits in hex, like every id the broker makes), the case's subject pseudonym as the
person's pseudonym, identified by BSN, added by the registering partner when the case was
registered. Every entry keeps person_id '': an entry's ciphertext is bound to its person id
(gateway.crypto.envelope.field_aad), and these were encrypted without one, so moving them would
make them unreadable. The case file reads identity entries without a person as the case's
first person's (gateway.broker.casefile). Shredded cases get their person row too, with the
pseudonym only: their entries are gone.

The accountability log is not touched: its records keep naming the subject pseudonym, which
is the person's pseudonym, so the log still verifies and the access report still finds them.

``schema_info.version`` becomes 4: a v0.1.0 gateway started on the upgraded database refuses
it instead of using a schema it does not know. The revision itself is in alembic_version.

Revision ID: 0002_persons
Revises: 0001_v0_1_0
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002_persons"
down_revision = "0001_v0_1_0"
branch_labels = None
depends_on = None

# Cases per executemany, so a large database is not held in memory at once.
_BATCH = 1000
_ID_BYTES = 16


def upgrade() -> None:
    op.create_table(
        "case_persons",
        sa.Column(
            "case_id",
            sa.String(),
            sa.ForeignKey("cases.case_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("person_id", sa.String(), primary_key=True),
        sa.Column("role_in_case", sa.String(), nullable=False),
        sa.Column("pseudonym", sa.String(), nullable=False),
        sa.Column("bsn_pseudonym", sa.String(), nullable=True),
        sa.Column("identified_by", sa.String(), nullable=False),
        sa.Column("added_by", sa.String(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_by", sa.String(), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "identified_by IN ('bsn', 'name_and_birth', 'reference', 'unidentified')",
            name="ck_case_persons_identified_by",
        ),
    )
    op.create_index("ix_case_persons_pseudonym", "case_persons", ["pseudonym"])
    op.create_index("ix_case_persons_bsn_pseudonym", "case_persons", ["bsn_pseudonym"])
    # SQLite adds a column with a constant default in place; no table copy is needed.
    with op.batch_alter_table("case_entries") as batch:
        batch.add_column(
            sa.Column("person_id", sa.String(), nullable=False, server_default="")
        )
    _one_person_per_case()
    op.execute("UPDATE schema_info SET version = 4 WHERE id = 1")


def _one_person_per_case() -> None:
    bind = op.get_bind()
    add_person = sa.text(
        "INSERT INTO case_persons (case_id, person_id, role_in_case, pseudonym, bsn_pseudonym,"
        " identified_by, added_by, added_at) SELECT case_id, :person_id, 'subject',"
        " subject_pseudonym, NULL, 'bsn', registered_by, created_at FROM cases"
        " WHERE case_id = :case_id"
    )
    after = ""
    while True:
        # Keyset pages: the case ids are strings, compared the same way on both backends.
        case_ids = bind.execute(
            sa.text(
                "SELECT case_id FROM cases WHERE case_id > :after ORDER BY case_id LIMIT :n"
            ),
            {"after": after, "n": _BATCH},
        ).scalars().all()
        if not case_ids:
            return
        rows = [
            {"case_id": case_id, "person_id": "p_" + secrets.token_hex(_ID_BYTES)}
            for case_id in case_ids
        ]
        bind.execute(add_person, rows)
        after = case_ids[-1]


def downgrade() -> None:
    raise NotImplementedError("schema migrations go forward only; restore the backup")
