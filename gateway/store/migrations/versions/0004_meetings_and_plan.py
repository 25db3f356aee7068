"""Case meetings, their partners and the plan of approach's actions; the closure category.

Revision ID: 0004_meetings_and_plan
Revises: 0003_regie_and_work_surface

Adds the tables gateway/store/tables.py defines as ``case_meetings``,
``case_meeting_partners`` and ``plan_actions`` (CasePlanService, docs/case-plan.md), and
``cases.closure_category`` when the revision before did not add it already. No data moves:
the new tables start empty, and a case closed before has no category.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_meetings_and_plan"
down_revision = "0003_regie_and_work_surface"
branch_labels = None
depends_on = None


def _moment() -> sa.DateTime:
    # As tables.UTCDateTime: timestamptz on PostgreSQL, naive UTC on SQLite.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    existing = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("cases")}
    if "closure_category" not in existing:
        with op.batch_alter_table("cases") as batch:
            batch.add_column(sa.Column("closure_category", sa.String(), nullable=True))

    op.create_table(
        "case_meetings",
        sa.Column("meeting_id", sa.String(), primary_key=True),
        sa.Column(
            "case_id",
            sa.String(),
            sa.ForeignKey("cases.case_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("scheduled_at", _moment(), nullable=False),
        sa.Column("chair_partner", sa.String(), nullable=False),
        sa.Column("planned_by", sa.String(), nullable=False),
        sa.Column("planned_at", _moment(), nullable=False),
        sa.Column("recorded_by", sa.String(), nullable=True),
        sa.Column("recorded_at", _moment(), nullable=True),
        sa.Column("decisions_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("minutes_entry_id", sa.String(), nullable=True),
        sa.Column("minutes_classification", sa.String(), nullable=True),
    )
    op.create_index("ix_case_meetings_case_id", "case_meetings", ["case_id"])

    op.create_table(
        "case_meeting_partners",
        sa.Column(
            "meeting_id",
            sa.String(),
            sa.ForeignKey("case_meetings.meeting_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("partner_id", sa.String(), primary_key=True),
        sa.Column("invited", sa.Boolean(), nullable=False),
        sa.Column("attended", sa.Boolean(), nullable=False),
    )

    op.create_table(
        "plan_actions",
        sa.Column("action_id", sa.String(), primary_key=True),
        sa.Column(
            "case_id",
            sa.String(),
            sa.ForeignKey("cases.case_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("owner_partner", sa.String(), nullable=False),
        sa.Column("description_entry_id", sa.String(), nullable=False),
        sa.Column("person_id", sa.String(), nullable=False, server_default=""),
        sa.Column("deadline", _moment(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("note_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", _moment(), nullable=False),
        sa.Column("updated_by", sa.String(), nullable=False),
        sa.Column("updated_at", _moment(), nullable=False),
        sa.Column("due_notified_at", _moment(), nullable=True),
        sa.Column("overdue_notified_at", _moment(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'in_progress', 'done', 'cancelled')",
            name="ck_plan_actions_status",
        ),
    )
    op.create_index("ix_plan_actions_case_id", "plan_actions", ["case_id"])
    op.create_index("ix_plan_actions_status_deadline", "plan_actions", ["status", "deadline"])


def downgrade() -> None:
    op.drop_index("ix_plan_actions_status_deadline", table_name="plan_actions")
    op.drop_index("ix_plan_actions_case_id", table_name="plan_actions")
    op.drop_table("plan_actions")
    op.drop_table("case_meeting_partners")
    op.drop_index("ix_case_meetings_case_id", table_name="case_meetings")
    op.drop_table("case_meetings")
    # cases.closure_category stays: revision 0003 owns it where it added it, and a category
    # already recorded is kept rather than dropped by a downgrade.
