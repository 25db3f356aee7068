"""Regie, intake and approach on cases; the case_events table of the partner's work surface.

Revision ID: 0003_regie_and_work_surface
Revises: 0002_persons

Adds to ``cases`` the approach, the intake state, the holders (and previous holders) of the
procesregie and the casusregie, and the closure category, each with a server default that
suits the rows already there:

- ``approach``: the case's ``case_type`` when that is one of the shipped approach ids (the
  old case types were approach names), else ``general``;
- ``intake``: ``pending`` - an existing case has no procesregie holder, so a process director
  of the ZVH accepts it once (CaseService.DecideIntake) to take its procesregie, after which
  invitations and phase changes work as before;
- the regie holders and ``closure_category``: empty (unassigned).

Creates ``case_events`` (one row per partner per event, no personal data), indexed for the
stream's read (partner, id) and for shredding a case's events (case_id).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_regie_and_work_surface"
down_revision = "0002_persons"
branch_labels = None
depends_on = None

# The approach ids of the shipped policy when this revision was written.
_APPROACHES = ("general", "code_rood", "drang_en_dwang", "verward_gedrag", "mensenhandel")
_TEXT_COLUMNS = (
    ("approach", "general"),
    ("intake", "pending"),
    ("procesregie_partner", ""),
    ("procesregie_user", ""),
    ("procesregie_prev_partner", ""),
    ("procesregie_prev_user", ""),
    ("casusregie_partner", ""),
    ("casusregie_user", ""),
    ("casusregie_prev_partner", ""),
    ("casusregie_prev_user", ""),
    ("closure_category", ""),
)


def upgrade() -> None:
    for name, default in _TEXT_COLUMNS:
        op.add_column(
            "cases",
            sa.Column(name, sa.String(), nullable=False, server_default=default),
        )
    cases = sa.table(
        "cases", sa.column("case_type", sa.String()), sa.column("approach", sa.String())
    )
    op.execute(
        cases.update()
        .where(cases.c.case_type.in_(_APPROACHES))
        .values(approach=cases.c.case_type)
    )
    op.create_table(
        "case_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("partner_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        # As gateway.store.tables.UTCDateTime stores it: timestamptz, naive UTC on SQLite.
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_case_events_partner_id", "case_events", ["partner_id", "id"])
    op.create_index("ix_case_events_case", "case_events", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_case_events_case", table_name="case_events")
    op.drop_index("ix_case_events_partner_id", table_name="case_events")
    op.drop_table("case_events")
    # SQLite drops columns only by rebuilding the table: batch mode does that there and plain
    # ALTER TABLE elsewhere.
    with op.batch_alter_table("cases") as batch:
        for name, _ in reversed(_TEXT_COLUMNS):
            batch.drop_column(name)
