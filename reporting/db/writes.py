"""Bulk writes of harvested meetings: the only code that changes harvested rows.

The caller owns the transaction (every function takes ``session`` and never commits). Storing a
meeting replaces its participants, devices, breakout attendance and invitees and sets its
``complete_at`` mark in that same transaction, so a meeting is either complete or untouched.

Rows go in through PostgreSQL ``COPY`` (psycopg 3), after one ``DELETE`` of the batch's old rows:
that is an upsert at database speed, and it also removes participants Webex no longer lists. When a
meeting that was already complete comes back with different content, the previous items are kept
in ``meeting_revisions`` first, so an auditor can see why a number moved between two reports.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from reporting.db.models import HarvestGap, Invitee, Meeting, MeetingRevision, Participant
from reporting.webex import schemas
from reporting.webex.plausibility import Flag


@dataclass(frozen=True)
class MeetingRecord:
    """Everything fetched for one meeting, validated, ready to store as one unit."""

    meeting_id: str
    participants: Sequence[tuple[schemas.Participant, dict[str, Any]]]
    invitees: Sequence[tuple[schemas.Invitee, dict[str, Any]]]
    attendee_report: Sequence[tuple[schemas.AttendeeReportItem, dict[str, Any]]] | None = None
    # Data-quality flags of the plausibility checks, stored with the items.
    flags: Sequence[Flag] = ()

    @property
    def digest(self) -> str:
        """SHA-256 over the participant and invitee items stored (an item Webex listed twice
        counts once), independent of their order."""
        return _rows(self).digest


@dataclass
class StoreCounts:
    """Rows written by one :func:`store_meetings` call."""

    meetings: int = 0
    participants: int = 0
    devices: int = 0
    breakouts: int = 0
    invitees: int = 0
    revisions: int = 0
    changed_meeting_ids: list[str] = field(default_factory=list)


def _canonical(item: Any) -> str:
    """Compact JSON with sorted keys, UTF-8 kept as is: the stored raw item and digest input."""
    return orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode()


def _digest_lines(participants: Sequence[str], invitees: Sequence[str]) -> str:
    h = hashlib.sha256()
    for label, lines in ((b"p", participants), (b"i", invitees)):
        for line in sorted(lines):
            h.update(label)
            h.update(line.encode("utf-8"))
            h.update(b"\n")
    return h.hexdigest()


def content_digest(
    participants: Sequence[dict[str, Any]], invitees: Sequence[dict[str, Any]]
) -> str:
    """A stable SHA-256 of a meeting's stored items (sorted, canonical JSON): what
    ``meetings.content_sha256`` records when they are stored."""
    return _digest_lines([_canonical(p) for p in participants], [_canonical(i) for i in invitees])


def upsert_listed_meetings(
    session: Session, run_id: int, meetings: Sequence[tuple[schemas.Meeting, dict[str, Any]]]
) -> int:
    """Insert or refresh the listed meeting instances; their completion mark is left alone."""
    if not meetings:
        return 0
    rows = []
    for meeting, raw in meetings:
        rows.append(
            {
                "meeting_id": meeting.id,
                "meeting_series_id": meeting.meeting_series_id,
                "scheduled_meeting_id": meeting.scheduled_meeting_id,
                "meeting_number": meeting.meeting_number,
                "title": meeting.title,
                "meeting_type": meeting.meeting_type,
                "scheduled_type": meeting.scheduled_type,
                "state": meeting.state,
                "timezone": meeting.timezone,
                "start_at": meeting.start,
                "end_at": meeting.end,
                "host_user_id": meeting.host_user_id,
                "host_display_name": meeting.host_display_name,
                "host_email": meeting.host_email,
                "site_url": meeting.site_url,
                "web_link": meeting.web_link,
                "raw": schemas.strip_meeting_secrets(raw),
                "first_seen_run_id": run_id,
                "last_listed_run_id": run_id,
            }
        )
    stmt = insert(Meeting)
    refreshed = {
        c: stmt.excluded[c] for c in rows[0] if c not in ("meeting_id", "first_seen_run_id")
    }
    for start in range(0, len(rows), 1000):
        session.execute(
            stmt.on_conflict_do_update(index_elements=[Meeting.meeting_id], set_=refreshed),
            rows[start : start + 1000],
        )
    return len(rows)


_PARTICIPANT_COLUMNS = (
    "participant_id", "meeting_id", "org_id", "host", "co_host", "space_moderator", "email",
    "email_norm", "display_name", "invitee", "muted", "meeting_start_time", "video", "state",
    "breakout_session_id", "joined_at", "left_at", "site_url", "host_email", "source_id", "raw",
)  # fmt: skip
_DEVICE_COLUMNS = (
    "participant_id", "seq", "meeting_id", "correlation_id", "device_type", "audio_type",
    "call_type", "phone_number", "joined_at", "left_at", "duration_seconds", "raw",
)  # fmt: skip
_BREAKOUT_COLUMNS = (
    "participant_id", "seq", "meeting_id", "breakout_session_id", "name", "joined_at", "left_at",
    "raw",
)  # fmt: skip
_INVITEE_COLUMNS = (
    "meeting_id", "invitee_id", "email", "email_norm", "display_name", "co_host", "panelist", "raw",
)  # fmt: skip
_ATTENDEE_COLUMNS = (
    "meeting_id", "seq", "email_norm", "display_name", "invited", "registered",
    "participant_type", "ip_address", "client_agent", "company", "duration_minutes", "raw",
)  # fmt: skip


def participant_key(meeting_id: str, index: int, participant: schemas.Participant) -> str:
    """The participant's Webex id, or a stable stand-in when Webex sent none."""
    return participant.id or f"{meeting_id}#missing-id-{index}"


# A timestamp PostgreSQL reads exactly as Python did: ISO 8601 with a zone. Such text goes to
# COPY as it came from Webex — adapting a datetime object costs more than the rest of the row.
_ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)\Z")


def _ts(text: Any, parsed: dt.datetime | None) -> Any:
    """The COPY value of a validated timestamp: its original text when unambiguous."""
    if parsed is None:
        return None
    if text.__class__ is str and _ISO_UTC.match(text):
        return text
    return parsed


@dataclass
class _Rows:
    """One meeting's rows for each table, and the digest of its content."""

    participants: list[tuple[Any, ...]]
    devices: list[tuple[Any, ...]]
    breakouts: list[tuple[Any, ...]]
    invitees: list[tuple[Any, ...]]
    attendees: list[tuple[Any, ...]]
    digest: str


def _rows(record: MeetingRecord) -> _Rows:
    # The hot loop of the write path: one canonical JSON dump per item, shared by the raw
    # column and the content digest; plain tuples in COPY column order.
    participants: list[tuple[Any, ...]] = []
    devices: list[tuple[Any, ...]] = []
    breakouts: list[tuple[Any, ...]] = []
    p_lines: list[str] = []
    seen: set[str] = set()
    mid = record.meeting_id
    norm = schemas.normalise_email
    dump = _canonical
    ts = _ts
    for index, (p, raw) in enumerate(record.participants):
        pid = p.id or f"{mid}#missing-id-{index}"
        if pid in seen:  # the same participant on two pages: keep the first, as Webex listed it
            continue
        seen.add(pid)
        # The digest covers the items kept, so a report can check the stored ones against it.
        line = dump(raw)
        p_lines.append(line)
        email = p.email
        participants.append(
            (pid, mid, p.org_id, p.host, p.co_host, p.space_moderator, email,
             norm(email) if email is not None else None, p.display_name, p.invitee, p.muted,
             ts(raw.get("meetingStartTime"), p.meeting_start_time), p.video, p.state,
             p.breakout_session_id, ts(raw.get("joinedTime"), p.joined_time),
             ts(raw.get("leftTime"), p.left_time), p.site_url, p.host_email, p.source_id, line)
        )  # fmt: skip
        if p.devices:
            raw_devices = raw["devices"]
            for seq, d in enumerate(p.devices):
                rd = raw_devices[seq]
                devices.append(
                    (pid, seq, mid, d.correlation_id, d.device_type, d.audio_type, d.call_type,
                     d.phone_number, ts(rd.get("joinedTime"), d.joined_time),
                     ts(rd.get("leftTime"), d.left_time), d.duration_second, dump(rd))
                )  # fmt: skip
        if p.breakout_sessions_attended:
            raw_breakouts = raw["breakoutSessionsAttended"]
            for seq, b in enumerate(p.breakout_sessions_attended):
                rb = raw_breakouts[seq]
                breakouts.append(
                    (pid, seq, mid, b.id, b.name, ts(rb.get("joinedTime"), b.joined_time),
                     ts(rb.get("leftTime"), b.left_time), dump(rb))
                )  # fmt: skip
    invitees: list[tuple[Any, ...]] = []
    i_lines: list[str] = []
    seen.clear()
    for i, raw in record.invitees:
        if i.id in seen:
            continue
        seen.add(i.id)
        line = dump(raw)
        i_lines.append(line)
        invitees.append(
            (mid, i.id, i.email, norm(i.email), i.display_name, i.co_host, i.panelist, line)
        )
    attendees = _attendee_rows(mid, record.attendee_report or ())
    return _Rows(
        participants, devices, breakouts, invitees, attendees, _digest_lines(p_lines, i_lines)
    )


def _attendee_rows(
    meeting_id: str, report: Sequence[tuple[schemas.AttendeeReportItem, dict[str, Any]]]
) -> list[tuple[Any, ...]]:
    """A meeting's attendee-report rows in COPY column order (``seq`` is the item's position)."""
    norm = schemas.normalise_email
    return [
        (meeting_id, seq, norm(a.email), a.display_name, a.invited, a.registered,
         a.participant_type, a.ip_address, a.client_agent, a.company, a.duration, _canonical(raw))
        for seq, (a, raw) in enumerate(report)
    ]  # fmt: skip


def _copy(
    session: Session, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    if not rows:
        return
    raw_conn = session.connection().connection.driver_connection
    assert raw_conn is not None
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    try:
        with raw_conn.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.Error as exc:
        # COPY runs on the driver's connection, past SQLAlchemy: raise what SQLAlchemy raises for
        # any other statement (IntegrityError for a refused row, OperationalError for a lost
        # server or a full disk), so callers handle every database error alike.
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


def _record_revisions(
    session: Session, run_id: int, records: Sequence[MeetingRecord], digests: dict[str, str]
) -> tuple[list[str], set[str]]:
    """Keep the previous items of complete meetings whose content changed; return their ids,
    and the ids of the complete meetings whose content is the same as stored."""
    previous: dict[str, str | None] = {
        mid: old
        for mid, old in session.execute(
            select(Meeting.meeting_id, Meeting.content_sha256).where(
                Meeting.meeting_id.in_(list(digests)), Meeting.complete_at.is_not(None)
            )
        ).all()
    }
    changed = [mid for mid, old in previous.items() if old != digests[mid]]
    unchanged = {mid for mid, old in previous.items() if old == digests[mid]}
    by_id = {r.meeting_id: r for r in records}
    for mid in changed:
        old_p = session.scalars(
            select(Participant.raw)
            .where(Participant.meeting_id == mid)
            .order_by(Participant.participant_id)
        ).all()
        old_i = session.scalars(
            select(Invitee.raw).where(Invitee.meeting_id == mid).order_by(Invitee.invitee_id)
        ).all()
        new = by_id[mid]
        old_ids = {str(p.get("id")) for p in old_p}
        new_ids = {str(raw.get("id")) for _, raw in new.participants}
        old_inv = {schemas.normalise_email(str(i.get("email") or "")) or "" for i in old_i}
        new_inv = {
            schemas.normalise_email(str(raw.get("email") or "")) or "" for _, raw in new.invitees
        }
        session.add(
            MeetingRevision(
                meeting_id=mid,
                harvest_run_id=run_id,
                previous_sha256=previous[mid],
                new_sha256=digests[mid],
                summary={
                    "participants_before": len(old_p),
                    "participants_after": len(new.participants),
                    "invitees_before": len(old_i),
                    "invitees_after": len(new.invitees),
                    "participants_added": sorted(new_ids - old_ids),
                    "participants_removed": sorted(old_ids - new_ids),
                    "participants_changed": sorted(
                        _changed_ids(old_p, [raw for _, raw in new.participants])
                    ),
                    "invitees_added": sorted(new_inv - old_inv),
                    "invitees_removed": sorted(old_inv - new_inv),
                },
                previous_items={"participants": list(old_p), "invitees": list(old_i)},
            )
        )
    return changed, unchanged


def _changed_ids(old: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> set[str]:
    """Ids present before and after whose item differs (a later leave time, a new device…)."""
    before = {str(item.get("id")): _canonical(item) for item in old}
    return {
        str(item.get("id"))
        for item in new
        if str(item.get("id")) in before and before[str(item.get("id"))] != _canonical(item)
    }


def store_meetings(session: Session, run_id: int, records: Sequence[MeetingRecord]) -> StoreCounts:
    """Replace the stored items of these meetings and mark each complete, in the caller's transaction."""
    counts = StoreCounts()
    if not records:
        return counts
    ids = [r.meeting_id for r in records]
    participants: list[tuple[Any, ...]] = []
    devices: list[tuple[Any, ...]] = []
    breakouts: list[tuple[Any, ...]] = []
    invitees: list[tuple[Any, ...]] = []
    attendees: list[tuple[Any, ...]] = []
    per_meeting: dict[str, tuple[int, int, str]] = {}
    for record in records:
        rows = _rows(record)
        participants += rows.participants
        devices += rows.devices
        breakouts += rows.breakouts
        invitees += rows.invitees
        attendees += rows.attendees
        per_meeting[record.meeting_id] = (len(rows.participants), len(rows.invitees), rows.digest)
    digests = {mid: digest for mid, (_, _, digest) in per_meeting.items()}
    counts.changed_meeting_ids, unchanged = _record_revisions(session, run_id, records, digests)
    counts.revisions = len(counts.changed_meeting_ids)
    # Children of participants go with them (ON DELETE CASCADE).
    session.execute(text("DELETE FROM participants WHERE meeting_id = ANY(:ids)"), {"ids": ids})
    session.execute(text("DELETE FROM invitees WHERE meeting_id = ANY(:ids)"), {"ids": ids})
    with_report = [r.meeting_id for r in records if r.attendee_report is not None]
    if with_report:
        session.execute(
            text("DELETE FROM attendee_reports WHERE meeting_id = ANY(:ids)"), {"ids": with_report}
        )
    _copy(session, "participants", _PARTICIPANT_COLUMNS, participants)
    _copy(session, "participant_devices", _DEVICE_COLUMNS, devices)
    _copy(session, "breakout_attendance", _BREAKOUT_COLUMNS, breakouts)
    _copy(session, "invitees", _INVITEE_COLUMNS, invitees)
    _copy(session, "attendee_reports", _ATTENDEE_COLUMNS, attendees)
    # The plausibility flags go with the items they describe: replaced, never accumulated.
    session.execute(
        text("DELETE FROM data_quality_flags WHERE meeting_id = ANY(:ids)"), {"ids": ids}
    )
    _copy(
        session,
        "data_quality_flags",
        ("meeting_id", "subject_kind", "subject_id", "check_name", "detail", "harvest_run_id"),
        [
            (r.meeting_id, f.subject_kind, f.subject_id, f.check, f.detail, run_id)
            for r in records
            for f in r.flags
        ],
    )
    now = dt.datetime.now(dt.UTC)
    reported = set(with_report)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for mid, (n_p, n_i, digest) in per_meeting.items():
        mark: dict[str, Any] = {"meeting_id": mid, "participant_count": n_p,
                                "invitee_count": n_i, "content_sha256": digest}  # fmt: skip
        if mid not in unchanged:
            # Fetched again with the same content (a --refresh), a meeting keeps the moment it
            # became complete: a report generated before still reads it as it did, and renders
            # to the same bytes.
            mark.update(complete_at=now, complete_run_id=run_id)
        if mid in reported:
            # The attendee report was read; meetings without one keep their mark (an earlier
            # run may have read it).
            mark["attendee_report_at"] = now
        groups.setdefault(tuple(mark), []).append(mark)
    # A bulk UPDATE sets the same columns in every row: one per set of columns.
    for group in groups.values():
        session.execute(update(Meeting), group)
    # A meeting stored completely closes the gaps earlier runs recorded for it.
    session.execute(
        update(HarvestGap)
        .where(HarvestGap.meeting_id.in_(ids), HarvestGap.resolved_at.is_(None))
        .values(resolved_at=func.now(), resolved_by_run_id=run_id)
    )
    counts.meetings = len(records)
    counts.participants = len(participants)
    counts.devices = len(devices)
    counts.breakouts = len(breakouts)
    counts.invitees = len(invitees)
    return counts


def record_gap(
    session: Session,
    run_id: int,
    *,
    scope: str,
    reason: str,
    meeting_id: str | None = None,
    url: str | None = None,
    http_status: int | None = None,
    tracking_id: str | None = None,
    window: tuple[dt.datetime, dt.datetime] | None = None,
    plausibility_check: str | None = None,
) -> None:
    """Record something the run could not fetch; it stays open until a later run stores it.

    Open gaps of earlier attempts at the same thing — the same meeting, or a listing window
    inside this one — are superseded by the new gap: they stay as the history of those attempts
    (``meetaudit gaps --history``), but only the newest is open, so a meeting refused on every
    run is one line of a report, not one per run.
    """
    gap = HarvestGap(
        harvest_run_id=run_id,
        scope=scope,
        meeting_id=meeting_id,
        url=url,
        http_status=http_status,
        tracking_id=tracking_id,
        reason=reason,
        window_from=window[0] if window else None,
        window_to=window[1] if window else None,
        plausibility_check=plausibility_check,
    )
    session.add(gap)
    session.flush()
    if meeting_id is not None:
        same = HarvestGap.meeting_id == meeting_id
    elif window is not None:
        same = (
            HarvestGap.meeting_id.is_(None)
            & (HarvestGap.scope == scope)
            & (HarvestGap.window_from >= window[0])
            & (HarvestGap.window_to <= window[1])
        )
    else:
        return
    # now() is the transaction's start: the same instant as the new gap's ``occurred_at``.
    session.execute(
        update(HarvestGap)
        .where(
            same,
            HarvestGap.id != gap.id,
            HarvestGap.resolved_at.is_(None),
            HarvestGap.superseded_at.is_(None),
        )
        .values(superseded_at=func.now(), superseded_by_gap_id=gap.id)
    )


def store_attendee_reports(
    session: Session,
    run_id: int,
    reports: Sequence[tuple[str, Sequence[tuple[schemas.AttendeeReportItem, dict[str, Any]]]]],
) -> int:
    """Replace the attendee-report rows of these meetings and mark their report read, in the
    caller's transaction; return how many rows were written.

    This adds the report to meetings stored complete while it could not be read (the token
    lacked the report scope, or the day's report failed). Only ``attendee_reports`` and the
    meetings' ``attendee_report_at`` change: participants, invitees, the content digest, the
    completion mark and the revisions stay as they are — the report is enrichment, not content.
    Open ``attendee_report`` gaps of these meetings are closed by ``run_id``.
    """
    by_meeting = dict(reports)  # one report per meeting: the last one given
    if not by_meeting:
        return 0
    ids = list(by_meeting)
    rows = [row for mid, report in by_meeting.items() for row in _attendee_rows(mid, report)]
    session.execute(text("DELETE FROM attendee_reports WHERE meeting_id = ANY(:ids)"), {"ids": ids})
    _copy(session, "attendee_reports", _ATTENDEE_COLUMNS, rows)
    session.execute(
        update(Meeting)
        .where(Meeting.meeting_id.in_(ids))
        .values(attendee_report_at=dt.datetime.now(dt.UTC))
    )
    session.execute(
        update(HarvestGap)
        .where(
            HarvestGap.meeting_id.in_(ids),
            HarvestGap.scope == "attendee_report",
            HarvestGap.resolved_at.is_(None),
        )
        .values(resolved_at=func.now(), resolved_by_run_id=run_id)
    )
    return len(rows)
