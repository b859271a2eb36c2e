"""index for the orgIds Webex gave an email: a partial index of the rows that carry one

Reports and investigate answers classify a person by the orgId Webex gave *for that email* in
the period (``KnownOrgIds``). Answers about many people (``investigate with``: thousands of
co-attendees) look those orgIds up for every person whose own rows carry none; through the
email index that read every row of every such person (guests and callers are most rows of a
finished meeting) only to find no orgId. This index holds only the rows that carry an orgId,
so a person without one costs one index probe.

Revision ID: 0115
Revises: 0114
Create Date: 2026-12-02 17:00:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0115"
down_revision: str | Sequence[str] | None = "0114"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_participants_email_org_id", "participants", ["email_norm", "org_id"],
        postgresql_where="org_id IS NOT NULL",
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_participants_email_org_id", table_name="participants")
