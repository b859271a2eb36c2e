"""one open gap per failing thing; remember when a meeting's attendee report was read

A meeting (or listing window) refused on every run used to collect one open gap per run, so a
report listed it once per attempt. Now a new gap supersedes the open gaps of earlier runs for the
same meeting and scope, or the same listing window: they stay as history, only the newest is
open. ``meetings.attendee_report_at`` records when the attendee report was read for a meeting, so
a run can add the report to meetings stored before the token could read it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 23:20:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "harvest_gaps", sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("harvest_gaps", sa.Column("superseded_by_gap_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_harvest_gaps_superseded_by_gap_id_harvest_gaps"),
        "harvest_gaps",
        "harvest_gaps",
        ["superseded_by_gap_id"],
        ["id"],
        ondelete="SET NULL",
    )
    # Existing duplicates: every open gap but the newest of its meeting and scope (or of its
    # listing window) is superseded by that newest one, as if the rule had always applied.
    op.execute(
        """
        WITH ranked AS (
            SELECT id, occurred_at,
                   first_value(id) OVER w AS newest_id,
                   first_value(occurred_at) OVER w AS newest_at
            FROM harvest_gaps
            WHERE resolved_at IS NULL
            WINDOW w AS (
                PARTITION BY scope, meeting_id,
                             CASE WHEN meeting_id IS NULL THEN window_from END,
                             CASE WHEN meeting_id IS NULL THEN window_to END
                ORDER BY occurred_at DESC, id DESC)
        )
        UPDATE harvest_gaps g
        SET superseded_at = r.newest_at, superseded_by_gap_id = r.newest_id
        FROM ranked r
        WHERE g.id = r.id AND r.id <> r.newest_id
        """
    )
    op.drop_index(
        "ix_harvest_gaps_meeting_unresolved",
        table_name="harvest_gaps",
        postgresql_where="resolved_at IS NULL",
    )
    op.create_index(
        "ix_harvest_gaps_meeting_unresolved",
        "harvest_gaps",
        ["meeting_id"],
        unique=False,
        postgresql_where="resolved_at IS NULL AND superseded_at IS NULL",
    )
    op.add_column(
        "meetings", sa.Column("attendee_report_at", sa.DateTime(timezone=True), nullable=True)
    )
    # Meetings stored with attendee-report rows were read when they were completed.
    op.execute(
        """
        UPDATE meetings m SET attendee_report_at = m.complete_at
        WHERE m.complete_at IS NOT NULL
          AND EXISTS (SELECT 1 FROM attendee_reports a WHERE a.meeting_id = m.meeting_id)
        """
    )


def downgrade() -> None:
    op.drop_column("meetings", "attendee_report_at")
    op.drop_index(
        "ix_harvest_gaps_meeting_unresolved",
        table_name="harvest_gaps",
        postgresql_where="resolved_at IS NULL AND superseded_at IS NULL",
    )
    op.create_index(
        "ix_harvest_gaps_meeting_unresolved",
        "harvest_gaps",
        ["meeting_id"],
        unique=False,
        postgresql_where="resolved_at IS NULL",
    )
    op.drop_constraint(
        op.f("fk_harvest_gaps_superseded_by_gap_id_harvest_gaps"),
        "harvest_gaps",
        type_="foreignkey",
    )
    op.drop_column("harvest_gaps", "superseded_by_gap_id")
    op.drop_column("harvest_gaps", "superseded_at")
