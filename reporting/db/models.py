"""The schema of the whole product, as typed SQLAlchemy 2 models.

Webex ids are the natural keys (primary keys, so a re-harvest updates a row instead of adding
one). Every harvested item keeps the API's own JSON in ``raw`` (JSONB), so a field the model does
not map is never lost; secrets the API returns (meeting ``password``, ``hostKey``...) are removed
before anything is stored. Every datetime is ``timestamptz``. Constraint names follow
``NAMING_CONVENTION`` so Alembic migrations can name them predictably.

Tables, in the order data flows:
    harvest_runs        one row per ``meetaudit harvest``: who, when, window, parameters, counts,
                        whose token and what its listing could see
    harvest_gaps        what a run could not fetch: scope, meeting, HTTP status, trackingId, reason
    meetings            ended meeting instances; ``complete_at`` marks participants+invitees stored
    participants        every field of the spec's ``Participant``
    participant_devices one row per join session (``Device``)
    breakout_attendance one row per ``breakoutSessionsAttended`` item
    invitees            ``GetInviteeObject`` per meeting
    attendee_reports    optional enrichment from ``/meetingReports/attendees``
    data_quality_flags  plausibility flags on stored meetings, participants and invitees
    meeting_revisions   history: what changed when a complete meeting was harvested again
    report_runs         the append-only report ledger, hash-chained
    investigation_cases why personal data is looked at: one row per case
    access_log          the append-only, hash-chained record of every question answered
    web_users           local accounts of the web console, with their role
    web_sessions        signed-in browsers of the console (hash of the cookie only)
    jobs                background jobs of the console, claimed by any instance
    web_logins          single sign-ons under way (state, nonce, PKCE verifier)
    web_api_tokens      personal API tokens for scripts (hash only)
    view_settings       the organisation's own domains and orgIds, as the analysts' SQL views use them
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Timestamp = DateTime(timezone=True)

#: Indexes on expressions that the migrations own (0112: investigations' look-ups through
#: ``meetaudit_fold``, trigrams where the server has ``pg_trgm``, a phone number's reversed
#: digits). Alembic cannot compare expression indexes, and the trigram ones exist only where
#: ``pg_trgm`` does, so ``migrations/env.py`` leaves these names out of its comparison.
SEARCH_INDEXES = frozenset({
    "ix_meetings_host_email_norm", "ix_meetings_id_prefix",
    "ix_participant_devices_correlation_id", "ix_participant_devices_device_type",
    "ix_participant_devices_phone_digits", "ix_participants_email_trgm",
    "ix_participants_name_trgm", "ix_meetings_title_trgm", "ix_meetings_host_email_trgm",
    "ix_meetings_host_name_trgm",
})  # fmt: skip


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention and the JSONB type map."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSONB,
        list[Any]: JSONB,
        dt.datetime: Timestamp,
    }


HARVEST_STATUSES = ("running", "complete", "incomplete", "failed", "interrupted")


class HarvestRun(Base):
    """One run of the harvester: the evidence of where the stored records came from."""

    __tablename__ = "harvest_runs"
    __table_args__ = (
        CheckConstraint(f"status IN {HARVEST_STATUSES!r}", name="status"),
        CheckConstraint("window_to > window_from", name="window"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_uuid: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    started_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[dt.datetime | None]
    operator: Mapped[str] = mapped_column(Text)
    hostname: Mapped[str] = mapped_column(Text)
    meetaudit_version: Mapped[str] = mapped_column(Text)
    api_base_url: Mapped[str] = mapped_column(Text)
    window_from: Mapped[dt.datetime]
    window_to: Mapped[dt.datetime]
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="running")
    meetings_listed: Mapped[int] = mapped_column(default=0)
    meetings_complete: Mapped[int] = mapped_column(default=0)
    meetings_skipped: Mapped[int] = mapped_column(default=0)
    meetings_unsettled: Mapped[int] = mapped_column(default=0)
    participants: Mapped[int] = mapped_column(default=0)
    devices: Mapped[int] = mapped_column(default=0)
    invitees: Mapped[int] = mapped_column(default=0)
    gaps: Mapped[int] = mapped_column(default=0)
    requests: Mapped[int] = mapped_column(default=0)
    retries: Mapped[int] = mapped_column(default=0)
    rate_limit_wait_seconds: Mapped[float] = mapped_column(Double, default=0.0)
    error: Mapped[str | None] = mapped_column(Text)
    # Whose token harvested (GET /people/me), and what the run's listing could see, with the
    # verdict the report reads (reporting.reach). Empty: a run of an earlier version.
    token_principal: Mapped[dict[str, Any] | None]
    listing_reach: Mapped[dict[str, Any] | None]


GAP_SCOPES = ("meeting_list", "participants", "invitees", "attendee_report", "meeting")


class HarvestGap(Base):
    """Something a harvest run could not fetch; a report lists unresolved gaps of its period."""

    __tablename__ = "harvest_gaps"
    __table_args__ = (
        CheckConstraint(f"scope IN {GAP_SCOPES!r}", name="scope"),
        Index(
            "ix_harvest_gaps_meeting_unresolved",
            "meeting_id",
            postgresql_where="resolved_at IS NULL AND superseded_at IS NULL",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    harvest_run_id: Mapped[int] = mapped_column(
        ForeignKey("harvest_runs.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(24))
    # Not a foreign key: a gap may name a meeting whose listing itself failed.
    meeting_id: Mapped[str | None] = mapped_column(Text)
    window_from: Mapped[dt.datetime | None]
    window_to: Mapped[dt.datetime | None]
    url: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None]
    tracking_id: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    resolved_at: Mapped[dt.datetime | None]
    resolved_by_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("harvest_runs.id", ondelete="SET NULL")
    )
    # A later run failed on the same thing again and recorded its own gap: this one stays as the
    # history of that earlier attempt, but only the newest is open (one line per meeting in a
    # report, however many runs were refused).
    superseded_at: Mapped[dt.datetime | None]
    superseded_by_gap_id: Mapped[int | None] = mapped_column(
        ForeignKey("harvest_gaps.id", ondelete="SET NULL")
    )
    # The plausibility check that refused the item (``reporting.webex.plausibility``), if any.
    plausibility_check: Mapped[str | None] = mapped_column(Text)


class Meeting(Base):
    """An ended meeting instance (``MeetingObjectForListMeeting``)."""

    __tablename__ = "meetings"
    __table_args__ = (Index("ix_meetings_start_at", "start_at"),)

    meeting_id: Mapped[str] = mapped_column(Text, primary_key=True)
    meeting_series_id: Mapped[str | None] = mapped_column(Text, index=True)
    scheduled_meeting_id: Mapped[str | None] = mapped_column(Text)
    meeting_number: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    meeting_type: Mapped[str | None] = mapped_column(Text)
    scheduled_type: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str | None] = mapped_column(Text)
    start_at: Mapped[dt.datetime | None]
    end_at: Mapped[dt.datetime | None]
    host_user_id: Mapped[str | None] = mapped_column(Text)
    host_display_name: Mapped[str | None] = mapped_column(Text)
    host_email: Mapped[str | None] = mapped_column(Text)
    site_url: Mapped[str | None] = mapped_column(Text)
    web_link: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[dict[str, Any]]
    first_seen_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("harvest_runs.id", ondelete="SET NULL")
    )
    last_listed_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("harvest_runs.id", ondelete="SET NULL")
    )
    # Set, in the same transaction as the rows, when participants and invitees are all stored.
    complete_at: Mapped[dt.datetime | None]
    complete_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("harvest_runs.id", ondelete="SET NULL")
    )
    # SHA-256 over the stored participant and invitee items: tells a real change from a re-fetch.
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    # When the attendee report was last read for this meeting (its rows, possibly none, are in
    # ``attendee_reports``); NULL while it has never been read, so a later run can add it.
    attendee_report_at: Mapped[dt.datetime | None]
    participant_count: Mapped[int | None]
    invitee_count: Mapped[int | None]

    participants: Mapped[list[Participant]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan", passive_deletes=True
    )
    invitees: Mapped[list[Invitee]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan", passive_deletes=True
    )


class Participant(Base):
    """Someone who joined (or waited in the lobby of) a meeting: the spec's ``Participant``."""

    __tablename__ = "participants"
    __table_args__ = (
        Index("ix_participants_email_norm", "email_norm"),
        # The orgIds Webex gave an email (KnownOrgIds), without reading the rows that have none.
        Index("ix_participants_email_org_id", "email_norm", "org_id",
              postgresql_where="org_id IS NOT NULL"),
    )  # fmt: skip

    participant_id: Mapped[str] = mapped_column(Text, primary_key=True)
    meeting_id: Mapped[str] = mapped_column(
        ForeignKey("meetings.meeting_id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[str | None] = mapped_column(Text)
    host: Mapped[bool | None]
    co_host: Mapped[bool | None]
    space_moderator: Mapped[bool | None]
    email: Mapped[str | None] = mapped_column(Text)
    # Lower-cased, trimmed: the key for matching invitees to attendees.
    email_norm: Mapped[str | None] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    invitee: Mapped[bool | None]
    muted: Mapped[bool | None]
    meeting_start_time: Mapped[dt.datetime | None]
    video: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(Text)
    breakout_session_id: Mapped[str | None] = mapped_column(Text)
    joined_at: Mapped[dt.datetime | None]
    left_at: Mapped[dt.datetime | None]
    site_url: Mapped[str | None] = mapped_column(Text)
    host_email: Mapped[str | None] = mapped_column(Text)
    source_id: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[dict[str, Any]]

    meeting: Mapped[Meeting] = relationship(back_populates="participants")
    devices: Mapped[list[ParticipantDevice]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="ParticipantDevice.seq"
    )


class ParticipantDevice(Base):
    """One join session of a participant (the spec's ``Device``); duration lives here."""

    __tablename__ = "participant_devices"

    participant_id: Mapped[str] = mapped_column(
        ForeignKey("participants.participant_id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[str] = mapped_column(Text, index=True)
    correlation_id: Mapped[str | None] = mapped_column(Text)
    device_type: Mapped[str | None] = mapped_column(Text)
    audio_type: Mapped[str | None] = mapped_column(Text)
    call_type: Mapped[str | None] = mapped_column(Text)
    phone_number: Mapped[str | None] = mapped_column(Text)
    joined_at: Mapped[dt.datetime | None]
    left_at: Mapped[dt.datetime | None]
    duration_seconds: Mapped[float | None] = mapped_column(Double)
    raw: Mapped[dict[str, Any]]


class BreakoutAttendance(Base):
    """One breakout session a participant attended (``BreakoutSessionAttended``)."""

    __tablename__ = "breakout_attendance"

    participant_id: Mapped[str] = mapped_column(
        ForeignKey("participants.participant_id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[str] = mapped_column(Text, index=True)
    breakout_session_id: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    joined_at: Mapped[dt.datetime | None]
    left_at: Mapped[dt.datetime | None]
    raw: Mapped[dict[str, Any]]


class Invitee(Base):
    """Someone invited to a meeting (``GetInviteeObject``)."""

    __tablename__ = "invitees"
    __table_args__ = (Index("ix_invitees_email_norm", "email_norm"),)

    # Invitee ids may be the series' and repeat across its instances: the key is the pair.
    meeting_id: Mapped[str] = mapped_column(
        ForeignKey("meetings.meeting_id", ondelete="CASCADE"), primary_key=True
    )
    invitee_id: Mapped[str] = mapped_column(Text, primary_key=True)
    email: Mapped[str | None] = mapped_column(Text)
    email_norm: Mapped[str | None] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    co_host: Mapped[bool | None]
    panelist: Mapped[bool | None]
    raw: Mapped[dict[str, Any]]

    meeting: Mapped[Meeting] = relationship(back_populates="invitees")


class AttendeeReport(Base):
    """Optional enrichment from ``/meetingReports/attendees`` (needs an admin report scope)."""

    __tablename__ = "attendee_reports"

    meeting_id: Mapped[str] = mapped_column(
        ForeignKey("meetings.meeting_id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    email_norm: Mapped[str | None] = mapped_column(Text)
    display_name: Mapped[str | None] = mapped_column(Text)
    invited: Mapped[bool | None]
    registered: Mapped[bool | None]
    participant_type: Mapped[str | None] = mapped_column(Text)
    ip_address: Mapped[str | None] = mapped_column(Text)
    client_agent: Mapped[str | None] = mapped_column(Text)
    company: Mapped[str | None] = mapped_column(Text)
    duration_minutes: Mapped[float | None] = mapped_column(Double)
    raw: Mapped[dict[str, Any]]


FLAG_SUBJECTS = ("meeting", "participant", "invitee")


class DataQualityFlag(Base):
    """A plausibility check's flag on a stored item (``reporting.webex.plausibility``).

    Replaced with the meeting's items, in the same transaction. Not the report's own row flags
    (short attendance, no email…), which the report derives and never stores.
    """

    __tablename__ = "data_quality_flags"
    __table_args__ = (CheckConstraint(f"subject_kind IN {FLAG_SUBJECTS!r}", name="subject_kind"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    meeting_id: Mapped[str] = mapped_column(
        ForeignKey("meetings.meeting_id", ondelete="CASCADE"), index=True
    )
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str | None] = mapped_column(Text)
    check_name: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    harvest_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("harvest_runs.id", ondelete="SET NULL")
    )


class MeetingRevision(Base):
    """What changed when a meeting already complete was harvested again with different content."""

    __tablename__ = "meeting_revisions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    meeting_id: Mapped[str] = mapped_column(
        ForeignKey("meetings.meeting_id", ondelete="CASCADE"), index=True
    )
    harvest_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("harvest_runs.id", ondelete="SET NULL")
    )
    changed_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    previous_sha256: Mapped[str | None] = mapped_column(String(64))
    new_sha256: Mapped[str] = mapped_column(String(64))
    # Counts before/after and the ids added and removed, for "why did this number move".
    summary: Mapped[dict[str, Any]]
    # The previous items exactly as stored, so the old state can be shown.
    previous_items: Mapped[dict[str, Any]]


class ReportRun(Base):
    """An entry of the append-only report ledger; ``entry_sha256`` chains it to its predecessor.

    A database trigger (see the migration) refuses UPDATE and DELETE on this table.
    """

    __tablename__ = "report_runs"
    __table_args__ = (CheckConstraint("seq > 0", name="seq_positive"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    report_id: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text, default="monthly")
    generated_at: Mapped[dt.datetime]
    generated_by: Mapped[str] = mapped_column(Text)
    meetaudit_version: Mapped[str] = mapped_column(Text)
    period_from: Mapped[dt.datetime]
    period_to: Mapped[dt.datetime]
    timezone: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]]
    harvest_run_ids: Mapped[list[Any]]
    control_totals: Mapped[dict[str, Any]]
    complete: Mapped[bool] = mapped_column(Boolean)
    output_path: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_bytes: Mapped[int] = mapped_column(BigInteger)
    signature_path: Mapped[str | None] = mapped_column(Text)
    prev_entry_sha256: Mapped[str | None] = mapped_column(String(64))
    entry_sha256: Mapped[str] = mapped_column(String(64), unique=True)


class InvestigationCase(Base):
    """An investigation: the reason personal data is looked at (``meetaudit case open``)."""

    __tablename__ = "investigation_cases"
    __table_args__ = (CheckConstraint("length(btrim(ref)) > 0", name="ref_not_empty"),)

    ref: Mapped[str] = mapped_column(Text, primary_key=True)
    purpose: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[dt.datetime]
    opened_by: Mapped[str] = mapped_column(Text)
    closed_at: Mapped[dt.datetime | None]
    closed_by: Mapped[str | None] = mapped_column(Text)
    close_note: Mapped[str | None] = mapped_column(Text)


class AccessLogEntry(Base):
    """An entry of the append-only access log: one question answered about personal data.

    Hash-chained like the report ledger (``entry_sha256`` covers every other field and the
    previous entry's hash); a database trigger refuses UPDATE, DELETE and TRUNCATE.
    """

    __tablename__ = "access_log"
    __table_args__ = (CheckConstraint("seq > 0", name="seq_positive"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime]
    operator: Mapped[str] = mapped_column(Text)
    case_ref: Mapped[str | None] = mapped_column(Text, index=True)
    question: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]]
    rows_returned: Mapped[int] = mapped_column(Integer)
    output_format: Mapped[str] = mapped_column(Text)
    meetaudit_version: Mapped[str] = mapped_column(Text)
    prev_entry_sha256: Mapped[str | None] = mapped_column(String(64))
    entry_sha256: Mapped[str] = mapped_column(String(64), unique=True)


WEB_ROLES = ("officer", "auditor", "investigator", "admin")


class WebUser(Base):
    """A local account of the web console (``meetaudit users add``); passwords as Argon2id."""

    __tablename__ = "web_users"
    __table_args__ = (CheckConstraint(f"role IN {WEB_ROLES!r}", name="role"),)

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    role: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(Text)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]


class WebSession(Base):
    """A signed-in browser: only the SHA-256 of its cookie is stored, so a copy of this table
    signs nobody in. Kept in PostgreSQL so any console instance behind a load balancer serves it."""

    __tablename__ = "web_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(
        ForeignKey("web_users.name", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    client: Mapped[str | None] = mapped_column(Text)


JOB_STATUSES = ("queued", "running", "done", "failed")


class Job(Base):
    """A background job of the console (a report to generate), claimed by any instance.

    Instances claim queued jobs with ``SELECT … FOR UPDATE SKIP LOCKED``; the running instance
    writes its progress here, so every instance shows it and a job whose instance died (no
    heartbeat for a while) is queued again.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN {JOB_STATUSES!r}", name="status"),
        Index("ix_jobs_queued", "id", postgresql_where="status = 'queued'"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(Text, default="queued")
    requested_by: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[dt.datetime]
    claimed_by: Mapped[str | None] = mapped_column(Text)
    heartbeat_at: Mapped[dt.datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    stage: Mapped[str | None] = mapped_column(Text)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    finished_at: Mapped[dt.datetime | None]
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class WebLogin(Base):
    """A single sign-on under way: the state, nonce and PKCE verifier sent to the identity
    provider, kept until it answers (ten minutes at most), so any instance can finish it."""

    __tablename__ = "web_logins"

    state: Mapped[str] = mapped_column(Text, primary_key=True)
    nonce: Mapped[str] = mapped_column(Text)
    code_verifier: Mapped[str] = mapped_column(Text)
    next_path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]


class WebApiToken(Base):
    """A personal API token for scripts (``meetaudit users token``): the account's role and
    access log apply; only its SHA-256 is stored."""

    __tablename__ = "web_api_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_name: Mapped[str] = mapped_column(
        ForeignKey("web_users.name", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class ViewSettings(Base):
    """The organisation's own name, domains and orgIds as the analysts' SQL views classify by
    (migration 0114): settings copied here by ``meetaudit db views``, since a view cannot read
    meetaudit's configuration. One row."""

    __tablename__ = "view_settings"
    __table_args__ = (CheckConstraint("id", name="one_row"),)

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default="true")
    org_name: Mapped[str] = mapped_column(Text)
    org_domains: Mapped[list[str]] = mapped_column(ARRAY(Text))
    org_ids: Mapped[list[str]] = mapped_column(ARRAY(Text))
    timezone: Mapped[str] = mapped_column(Text)
    min_attendance_minutes: Mapped[float] = mapped_column(Double)
    stored_at: Mapped[dt.datetime | None]
    stored_by: Mapped[str | None] = mapped_column(Text)
