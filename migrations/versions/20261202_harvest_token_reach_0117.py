"""harvest runs: whose token harvested, and what its listing could see

``harvest_runs.token_principal`` holds what ``GET /people/me`` said about the token's owner
(id, emails, display name, orgId, roles, whether an administrator) — or why it could not be
asked. ``harvest_runs.listing_reach`` holds what the run's meeting list could see: the sites
of the token and those listed, the hosts listed, what can be known of the token's scopes, and
the verdict (``organisation``, ``limited``, ``unconfirmed``) with its reasons in words. A
report's completeness is only as strong as this reach (``reporting.reach``). Both are empty for
runs of earlier versions, which did not ask.

Revision ID: 0117
Revises: 0116
Create Date: 2026-12-02 16:45:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0117"
down_revision: str | Sequence[str] | None = "0116"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "harvest_runs",
        sa.Column("token_principal", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "harvest_runs",
        sa.Column("listing_reach", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("harvest_runs", "listing_reach")
    op.drop_column("harvest_runs", "token_principal")
