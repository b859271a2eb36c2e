"""investigation cases and the append-only, hash-chained access log

Every question an investigator asks of the stored records is recorded (who, when, which case,
the question and its parameters, how many rows, which format) in ``access_log``, which the
database refuses to change or empty, as it does for the report ledger.

Revision ID: 0109
Revises: 0002
Create Date: 2026-12-02 04:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0109"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "investigation_cases",
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.Text(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Text(), nullable=True),
        sa.Column("close_note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "length(btrim(ref)) > 0", name=op.f("ck_investigation_cases_ref_not_empty")
        ),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_investigation_cases")),
    )
    op.create_table(
        "access_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator", sa.Text(), nullable=False),
        sa.Column("case_ref", sa.Text(), nullable=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("parameters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("rows_returned", sa.Integer(), nullable=False),
        sa.Column("output_format", sa.Text(), nullable=False),
        sa.Column("meetaudit_version", sa.Text(), nullable=False),
        sa.Column("prev_entry_sha256", sa.String(length=64), nullable=True),
        sa.Column("entry_sha256", sa.String(length=64), nullable=False),
        sa.CheckConstraint("seq > 0", name=op.f("ck_access_log_seq_positive")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_access_log")),
        sa.UniqueConstraint("entry_sha256", name=op.f("uq_access_log_entry_sha256")),
    )
    op.create_index(op.f("ix_access_log_case_ref"), "access_log", ["case_ref"], unique=False)
    # Append-only, as the report ledger: a look at personal data, once recorded, stays recorded.
    op.execute(
        """
        CREATE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the access log is append-only: % on access_log refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON access_log FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS access_log_append_only ON access_log")
    op.execute("DROP FUNCTION IF EXISTS access_log_append_only()")
    op.drop_index(op.f("ix_access_log_case_ref"), table_name="access_log")
    op.drop_table("access_log")
    op.drop_table("investigation_cases")
