"""Read-only questions an investigator asks of the stored records, one function per question.

Every function takes ``session`` (the caller's, read-only use) and returns plain rows
(dataclasses), ready for a terminal table, CSV or JSON. People are found by email (compared
after trimming and lower-casing) or, when a fragment is given instead, by a case-insensitive
match on email or display name. Times are UTC ``datetime`` values.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from reporting.config import Settings
from reporting.db.models import Invitee, Meeting, Participant, ParticipantDevice
from reporting.report.classify import classify, is_placeholder, mask_phone
from reporting.report.context import union_seconds
from reporting.webex.schemas import normalise_email


@dataclass(frozen=True)
class Period:
    """Optional bounds on a meeting's actual start (``start`` inclusive, ``end`` exclusive)."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def clause(self) -> ColumnElement[bool]:
        """The SQL condition on ``meetings.start_at``."""
        conditions: list[ColumnElement[bool]] = []
        if self.start is not None:
            conditions.append(Meeting.start_at >= self.start)
        if self.end is not None:
            conditions.append(Meeting.start_at < self.end)
        return and_(True, *conditions)


def _person_clause(who: str) -> ColumnElement[bool]:
    return _alias_person_clause(Participant, who)


@dataclass
class Attendance:
    """One meeting a person attended (or waited in the lobby of)."""

    meeting_id: str
    title: str | None
    start_at: dt.datetime | None
    host_email: str | None
    display_name: str | None
    email: str | None
    state: str | None
    role: str
    invited: bool
    sessions: int
    attended_minutes: float
    devices: list[str] = field(default_factory=list)


def _attended_minutes(p: Participant, devices: list[ParticipantDevice]) -> float:
    """Minutes attended, counted as the report counts them (one rule, one number).

    The union of the device sessions (overlapping devices count once), else the participant's
    own joined/left times; 1970 placeholders are ignored; a lobby-only participant attended 0.
    """
    if p.state == "lobby":
        return 0.0

    def usable(a: dt.datetime | None, b: dt.datetime | None) -> bool:
        return a is not None and b is not None and not is_placeholder(a) and b > a

    intervals = [
        (d.joined_at.timestamp(), d.left_at.timestamp())
        for d in devices
        if d.joined_at is not None and d.left_at is not None and usable(d.joined_at, d.left_at)
    ]
    if not intervals and p.joined_at is not None and p.left_at is not None:
        if usable(p.joined_at, p.left_at):
            intervals = [(p.joined_at.timestamp(), p.left_at.timestamp())]
    return round(union_seconds(intervals) / 60.0, 1)


def attendance_of(session: Session, who: str, period: Period = Period()) -> list[Attendance]:
    """Which meetings a person attended, when, in which role, from which devices, for how long."""
    rows = session.execute(
        select(Participant, Meeting.title, Meeting.start_at, Meeting.host_email)
        .join(Meeting, Meeting.meeting_id == Participant.meeting_id)
        .where(_person_clause(who), period.clause())
        .order_by(Meeting.start_at, Participant.participant_id)
    ).all()
    if not rows:
        return []
    pids = [p.participant_id for p, *_ in rows]
    devices: dict[str, list[ParticipantDevice]] = defaultdict(list)
    for d in session.scalars(
        select(ParticipantDevice).where(ParticipantDevice.participant_id.in_(pids))
    ):
        devices[d.participant_id].append(d)
    invited = {
        (mid, email)
        for mid, email in session.execute(
            select(Invitee.meeting_id, Invitee.email_norm).where(
                Invitee.meeting_id.in_({p.meeting_id for p, *_ in rows})
            )
        )
    }
    out = []
    for p, title, start_at, host_email in rows:
        ds = devices[p.participant_id]
        out.append(
            Attendance(
                meeting_id=p.meeting_id,
                title=title,
                start_at=start_at,
                host_email=host_email,
                display_name=p.display_name,
                email=p.email,
                state=p.state,
                role="host" if p.host else "co-host" if p.co_host else "attendee",
                invited=(p.meeting_id, p.email_norm) in invited,
                sessions=len(ds),
                attended_minutes=_attended_minutes(p, ds),
                devices=sorted({f"{d.device_type or '?'}/{d.audio_type or '?'}" for d in ds}),
            )
        )
    return out


@dataclass
class CoAttendee:
    """Someone who was in the same meetings as the person asked about."""

    email: str | None
    display_name: str | None
    meetings_together: int
    classification: str
    organisation: str | None


def co_attendees(
    session: Session, who: str, settings: Settings, period: Period = Period()
) -> list[CoAttendee]:
    """Who attended meetings together with a person, most shared meetings first."""
    me = aliased(Participant)
    other = aliased(Participant)
    my_meetings = (
        select(me.meeting_id)
        .join(Meeting, Meeting.meeting_id == me.meeting_id)
        .where(_alias_person_clause(me, who), period.clause())
        .distinct()
    )
    rows = session.execute(
        select(
            func.coalesce(other.email_norm, other.display_name).label("key"),
            func.min(other.email).label("email"),
            func.min(other.display_name).label("display_name"),
            func.min(other.org_id).label("org_id"),
            func.count(func.distinct(other.meeting_id)).label("n"),
        )
        .where(other.meeting_id.in_(my_meetings), ~_alias_person_clause(other, who))
        .where(or_(other.state.is_(None), other.state != "lobby"))
        .group_by(func.coalesce(other.email_norm, other.display_name))
        .order_by(func.count(func.distinct(other.meeting_id)).desc(), func.min(other.display_name))
    ).all()
    out = []
    for row in rows:
        kind, org = classify(row.org_id, row.email, settings)
        out.append(CoAttendee(row.email, row.display_name, row.n, kind, org))
    return out


def _alias_person_clause(alias: Any, who: str) -> ColumnElement[bool]:
    """Match a person on ``alias`` (Participant or an alias of it): exact email or a fragment."""
    if "@" in who and " " not in who.strip():
        exact: ColumnElement[bool] = alias.email_norm == normalise_email(who)
        return exact
    fragment = who.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{fragment}%"
    clause: ColumnElement[bool] = or_(
        alias.email_norm.like(pattern, escape="\\"),
        func.lower(alias.display_name).like(pattern, escape="\\"),
    )
    return clause


@dataclass
class DeviceUse:
    """How a person joined: device type, audio and call type, how often."""

    device_type: str | None
    audio_type: str | None
    call_type: str | None
    phone_number: str | None
    sessions: int
    meetings: int


def devices_of(
    session: Session, who: str, settings: Settings, period: Period = Period()
) -> list[DeviceUse]:
    """The devices a person joined meetings from (phone numbers masked unless configured)."""
    rows = session.execute(
        select(
            ParticipantDevice.device_type,
            ParticipantDevice.audio_type,
            ParticipantDevice.call_type,
            ParticipantDevice.phone_number,
            func.count().label("sessions"),
            func.count(func.distinct(ParticipantDevice.meeting_id)).label("meetings"),
        )
        .join(Participant, Participant.participant_id == ParticipantDevice.participant_id)
        .join(Meeting, Meeting.meeting_id == Participant.meeting_id)
        .where(_person_clause(who), period.clause())
        .group_by(
            ParticipantDevice.device_type,
            ParticipantDevice.audio_type,
            ParticipantDevice.call_type,
            ParticipantDevice.phone_number,
        )
        .order_by(func.count().desc())
    ).all()
    return [
        DeviceUse(r.device_type, r.audio_type, r.call_type,
                  mask_phone(r.phone_number, show=settings.show_phone_numbers), r.sessions, r.meetings)
        for r in rows
    ]  # fmt: skip


@dataclass
class OutsideOrganisation:
    """An external organisation (by orgId, else email domain) and how much it took part."""

    classification: str
    organisation: str | None
    meetings: int
    people: int
    examples: list[str]


def outside_organisations(
    session: Session, settings: Settings, period: Period = Period()
) -> list[OutsideOrganisation]:
    """Which outside organisations took part in meetings of the period, and in how many."""
    rows = session.execute(
        select(Participant.org_id, Participant.email, Participant.email_norm,
               Participant.display_name, Participant.meeting_id)
        .join(Meeting, Meeting.meeting_id == Participant.meeting_id)
        .where(period.clause())
        .where(or_(Participant.state.is_(None), Participant.state != "lobby"))
    ).all()  # fmt: skip
    meetings: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    people: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    for r in rows:
        kind, org = classify(r.org_id, r.email, settings)
        if kind == "internal":
            continue
        key = (kind, org)
        meetings[key].add(r.meeting_id)
        people[key].add(r.email_norm or r.display_name or "?")
    out = [
        OutsideOrganisation(kind, org, len(meetings[(kind, org)]), len(people[(kind, org)]),
                            sorted(people[(kind, org)])[:3])
        for kind, org in meetings
    ]  # fmt: skip
    out.sort(key=lambda o: (o.classification != "external", -o.meetings, o.organisation or ""))
    return out


@dataclass
class RosterLine:
    """One person in a meeting's roster."""

    display_name: str | None
    email: str | None
    classification: str
    organisation: str | None
    role: str
    state: str | None
    invited: bool
    sessions: int
    attended_minutes: float
    devices: list[str]


def meeting_roster(
    session: Session, meeting_id: str, settings: Settings
) -> tuple[Meeting | None, list[RosterLine], list[str]]:
    """A meeting, everyone who joined it, and the invitees who never came."""
    meeting = session.get(Meeting, meeting_id)
    if meeting is None:
        return None, [], []
    invitees = {
        i.email_norm: i.display_name or i.email or ""
        for i in session.scalars(select(Invitee).where(Invitee.meeting_id == meeting_id))
        if i.email_norm
    }
    participants = session.scalars(
        select(Participant)
        .where(Participant.meeting_id == meeting_id)
        .order_by(Participant.display_name)
    ).all()
    devices: dict[str, list[ParticipantDevice]] = defaultdict(list)
    for d in session.scalars(
        select(ParticipantDevice).where(ParticipantDevice.meeting_id == meeting_id)
    ):
        devices[d.participant_id].append(d)
    lines = []
    came: set[str] = set()
    for p in participants:
        kind, org = classify(p.org_id, p.email, settings)
        ds = devices[p.participant_id]
        if p.email_norm:
            came.add(p.email_norm)
        lines.append(
            RosterLine(
                p.display_name, p.email, kind, org,
                "host" if p.host else "co-host" if p.co_host else "attendee",
                p.state, bool(p.email_norm and p.email_norm in invitees), len(ds),
                _attended_minutes(p, ds),
                sorted({f"{d.device_type or '?'}/{d.audio_type or '?'}" for d in ds}),
            )
        )  # fmt: skip
    absent = sorted(name or email for email, name in invitees.items() if email not in came)
    return meeting, lines, absent


@dataclass
class MeetingMatch:
    """A stored meeting matching a search."""

    meeting_id: str
    title: str | None
    start_at: dt.datetime | None
    end_at: dt.datetime | None
    host_email: str | None
    participants: int | None
    invitees: int | None
    complete: bool


def find_meetings(
    session: Session,
    *,
    title: str | None = None,
    host: str | None = None,
    period: Period = Period(),
    limit: int = 500,
) -> list[MeetingMatch]:
    """Meetings by title fragment and/or host email, newest first."""
    query = select(Meeting).where(period.clause())
    if title:
        query = query.where(Meeting.title.ilike(f"%{title}%"))
    if host:
        query = query.where(func.lower(Meeting.host_email) == normalise_email(host))
    meetings = session.scalars(query.order_by(Meeting.start_at.desc()).limit(limit)).all()
    return [
        MeetingMatch(m.meeting_id, m.title, m.start_at, m.end_at, m.host_email,
                     m.participant_count, m.invitee_count, m.complete_at is not None)
        for m in meetings
    ]  # fmt: skip
