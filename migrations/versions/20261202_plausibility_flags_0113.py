"""plausibility checks: data-quality flags on stored items, and the check that refused a gap

``data_quality_flags`` holds the named flags the harvest's plausibility checks put on a stored
meeting, participant or invitee; they are replaced with the meeting's items, in the same
transaction. ``harvest_gaps.plausibility_check`` names the check that refused an item, so a
report can count refusals per check.

Revision ID: 0113
Revises: 0112
Create Date: 2026-12-02 04:15:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0113"
down_revision: str | Sequence[str] | None = "0112"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("harvest_gaps", sa.Column("plausibility_check", sa.Text(), nullable=True))
    op.create_table(
        "data_quality_flags",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("meeting_id", sa.Text(), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.Text(), nullable=True),
        sa.Column("check_name", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("harvest_run_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "subject_kind IN ('meeting', 'participant', 'invitee')",
            name=op.f("ck_data_quality_flags_subject_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.meeting_id"],
            name=op.f("fk_data_quality_flags_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["harvest_run_id"],
            ["harvest_runs.id"],
            name=op.f("fk_data_quality_flags_harvest_run_id_harvest_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_quality_flags")),
    )
    op.create_index(op.f("ix_data_quality_flags_meeting_id"), "data_quality_flags", ["meeting_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_data_quality_flags_meeting_id"), table_name="data_quality_flags")
    op.drop_table("data_quality_flags")
    op.drop_column("harvest_gaps", "plausibility_check")
