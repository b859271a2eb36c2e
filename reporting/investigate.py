"""Read-only questions an investigator asks of the stored records, one function per question.

Every function takes ``session`` (the caller's, read-only use) and returns plain rows
(dataclasses), ready for a terminal table, CSV or JSON. People are found by email (compared
after trimming and lower-casing) or, when a fragment is given instead, by a case-insensitive
match on email or display name; a fragment may match several people, which
:func:`people_matching` lists, and every row about a person carries its ``person_key`` (the
report's: the email trimmed and lower-cased, else ``participant:<id>``). Times are UTC
``datetime`` values; :func:`write_csv`, :func:`write_json` and :func:`print_rows` show them in the
configured zone.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from reporting.config import Settings
from reporting.db.models import Invitee, Meeting, Participant, ParticipantDevice
from reporting.report.classify import classify, is_placeholder, mask_phone
from reporting.report.context import union_seconds
from reporting.report.exports import csv_cell
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


def _person_key(alias: Any = Participant) -> ColumnElement[str]:
    """The report's person key in SQL: the normalised email, else ``participant:<id>``."""
    key: ColumnElement[str] = func.coalesce(
        func.nullif(alias.email_norm, ""), "participant:" + alias.participant_id
    )
    return key


def person_label(display_name: str | None, email: str | None, person_key: str) -> str:
    """How a person is named to the investigator: ``Name <email>``, else name and key."""
    if email:
        return f"{display_name} <{email}>" if display_name else email
    return f"{display_name} ({person_key})" if display_name else person_key


@dataclass
class PersonMatch:
    """One person (one person key) that a name or email matches."""

    person_key: str
    display_name: str | None
    email: str | None
    meetings: int

    @property
    def label(self) -> str:
        return person_label(self.display_name, self.email, self.person_key)


def people_matching(session: Session, who: str, period: Period = Period()) -> list[PersonMatch]:
    """Everyone ``who`` matches in the period (lobby included), in the order answers list them.

    One person per person key; the name and email shown are the first (in sort order) that the
    person used, so a person who joined under several spellings is still listed once.
    """
    rows = session.execute(
        select(_person_key().label("key"), Participant.display_name, Participant.email,
               Participant.meeting_id)
        .join(Meeting, Meeting.meeting_id == Participant.meeting_id)
        .where(_person_clause(who), period.clause())
    ).all()  # fmt: skip
    names: dict[str, set[str]] = defaultdict(set)
    emails: dict[str, set[str]] = defaultdict(set)
    meetings: dict[str, set[str]] = defaultdict(set)
    for key, name, email, meeting_id in rows:
        meetings[key].add(meeting_id)
        if name:
            names[key].add(name)
        if email:
            emails[key].add(email)
    people = [
        PersonMatch(key, min(names[key], default=None), min(emails[key], default=None), len(ids))
        for key, ids in meetings.items()
    ]
    people.sort(key=lambda p: ((p.display_name or p.email or "").casefold(), p.person_key))
    return people


@dataclass
class Attendance:
    """One meeting a person attended (or waited in the lobby of)."""

    meeting_id: str
    title: str | None
    start_at: dt.datetime | None
    host_email: str | None
    person_key: str
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
    """Which meetings a person attended, when, in which role, from which devices, for how long.

    When ``who`` matches several people, their rows come person by person (in the order of
    :func:`people_matching`), each person's meetings in order of start.
    """
    rows = session.execute(
        select(Participant, Meeting.title, Meeting.start_at, Meeting.host_email)
        .join(Meeting, Meeting.meeting_id == Participant.meeting_id)
        .where(_person_clause(who), period.clause())
        .order_by(Meeting.start_at, Participant.participant_id)
    ).all()
    if not rows:
        return []
    order = {p.person_key: i for i, p in enumerate(people_matching(session, who, period))}
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
                person_key=p.email_norm or f"participant:{p.participant_id}",
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
    out.sort(key=lambda a: order[a.person_key])  # stable: by start within a person
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
    """How a person joined: whose device, device type, audio and call type, how often."""

    person_key: str
    display_name: str | None
    email: str | None
    device_type: str | None
    audio_type: str | None
    call_type: str | None
    phone_number: str | None
    sessions: int
    meetings: int


def devices_of(
    session: Session, who: str, settings: Settings, period: Period = Period()
) -> list[DeviceUse]:
    """The devices a person joined meetings from (phone numbers masked unless configured).

    One row per person and device; when ``who`` matches several people, person by person (in the
    order of :func:`people_matching`), each person's most used device first.
    """
    key = _person_key()
    rows = session.execute(
        select(
            key.label("person_key"),
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
            key,
            ParticipantDevice.device_type,
            ParticipantDevice.audio_type,
            ParticipantDevice.call_type,
            ParticipantDevice.phone_number,
        )
    ).all()
    if not rows:
        return []
    people = {p.person_key: (i, p) for i, p in enumerate(people_matching(session, who, period))}
    out = [
        DeviceUse(r.person_key, people[r.person_key][1].display_name,
                  people[r.person_key][1].email, r.device_type, r.audio_type, r.call_type,
                  mask_phone(r.phone_number, show=settings.show_phone_numbers), r.sessions, r.meetings)
        for r in rows
    ]  # fmt: skip
    out.sort(key=lambda d: (people[d.person_key][0], -d.sessions, -d.meetings,
                            d.device_type or "", d.audio_type or "", d.call_type or "",
                            d.phone_number or ""))  # fmt: skip
    return out


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


def meeting_ids_like(session: Session, meeting_id: str, limit: int = 10) -> list[str]:
    """The stored meeting ids ``meeting_id`` names: itself if stored, else those it begins.

    An id copied in part (its unique beginning) is enough; at most ``limit`` ids are returned,
    oldest meeting first, so a caller can tell "none", "exactly this one" and "several".
    """
    wanted = meeting_id.strip()
    if not wanted:
        return []
    if session.get(Meeting, wanted) is not None:
        return [wanted]
    prefix = wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return list(
        session.scalars(
            select(Meeting.meeting_id)
            .where(Meeting.meeting_id.like(f"{prefix}%", escape="\\"))
            .order_by(Meeting.start_at, Meeting.meeting_id)
            .limit(limit)
        )
    )


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


# -- output ---------------------------------------------------------------------------------------
# CSV and JSON follow the report exports (reporting/report/exports.py): times ISO 8601 with their
# offset in the configured zone, booleans true/false, lists ';'-separated in CSV, a cell that
# could run as a spreadsheet formula prefixed with an apostrophe. On the terminal, times are shown
# in the configured zone (named in the caption), and ids and emails are never cut: an id shown by
# one command can be copied into the next.

_PERSON_FIELDS = ("person_key", "display_name", "email")
#: Shown whole on the terminal, never wrapped or cut (lists: each item whole, one per line).
_WHOLE = frozenset({"meeting_id", "person_key", "email", "host_email", "phone_number", "examples"})
#: Shown stacked in one terminal column, one line each: the identity with its description.
_STACKS = (("meeting_id", "title", "host_email"), ("display_name", "email"))
_LINE_PREFIX = {"host_email": "host "}
_LABEL = {"host_email": "host"}
#: A wrapped column is not made narrower than this (or its widest value, if narrower).
_NARROWEST = 10


def _export_value(value: Any, zone: dt.tzinfo) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(zone).isoformat()
    return value


def write_csv(rows: Sequence[Any], out: IO[str], zone: dt.tzinfo) -> None:
    """Rows (dataclasses) as CSV with a header row, as the report's CSV exports write values."""
    if not rows:
        return
    records = [dataclasses.asdict(r) for r in rows]
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(list(records[0]))
    for rec in records:
        writer.writerow([csv_cell(_export_value(v, zone)) for v in rec.values()])


def write_json(rows: Sequence[Any], out: IO[str], zone: dt.tzinfo) -> None:
    """Rows (dataclasses) as a JSON array of objects: typed values, times ISO 8601 in ``zone``."""
    records = [{k: _export_value(v, zone) for k, v in dataclasses.asdict(r).items()} for r in rows]
    out.write(json.dumps(records, ensure_ascii=False, indent=2) + "\n")


def _shown(value: Any, zone: dt.tzinfo) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return local_time(value, zone)
    if isinstance(value, (list, tuple)):
        return "\n".join(str(v) for v in value)
    return str(value)


def local_time(value: dt.datetime | None, zone: dt.tzinfo) -> str:
    """A time as the terminal shows it: ``2026-10-02 01:24`` in ``zone`` (see :func:`zone_name`)."""
    return "" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def zone_name(zone: dt.tzinfo) -> str:
    """The zone as the settings name it (``Europe/Zurich``; ``UTC``)."""
    return str(getattr(zone, "key", None) or zone.tzname(None) or zone)


def print_rows(
    console: Any, rows: Sequence[Any], title: str, zone: dt.tzinfo, person_title: str | None = None
) -> None:
    """Rows (dataclasses) as tables on ``console`` (a ``rich.console.Console``).

    Rows about people (with a ``person_key``) get one table per person, titled
    ``person_title`` and the person; columns that do not change within it are left to the title.
    """
    from rich.text import Text

    records = [dataclasses.asdict(r) for r in rows]
    if not records:
        console.print(Text(f"{title}: nothing found."))
        return
    if person_title is None or "person_key" not in records[0]:
        _print_table(console, records, title, zone)
        return
    groups: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault(rec["person_key"], []).append(rec)
    for n, (key, group) in enumerate(groups.items()):
        if n:
            console.print()
        name = min((r["display_name"] for r in group if r["display_name"]), default=None)
        email = min((r["email"] for r in group if r["email"]), default=None)
        same = {f for f in _PERSON_FIELDS if f in group[0] and len({r[f] for r in group}) == 1}
        _print_table(
            console,
            [{k: v for k, v in r.items() if k not in same} for r in group],
            f"{person_title} {person_label(name, email, key)}",
            zone,
        )


def _print_table(console: Any, records: list[dict[str, Any]], title: str, zone: dt.tzinfo) -> None:
    """One table; when it cannot fit without cutting an id or email, one block per row instead."""
    from rich import box
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    fields = list(records[0])
    has_times = any(isinstance(r[f], dt.datetime) for r in records for f in fields)
    # Columns: a field alone, or a stack of fields shown one under the other.
    columns: list[tuple[str, ...]] = []
    for f in fields:
        stack = next((s for s in _STACKS if f in s and s[0] in fields), None)
        if stack is None:
            columns.append((f,))
        elif f == stack[0]:
            columns.append(tuple(m for m in stack if m in fields))

    def lines(rec: dict[str, Any], f: str) -> list[str]:
        text = _shown(rec[f], zone)
        return [_LINE_PREFIX.get(f, "") + line for line in text.split("\n")] if text else []

    def header(column: tuple[str, ...]) -> str:
        return " / ".join(_LABEL.get(f, f.replace("_", " ")) for f in column)

    cells = [
        [Text("\n".join(line for f in column for line in lines(rec, f))) for column in columns]
        for rec in records
    ]
    # Per column: a fixed width if it holds whole values (ids, emails), else a widest (values
    # unwrapped, the header wrapped at its spaces), and what it needs at the least.
    fixed: list[int | None] = []
    widest: list[int | None] = []
    needs: list[int] = []
    for column in columns:
        whole = max((cell_len(line) for r in records for f in column if f in _WHOLE
                     for line in lines(r, f)), default=0)  # fmt: skip
        other = max((cell_len(line) for r in records for f in column if f not in _WHOLE
                     for line in lines(r, f)), default=0)  # fmt: skip
        word = max(cell_len(w) for w in header(column).split())
        if whole:
            need = max(whole, cell_len(header(column)), min(other, _NARROWEST))
            fixed.append(need)
            widest.append(None)
        else:
            need = max(word, min(other, _NARROWEST))
            fixed.append(None)
            widest.append(max(word, other))
        needs.append(need)
    # Title and zone on lines of their own (a table would wrap them to its own width).
    console.print(Text(title, style="table.title"))
    if has_times:
        console.print(Text(f"Times in {zone_name(zone)}"))
    if sum(needs) + 2 * (len(columns) - 1) <= console.width:
        table = Table(
            box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
            show_lines=any(len(column) > 1 for column in columns),  # rows of several lines
        )  # fmt: skip
        for column, width, max_width in zip(columns, fixed, widest, strict=True):
            table.add_column(header(column), width=width, max_width=max_width, overflow="fold")
        for row in cells:
            table.add_row(*row)
        console.print(table)
        return
    # Too narrow for a table: one block per row, "label  value", values folded, never cut.
    for rec in records:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for f in fields:
            grid.add_row(Text(f.replace("_", " ")), Text(_shown(rec[f], zone)))
        console.print()
        console.print(grid)
