"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-24 20:32:46.160138+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "harvest_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("run_uuid", sa.Uuid(), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("operator", sa.Text(), nullable=False),
        sa.Column("hostname", sa.Text(), nullable=False),
        sa.Column("meetaudit_version", sa.Text(), nullable=False),
        sa.Column("api_base_url", sa.Text(), nullable=False),
        sa.Column("window_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parameters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("meetings_listed", sa.Integer(), nullable=False),
        sa.Column("meetings_complete", sa.Integer(), nullable=False),
        sa.Column("meetings_skipped", sa.Integer(), nullable=False),
        sa.Column("meetings_unsettled", sa.Integer(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("invitees", sa.Integer(), nullable=False),
        sa.Column("gaps", sa.Integer(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("rate_limit_wait_seconds", sa.Double(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'complete', 'incomplete', 'failed', 'interrupted')",
            name=op.f("ck_harvest_runs_status"),
        ),
        sa.CheckConstraint("window_to > window_from", name=op.f("ck_harvest_runs_window")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harvest_runs")),
        sa.UniqueConstraint("run_uuid", name=op.f("uq_harvest_runs_run_uuid")),
    )
    op.create_table(
        "report_runs",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("report_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generated_by", sa.Text(), nullable=False),
        sa.Column("meetaudit_version", sa.Text(), nullable=False),
        sa.Column("period_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("parameters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("harvest_run_ids", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("control_totals", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("output_path", sa.Text(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("file_bytes", sa.BigInteger(), nullable=False),
        sa.Column("signature_path", sa.Text(), nullable=True),
        sa.Column("prev_entry_sha256", sa.String(length=64), nullable=True),
        sa.Column("entry_sha256", sa.String(length=64), nullable=False),
        sa.CheckConstraint("seq > 0", name=op.f("ck_report_runs_seq_positive")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_report_runs")),
        sa.UniqueConstraint("entry_sha256", name=op.f("uq_report_runs_entry_sha256")),
        sa.UniqueConstraint("report_id", name=op.f("uq_report_runs_report_id")),
    )
    op.create_index(
        op.f("ix_report_runs_file_sha256"), "report_runs", ["file_sha256"], unique=False
    )
    op.create_table(
        "harvest_gaps",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("harvest_run_id", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.String(length=24), nullable=False),
        sa.Column("meeting_id", sa.Text(), nullable=True),
        sa.Column("window_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("tracking_id", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_run_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "scope IN ('meeting_list', 'participants', 'invitees', 'attendee_report', 'meeting')",
            name=op.f("ck_harvest_gaps_scope"),
        ),
        sa.ForeignKeyConstraint(
            ["harvest_run_id"],
            ["harvest_runs.id"],
            name=op.f("fk_harvest_gaps_harvest_run_id_harvest_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_run_id"],
            ["harvest_runs.id"],
            name=op.f("fk_harvest_gaps_resolved_by_run_id_harvest_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harvest_gaps")),
    )
    op.create_index(
        op.f("ix_harvest_gaps_harvest_run_id"), "harvest_gaps", ["harvest_run_id"], unique=False
    )
    op.create_index(
        "ix_harvest_gaps_meeting_unresolved",
        "harvest_gaps",
        ["meeting_id"],
        unique=False,
        postgresql_where="resolved_at IS NULL",
    )
    op.create_table(
        "meetings",
        sa.Column("meeting_id", sa.Text(), nullable=False),
        sa.Column("meeting_series_id", sa.Text(), nullable=True),
        sa.Column("scheduled_meeting_id", sa.Text(), nullable=True),
        sa.Column("meeting_number", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("meeting_type", sa.Text(), nullable=True),
        sa.Column("scheduled_type", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("timezone", sa.Text(), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("host_user_id", sa.Text(), nullable=True),
        sa.Column("host_display_name", sa.Text(), nullable=True),
        sa.Column("host_email", sa.Text(), nullable=True),
        sa.Column("site_url", sa.Text(), nullable=True),
        sa.Column("web_link", sa.Text(), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("first_seen_run_id", sa.BigInteger(), nullable=True),
        sa.Column("last_listed_run_id", sa.BigInteger(), nullable=True),
        sa.Column("complete_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("complete_run_id", sa.BigInteger(), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=True),
        sa.Column("participant_count", sa.Integer(), nullable=True),
        sa.Column("invitee_count", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["complete_run_id"],
            ["harvest_runs.id"],
            name=op.f("fk_meetings_complete_run_id_harvest_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["first_seen_run_id"],
            ["harvest_runs.id"],
            name=op.f("fk_meetings_first_seen_run_id_harvest_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["last_listed_run_id"],
            ["harvest_runs.id"],
            name=op.f("fk_meetings_last_listed_run_id_harvest_runs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("meeting_id", name=op.f("pk_meetings")),
    )
    op.create_index(
        op.f("ix_meetings_meeting_series_id"), "meetings", ["meeting_series_id"], unique=False
    )
    op.create_index("ix_meetings_start_at", "meetings", ["start_at"], unique=False)
    op.create_table(
        "attendee_reports",
        sa.Column("meeting_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("email_norm", sa.Text(), nullable=True),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("invited", sa.Boolean(), nullable=True),
        sa.Column("registered", sa.Boolean(), nullable=True),
        sa.Column("participant_type", sa.Text(), nullable=True),
        sa.Column("ip_address", sa.Text(), nullable=True),
        sa.Column("client_agent", sa.Text(), nullable=True),
        sa.Column("company", sa.Text(), nullable=True),
        sa.Column("duration_minutes", sa.Double(), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.meeting_id"],
            name=op.f("fk_attendee_reports_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("meeting_id", "seq", name=op.f("pk_attendee_reports")),
    )
    op.create_table(
        "invitees",
        sa.Column("meeting_id", sa.Text(), nullable=False),
        sa.Column("invitee_id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("email_norm", sa.Text(), nullable=True),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("co_host", sa.Boolean(), nullable=True),
        sa.Column("panelist", sa.Boolean(), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.meeting_id"],
            name=op.f("fk_invitees_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("meeting_id", "invitee_id", name=op.f("pk_invitees")),
    )
    op.create_index("ix_invitees_email_norm", "invitees", ["email_norm"], unique=False)
    op.create_table(
        "meeting_revisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("meeting_id", sa.Text(), nullable=False),
        sa.Column("harvest_run_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("previous_sha256", sa.String(length=64), nullable=True),
        sa.Column("new_sha256", sa.String(length=64), nullable=False),
        sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("previous_items", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["harvest_run_id"],
            ["harvest_runs.id"],
            name=op.f("fk_meeting_revisions_harvest_run_id_harvest_runs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.meeting_id"],
            name=op.f("fk_meeting_revisions_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_revisions")),
    )
    op.create_index(
        op.f("ix_meeting_revisions_meeting_id"), "meeting_revisions", ["meeting_id"], unique=False
    )
    op.create_table(
        "participants",
        sa.Column("participant_id", sa.Text(), nullable=False),
        sa.Column("meeting_id", sa.Text(), nullable=False),
        sa.Column("org_id", sa.Text(), nullable=True),
        sa.Column("host", sa.Boolean(), nullable=True),
        sa.Column("co_host", sa.Boolean(), nullable=True),
        sa.Column("space_moderator", sa.Boolean(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("email_norm", sa.Text(), nullable=True),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("invitee", sa.Boolean(), nullable=True),
        sa.Column("muted", sa.Boolean(), nullable=True),
        sa.Column("meeting_start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("video", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("breakout_session_id", sa.Text(), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("site_url", sa.Text(), nullable=True),
        sa.Column("host_email", sa.Text(), nullable=True),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.meeting_id"],
            name=op.f("fk_participants_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("participant_id", name=op.f("pk_participants")),
    )
    op.create_index("ix_participants_email_norm", "participants", ["email_norm"], unique=False)
    op.create_index(
        op.f("ix_participants_meeting_id"), "participants", ["meeting_id"], unique=False
    )
    op.create_table(
        "breakout_attendance",
        sa.Column("participant_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Text(), nullable=False),
        sa.Column("breakout_session_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.participant_id"],
            name=op.f("fk_breakout_attendance_participant_id_participants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("participant_id", "seq", name=op.f("pk_breakout_attendance")),
    )
    op.create_index(
        op.f("ix_breakout_attendance_meeting_id"),
        "breakout_attendance",
        ["meeting_id"],
        unique=False,
    )
    op.create_table(
        "participant_devices",
        sa.Column("participant_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Text(), nullable=False),
        sa.Column("correlation_id", sa.Text(), nullable=True),
        sa.Column("device_type", sa.Text(), nullable=True),
        sa.Column("audio_type", sa.Text(), nullable=True),
        sa.Column("call_type", sa.Text(), nullable=True),
        sa.Column("phone_number", sa.Text(), nullable=True),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Double(), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.participant_id"],
            name=op.f("fk_participant_devices_participant_id_participants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("participant_id", "seq", name=op.f("pk_participant_devices")),
    )
    op.create_index(
        op.f("ix_participant_devices_meeting_id"),
        "participant_devices",
        ["meeting_id"],
        unique=False,
    )

    # The report ledger is append-only: the database itself refuses to change or remove an
    # entry, so tampering needs a superuser and still breaks the hash chain.
    op.execute(
        """
        CREATE FUNCTION report_runs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the report ledger is append-only: % on report_runs refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER report_runs_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON report_runs FOR EACH STATEMENT EXECUTE FUNCTION report_runs_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS report_runs_append_only ON report_runs")
    op.execute("DROP FUNCTION IF EXISTS report_runs_append_only()")
    op.drop_index(op.f("ix_participant_devices_meeting_id"), table_name="participant_devices")
    op.drop_table("participant_devices")
    op.drop_index(op.f("ix_breakout_attendance_meeting_id"), table_name="breakout_attendance")
    op.drop_table("breakout_attendance")
    op.drop_index(op.f("ix_participants_meeting_id"), table_name="participants")
    op.drop_index("ix_participants_email_norm", table_name="participants")
    op.drop_table("participants")
    op.drop_index(op.f("ix_meeting_revisions_meeting_id"), table_name="meeting_revisions")
    op.drop_table("meeting_revisions")
    op.drop_index("ix_invitees_email_norm", table_name="invitees")
    op.drop_table("invitees")
    op.drop_table("attendee_reports")
    op.drop_index("ix_meetings_start_at", table_name="meetings")
    op.drop_index(op.f("ix_meetings_meeting_series_id"), table_name="meetings")
    op.drop_table("meetings")
    op.drop_index(
        "ix_harvest_gaps_meeting_unresolved",
        table_name="harvest_gaps",
        postgresql_where="resolved_at IS NULL",
    )
    op.drop_index(op.f("ix_harvest_gaps_harvest_run_id"), table_name="harvest_gaps")
    op.drop_table("harvest_gaps")
    op.drop_index(op.f("ix_report_runs_file_sha256"), table_name="report_runs")
    op.drop_table("report_runs")
    op.drop_table("harvest_runs")
