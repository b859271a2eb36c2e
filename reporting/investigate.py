"""Read-only questions an investigator asks of the stored records, one function per question.

Every function takes ``session`` (the caller's, read-only use) and returns plain rows
(dataclasses), ready for a terminal table, CSV or JSON. People are found as :func:`resolve`
says (an email address, a fragment of one or of a name, or a person key as the answers print
it); a fragment may match several people, which :func:`people_matching` lists, and every row
about a person carries its ``person_key`` (the report's: the email trimmed and lower-cased, else
``participant:<id>``). Times are UTC ``datetime`` values; :func:`write_csv`, :func:`write_json`
and :func:`print_rows` show them in the configured zone.

The report's rules apply unchanged (``reporting.report.context``): attended means admitted (a
person who only waited in the lobby attended nothing), people are counted per person key (so
every phone caller is a person of their own), phone numbers are masked unless
``show_phone_numbers``, and so is a caller's name when it is their number
(:func:`caller_name`).

Speed: every question reads through indexes (migration 0112) — the whole address first, as a
query of its own, then fragments through trigram indexes on the email and the folded name
(``meetaudit_fold``: accents removed, lower-cased), the period joined on the meeting's start;
organisations are classified from the orgIds of the people in the answer only, and ``orgs`` is
counted in SQL. Raw JSON documents are never loaded. JIT compilation is switched off for these
short queries (it cost more than the queries themselves).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

from sqlalchemy import ColumnElement, and_, any_, func, literal, or_, select, text, true
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.orm import Session, aliased, defer
from sqlalchemy.types import Text

from reporting.config import Settings
from reporting.coverage import UNCOVERED_REASON, what_is_missing
from reporting.db.models import Invitee, Meeting, Participant, ParticipantDevice
from reporting.errors import MeetauditError, QuestionError
from reporting.report.classify import (
    Classification,
    KnownOrgIds,
    caller_name,
    classify,
    is_placeholder,
    mask_phone,
)
from reporting.report.context import STATUS_LABELS, union_seconds
from reporting.report.exports import csv_cell
from reporting.report.templating import DEFAULT_LIMIT, plain_text
from reporting.webex.plausibility import plausible_org_id
from reporting.webex.schemas import normalise_email

#: How a person key names a participant without email (``participant:<id>``), as the report does.
PARTICIPANT_KEY = "participant:"
#: Names at least this similar (pg_trgm's similarity, 0 to 1) are "close" when none contains the
#: text typed: small typos ("Angstrem") still find the person.
CLOSE_NAME_SIMILARITY = 0.45
#: Only a name is looked for by similarity: letters first, then letters, spaces, ``.'-``.
_CLOSE_WORTHY = re.compile(r"[^\W\d_][^\W\d_ .'-]*(?:[ .'-]+[^\W\d_]+)*[ .]*")
#: At most this many people are offered as close names.
CLOSE_NAMES_SHOWN = 20


@dataclass(frozen=True)
class Period:
    """Optional bounds on a meeting's actual start (``start`` inclusive, ``end`` exclusive)."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    def clause(self, meeting: Any = Meeting) -> ColumnElement[bool]:
        """The SQL condition on ``meetings.start_at`` (of ``meeting``, an alias if given)."""
        conditions: list[ColumnElement[bool]] = []
        if self.start is not None:
            conditions.append(meeting.start_at >= self.start)
        if self.end is not None:
            conditions.append(meeting.start_at < self.end)
        return and_(True, *conditions)


def _quick(session: Session) -> None:
    """No JIT for these short, index-driven queries: compiling cost 1-2 s on every run.

    Once per transaction (``SET LOCAL`` lasts until its end): a question that resolves a person
    and then asks about them pays the round trip once."""
    transaction = session.get_transaction()
    if transaction is not None and session.info.get("meetaudit_jit_off") is transaction:
        return
    session.execute(text("SET LOCAL jit = off"))
    session.info["meetaudit_jit_off"] = session.get_transaction()


def _any(column: Any, values: Iterable[str]) -> ColumnElement[bool]:
    """``column = ANY(array)``: one parameter however many values, and an index still applies."""
    clause: ColumnElement[bool] = column == any_(literal(sorted(set(values)), ARRAY(Text)))
    return clause


def _has_trigrams(session: Session) -> bool:
    """Whether this server has ``pg_trgm`` (the embedded one does not)."""
    return bool(session.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")))


def _fold(session: Session, value: str) -> str:
    """``value`` as the database folds names (``meetaudit_fold``): no accents, lower case."""
    return str(session.scalar(select(func.meetaudit_fold(value))))


def _like_pattern(text_: str, *, anywhere: bool) -> str:
    """A LIKE pattern (escape ``\\``) for ``text_`` at the start or ``anywhere``, taken literally."""
    literal_ = text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{literal_}%" if anywhere else f"{literal_}%"


@dataclass(frozen=True)
class Who:
    """The people a question is about, as person keys, and how they were found."""

    keys: tuple[str, ...] = ()
    #: Found by a similar name (no name or address contains the text typed).
    close: bool = False

    @property
    def emails(self) -> list[str]:
        return [k for k in self.keys if not k.startswith(PARTICIPANT_KEY)]

    @property
    def participant_ids(self) -> list[str]:
        return [k[len(PARTICIPANT_KEY) :] for k in self.keys if k.startswith(PARTICIPANT_KEY)]

    def clause(self, alias: Any = Participant) -> ColumnElement[bool]:
        """The participant rows of these people (by the email index, or the primary key)."""
        conditions: list[ColumnElement[bool]] = []
        if self.emails:
            conditions.append(_any(alias.email_norm, self.emails))
        if self.participant_ids:
            conditions.append(
                and_(_any(alias.participant_id, self.participant_ids),
                     func.coalesce(alias.email_norm, "") == "")
            )  # fmt: skip
        return or_(False, *conditions)


def resolve(session: Session, who: str) -> Who:
    """The people ``who`` names, in this order of rules:

    * a person key as the answers print it, ``participant:<id>`` (someone without an email, a
      phone caller most often): that participant, so every key shown can be asked about;
    * a whole email address that is stored: that address only, so ``ana@x.example`` never also
      finds ``joanna@x.example``;
    * anything else, ``@`` included (``andersen@globex``, ``@post.test``): everyone whose email
      or display name contains it, ignoring case and accents ("jose angstrom" finds "José
      Ångström"), LIKE's wildcards taken literally;
    * when nobody's name or address contains it: the people whose name is close to it (small
      typos), ``close`` true.
    """
    _quick(session)
    typed = who.strip()
    if typed.lower().startswith(PARTICIPANT_KEY):
        pid = typed[len(PARTICIPANT_KEY) :].strip()
        keys = session.scalars(select(_person_key()).where(Participant.participant_id == pid)).all()
        return Who(tuple(keys))
    if "@" in typed:
        address = normalise_email(typed) or ""
        stored = session.scalar(
            select(literal(1)).where(Participant.email_norm == address).limit(1)
        )
        if stored:
            return Who((address,))
    pattern = _like_pattern(typed.lower(), anywhere=True)
    folded = _like_pattern(_fold(session, typed), anywhere=True)
    keys = session.scalars(
        select(_person_key())
        .where(or_(Participant.email_norm.like(pattern, escape="\\"),
                   func.meetaudit_fold(Participant.display_name).like(folded, escape="\\")))
        .distinct()
    ).all()  # fmt: skip
    if keys or len(typed) < 4 or not _CLOSE_WORTHY.fullmatch(typed):
        return Who(tuple(sorted(keys)))
    return Who(_close_names(session, _fold(session, typed)), close=True)


def _close_names(session: Session, folded: str) -> tuple[str, ...]:
    """People whose folded name is most similar to ``folded`` (pg_trgm, else the same in Python)."""
    name = func.meetaudit_fold(Participant.display_name)
    if _has_trigrams(session):
        session.execute(
            text("SELECT set_config('pg_trgm.similarity_threshold', :t, true)"),
            {"t": str(CLOSE_NAME_SIMILARITY)},
        )
        key = _person_key()
        best = func.max(func.similarity(name, folded))
        rows = session.execute(
            select(key.label("key"), best.label("score"))
            .where(name.op("%")(folded))
            .group_by(key)
            .order_by(best.desc(), key)
            .limit(CLOSE_NAMES_SHOWN)
        ).all()
        return tuple(r.key for r in rows)
    # No pg_trgm (the embedded server, a demo's size): the same measure over the distinct names.
    names = session.scalars(select(name).where(name.is_not(None)).distinct()).all()
    scored = sorted(
        ((s, n) for n in names if (s := trigram_similarity(n, folded)) >= CLOSE_NAME_SIMILARITY),
        reverse=True,
    )[:CLOSE_NAMES_SHOWN]
    if not scored:
        return ()
    keys = session.scalars(
        select(_person_key()).where(_any(name, [n for _, n in scored])).distinct()
    ).all()
    return tuple(sorted(keys))[:CLOSE_NAMES_SHOWN]


def _trigrams(value: str) -> set[str]:
    """pg_trgm's trigrams of a folded text: each word padded with two spaces before, one after."""
    grams: set[str] = set()
    for word in re.findall(r"[^\W_]+", value):
        padded = f"  {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


def trigram_similarity(a: str, b: str) -> float:
    """pg_trgm's ``similarity``: shared trigrams over all trigrams of both texts."""
    ta, tb = _trigrams(a), _trigrams(b)
    return len(ta & tb) / len(ta | tb) if ta and tb else 0.0


def _admitted(alias: Any = Participant) -> ColumnElement[bool]:
    """The report's "attended": let into the meeting, not only into its lobby."""
    clause: ColumnElement[bool] = or_(alias.state.is_(None), alias.state != "lobby")
    return clause


def _person_key(alias: Any = Participant) -> ColumnElement[str]:
    """The report's person key in SQL: the normalised email, else ``participant:<id>``."""
    key: ColumnElement[str] = func.coalesce(
        func.nullif(alias.email_norm, ""), "participant:" + alias.participant_id
    )
    return key


def _c(column: Any) -> Any:
    """``column`` compared as Python compares strings (code points), for min() and ORDER BY."""
    return column.collate("C")


def person_label(display_name: str | None, email: str | None, person_key: str) -> str:
    """How a person is named to the investigator: ``Name <email>``, else name and key."""
    if email:
        return f"{display_name} <{email}>" if display_name else email
    return f"{display_name} ({person_key})" if display_name else person_key


def _phones_by_key(session: Session, *conditions: ColumnElement[bool]) -> dict[str, set[str]]:
    """The phone numbers each person (by key) joined from, among the participants selected."""
    phones: dict[str, set[str]] = defaultdict(set)
    for key, number in session.execute(
        select(_person_key(), ParticipantDevice.phone_number)
        .join(Participant, Participant.participant_id == ParticipantDevice.participant_id)
        .join(Meeting, Meeting.meeting_id == Participant.meeting_id)
        .where(ParticipantDevice.phone_number.is_not(None), *conditions)
        .distinct()
    ):
        if number:  # as the report: an empty number is no number
            phones[key].add(number)
    return phones


#: Classifies a participant (orgId, email, normalised email) as the report does.
_Classifier = Callable[[str | None, str | None, str | None], tuple[Classification, str | None]]


def _classifier(
    session: Session, settings: Settings, period: Period, emails: Iterable[str]
) -> _Classifier:
    """The report's classification for a period (``reporting.report.classify.KnownOrgIds``).

    A person is counted under the orgId Webex gave for their email anywhere in the period, so a
    person is one organisation for the whole period, as in the report of that period. Only the
    ``emails`` the answer holds are looked up (through the email index), never the whole period.
    """
    wanted = {e for e in emails if e}
    pairs: list[tuple[str, str]] = []
    if wanted:
        # Email by email (a lateral join, through the index of rows that carry an orgId): with
        # thousands of emails in one ``= ANY`` the planner expects hundreds of rows each and
        # reads the whole table, when most people (guests, callers) have none.
        asked = (
            func.unnest(literal(sorted(wanted), ARRAY(Text)))
            .table_valued("email")
            .render_derived(name="w")
        )
        given = (
            select(Participant.org_id)
            .join(Meeting, Meeting.meeting_id == Participant.meeting_id)
            .where(Participant.email_norm == asked.c.email, Participant.org_id.is_not(None),
                   Meeting.complete_at.is_not(None), period.clause())
            .distinct()
            .lateral("given")
        )  # fmt: skip
        pairs = [
            (e, o)
            for e, o in session.execute(
                select(asked.c.email, given.c.org_id).select_from(asked).join(given, true())
            )
            if e is not None and o is not None
        ]
    known = KnownOrgIds.from_pairs(pairs)
    return lambda org_id, email, email_norm: classify(
        known.org_id(org_id, email_norm), email, settings
    )


def _org_id_missing(org_id: str | None) -> bool:
    """Whether a row gives no usable orgId, so its email's orgId in the period decides
    (``KnownOrgIds.org_id``): only such people need :func:`_classifier` to look them up."""
    return not (org_id and org_id.strip() and plausible_org_id(org_id))


@dataclass
class PersonMatch:
    """One person (one person key) that a name or email matches."""

    person_key: str
    display_name: str | None
    email: str | None
    meetings: int

    @property
    def label(self) -> str:
        """The person as the terminal names them (see :func:`terminal_label`)."""
        return terminal_label(self.display_name, self.email, self.person_key)


def _who(session: Session, who: str | Who) -> Who:
    return who if isinstance(who, Who) else resolve(session, who)


def people_matching(
    session: Session,
    who: str | Who,
    period: Period = Period(),
    *,
    show_phone_numbers: bool = False,
) -> list[PersonMatch]:
    """Everyone ``who`` matches in the period (lobby included), in the order answers list them.

    One person per person key; the name and email shown are the first (in sort order) that the
    person used, so a person who joined under several spellings is still listed once. A name
    that is the caller's phone number is masked (:func:`caller_name`).
    """
    found = _who(session, who)
    if not found.keys:
        return []
    _quick(session)
    key = _person_key()
    where = (found.clause(), period.clause())
    rows = session.execute(
        select(key.label("key"), func.min(_c(Participant.display_name)).label("name"),
               func.min(_c(Participant.email)).label("email"),
               func.count(func.distinct(Participant.meeting_id)).label("meetings"))
        .join(Meeting, Meeting.meeting_id == Participant.meeting_id)
        .where(*where)
        .group_by(key)
    ).all()  # fmt: skip
    phones = _phones_by_key(session, *where) if rows else {}
    people = [
        PersonMatch(r.key, caller_name(r.name, phones.get(r.key, ()), show=show_phone_numbers),
                    r.email, r.meetings)
        for r in rows
    ]  # fmt: skip
    people.sort(key=lambda p: ((p.display_name or p.email or "").casefold(), p.person_key))
    return people


@dataclass
class Attendance:
    """One meeting a person attended (or only waited in the lobby of: ``admitted`` false)."""

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
    #: Let into the meeting (the report's ``admitted``); false: "Lobby only", never admitted.
    admitted: bool = True


class _DeviceSession(NamedTuple):
    """One device session of a participant, as the answers read it."""

    device_type: str | None
    audio_type: str | None
    phone_number: str | None
    joined_at: dt.datetime | None
    left_at: dt.datetime | None


def _attended_minutes(p: Any, devices: Sequence[_DeviceSession | ParticipantDevice]) -> float:
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


def _key_of(p: Participant) -> str:
    """The report's person key of one participant row."""
    return p.email_norm or f"{PARTICIPANT_KEY}{p.participant_id}"


def _email_of_key(person_key: str) -> str | None:
    """The normalised email a person key is, or ``None`` for a participant without one."""
    return None if person_key.startswith(PARTICIPANT_KEY) else person_key


def _devices_of_rows(session: Session, pids: Iterable[str]) -> dict[str, list[ParticipantDevice]]:
    """The device sessions of these participants (by primary key), raw documents left out."""
    devices: dict[str, list[ParticipantDevice]] = defaultdict(list)
    wanted = list(pids)
    if wanted:
        for d in session.scalars(
            select(ParticipantDevice).options(defer(ParticipantDevice.raw))
            .where(_any(ParticipantDevice.participant_id, wanted))
            .order_by(ParticipantDevice.participant_id, ParticipantDevice.seq)
        ):  # fmt: skip
            devices[d.participant_id].append(d)
    return devices


def attendance_of(
    session: Session,
    who: str | Who,
    period: Period = Period(),
    *,
    show_phone_numbers: bool = False,
) -> list[Attendance]:
    """Which meetings a person attended, when, in which role, from which devices, for how long.

    Meetings the person only waited in the lobby of are listed too, ``admitted`` false: as in the
    report, a person is admitted to a meeting when any of their participant rows in it is. When
    ``who`` matches several people, their rows come person by person (in the order of
    :func:`people_matching`), each person's meetings in order of start.
    """
    found = _who(session, who)
    if not found.keys:
        return []
    _quick(session)
    d = aliased(ParticipantDevice)
    by_seq = d.seq

    def agg(column: Any) -> Any:
        return func.array_agg(aggregate_order_by(column, by_seq))

    devices = (
        select(agg(d.device_type).label("types"), agg(d.audio_type).label("audio"),
               agg(d.phone_number).label("phones"), agg(d.joined_at).label("joined"),
               agg(d.left_at).label("left"))
        .where(d.participant_id == Participant.participant_id)
        .lateral("dev")
    )  # fmt: skip
    # The invitations of these people, read once through the email index (not probed per row).
    invitations = (
        select(Invitee.meeting_id, Invitee.email_norm)
        .where(_any(Invitee.email_norm, found.emails))
        .distinct()
        .subquery("inv")
    )
    # One round trip: the rows, each with its device sessions (one row of arrays) and whether
    # the person was invited; who the people are, and their order, follow from these rows.
    rows = session.execute(
        select(Participant.participant_id, Participant.meeting_id, Participant.display_name,
               Participant.email, Participant.email_norm, Participant.state, Participant.host,
               Participant.co_host, Participant.joined_at, Participant.left_at, Meeting.title,
               Meeting.start_at, Meeting.host_email,
               invitations.c.meeting_id.is_not(None).label("invited"),
               devices.c.types, devices.c.audio, devices.c.phones, devices.c.joined,
               devices.c.left)
        .join(Meeting, Meeting.meeting_id == Participant.meeting_id)
        .join(devices, true())
        .outerjoin(invitations, and_(invitations.c.meeting_id == Participant.meeting_id,
                                     invitations.c.email_norm == Participant.email_norm))
        .where(found.clause(), period.clause())
        .order_by(Meeting.start_at, Participant.participant_id)
    ).all()  # fmt: skip
    if not rows:
        return []
    sessions = {
        r.participant_id: [_DeviceSession(*s) for s in zip(r.types, r.audio, r.phones, r.joined, r.left,
                                                      strict=True)]
        if r.types is not None else []
        for r in rows
    }  # fmt: skip
    keys = {r.participant_id: r.email_norm or f"{PARTICIPANT_KEY}{r.participant_id}" for r in rows}
    admitted = {(r.meeting_id, keys[r.participant_id]) for r in rows if r.state != "lobby"}
    phones: dict[str, set[str]] = defaultdict(set)
    names: dict[str, list[str | None]] = {}
    for r in rows:
        key = keys[r.participant_id]
        phones[key].update(s.phone_number for s in sessions[r.participant_id] if s.phone_number)
        # As people_matching names a person: the least name and email in code-point order.
        first = names.setdefault(key, [None, None])
        for i, value in enumerate((r.display_name, r.email)):
            if value is not None and (first[i] is None or value < first[i]):
                first[i] = value
    shown = {k: caller_name(n, phones[k], show=False) for k, (n, _) in names.items()}
    order = {
        k: i
        for i, k in enumerate(
            sorted(names, key=lambda k: ((shown[k] or names[k][1] or "").casefold(), k))
        )
    }
    out = []
    for r in rows:
        ds = sessions[r.participant_id]
        key = keys[r.participant_id]
        out.append(
            Attendance(
                meeting_id=r.meeting_id,
                title=r.title,
                start_at=r.start_at,
                host_email=r.host_email,
                person_key=key,
                display_name=caller_name(r.display_name, phones[key], show=show_phone_numbers),
                email=r.email,
                state=r.state,
                role="host" if r.host else "co-host" if r.co_host else "attendee",
                invited=bool(r.invited),
                sessions=len(ds),
                attended_minutes=_attended_minutes(r, ds),
                devices=sorted({f"{s.device_type or '?'}/{s.audio_type or '?'}" for s in ds}),
                admitted=(r.meeting_id, key) in admitted,
            )
        )
    out.sort(key=lambda a: order[a.person_key])  # stable: by start within a person
    return out


@dataclass
class CoAttendee:
    """Someone who was admitted to the same meetings as the person asked about."""

    email: str | None
    display_name: str | None
    meetings_together: int
    classification: str
    organisation: str | None
    #: The report's person key: a phone caller without email is one person per participant row.
    person_key: str


def _my_meetings(found: Who, period: Period) -> Any:
    """The meetings the people ``found`` were admitted to in the period (a subquery)."""
    me = aliased(Participant)
    return (
        select(me.meeting_id)
        .join(Meeting, Meeting.meeting_id == me.meeting_id)
        .where(found.clause(me), _admitted(me), period.clause())
    )


def co_attendees(
    session: Session, who: str | Who, settings: Settings, period: Period = Period()
) -> list[CoAttendee]:
    """Who met the person: admitted to a meeting the person was admitted to, most meetings first.

    Meetings the person only waited in the lobby of, and people who only waited in a lobby, do
    not count. Everyone is counted per person key, as the report counts people, so unidentified
    callers are listed too (``classification`` unidentified), each on their own, their names
    masked when they are their phone numbers.
    """
    found = _who(session, who)
    if not found.keys:
        return []
    _quick(session)
    key = _person_key()
    theirs = (
        Participant.meeting_id.in_(_my_meetings(found, period)),
        ~_any(key, found.keys),
        _admitted(),
    )
    rows = session.execute(
        select(key.label("key"), func.min(_c(Participant.email)).label("email"),
               func.min(_c(Participant.display_name)).label("name"),
               func.min(_c(Participant.org_id)).label("org_id"),
               func.count(func.distinct(Participant.meeting_id)).label("meetings"))
        .where(*theirs)
        .group_by(key)
    ).all()  # fmt: skip
    callers = [r.key[len(PARTICIPANT_KEY) :] for r in rows if r.key.startswith(PARTICIPANT_KEY)]
    phones: dict[str, set[str]] = defaultdict(set)
    if callers:
        for pid, number in session.execute(
            # By the key alone: "phone_number IS NOT NULL" made the planner AND in the phone
            # index, a scan of every number stored, for a few thousand callers' rows.
            select(ParticipantDevice.participant_id, ParticipantDevice.phone_number).where(
                _any(ParticipantDevice.participant_id, callers)
            )
        ):
            if number:
                phones[PARTICIPANT_KEY + pid].add(number)
    # Only people without an orgId of their own are looked up (a busy person meets thousands).
    classified = _classifier(
        session, settings, period, (r.key for r in rows if _org_id_missing(r.org_id))
    )
    out = []
    for r in rows:
        kind, org = classified(r.org_id, r.email, _email_of_key(r.key))
        out.append(
            CoAttendee(r.email, caller_name(r.name, phones.get(r.key, ()),
                                            show=settings.show_phone_numbers),
                       r.meetings, kind, org, r.key)
        )  # fmt: skip
    out.sort(key=lambda c: (-c.meetings_together, (c.display_name or c.email or "").casefold(),
                            c.person_key))  # fmt: skip
    return out


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
    session: Session, who: str | Who, settings: Settings, period: Period = Period()
) -> list[DeviceUse]:
    """The devices a person joined meetings from (phone numbers masked unless configured).

    One row per person and device; when ``who`` matches several people, person by person (in the
    order of :func:`people_matching`), each person's most used device first.
    """
    found = _who(session, who)
    if not found.keys:
        return []
    _quick(session)
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
        .where(found.clause(), period.clause())
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
    show = settings.show_phone_numbers
    matches = people_matching(session, found, period, show_phone_numbers=show)
    people = {p.person_key: (i, p) for i, p in enumerate(matches)}
    out = [
        DeviceUse(r.person_key, people[r.person_key][1].display_name,
                  people[r.person_key][1].email, r.device_type, r.audio_type, r.call_type,
                  mask_phone(r.phone_number, show=show), r.sessions, r.meetings)
        for r in rows
    ]  # fmt: skip
    out.sort(key=lambda d: (people[d.person_key][0], -d.sessions, -d.meetings,
                            d.device_type or "", d.audio_type or "", d.call_type or "",
                            d.phone_number or ""))  # fmt: skip
    return out


@dataclass
class OutsideOrganisation:
    """An external organisation (by orgId, else email domain) and how much it took part.

    ``people`` counts person keys, as the report does: every phone caller without email is a
    person of their own, whatever name they dialled in under.
    """

    classification: str
    organisation: str | None
    meetings: int
    people: int
    examples: list[str]


#: ``outside_organisations`` in one statement: the report's classification
#: (``reporting.report.classify``: ``classify`` with ``KnownOrgIds``) in SQL, so the period's
#: rows are counted where they are instead of being carried into Python. The rules themselves
#: are the SQL functions the analysts' views use too (``meetaudit_classify_domain``,
#: ``meetaudit_org_key_domain``, ``meetaudit_caller_name``: migrations 0114 and 0116), written
#: once, and applied once per distinct (orgId, email domain) of the period, not per row.
_ORGS_SQL = r"""
WITH period AS MATERIALIZED (
    SELECT p.participant_id, p.email, nullif(p.email_norm, '') AS email_norm,
           p.display_name, p.meeting_id, (p.state IS NULL OR p.state <> 'lobby') AS admitted,
           m.complete_at IS NOT NULL AS complete,
           -- An orgId the harvest flagged as no Webex organisation id (org_id_not_uuid) is no
           -- orgId here, as in the report (reporting.report.classify.KnownOrgIds).
           CASE WHEN EXISTS (SELECT 1 FROM data_quality_flags f
                             WHERE f.meeting_id = p.meeting_id AND f.check_name = 'org_id_not_uuid'
                               AND f.subject_id = p.participant_id)
                THEN NULL ELSE p.org_id END AS org_id
    FROM participants p JOIN meetings m ON m.meeting_id = p.meeting_id
    WHERE (CAST(:start AS timestamptz) IS NULL OR m.start_at >= :start)
      AND (CAST(:end AS timestamptz) IS NULL OR m.start_at < :end)
),
known AS (  -- KnownOrgIds: the one orgId Webex gave for an email in the period's complete meetings
    SELECT email_norm, min(meetaudit_org_id(org_id)) AS oid
    FROM period
    WHERE complete AND email_norm IS NOT NULL AND meetaudit_org_id(org_id) IS NOT NULL
    GROUP BY email_norm
    HAVING count(DISTINCT meetaudit_org_id(org_id)) = 1
),
rows AS (
    SELECT coalesce(r.email_norm, 'participant:' || r.participant_id) AS key, r.meeting_id,
           r.participant_id, r.display_name, r.email,
           coalesce(CASE WHEN meetaudit_org_id(r.org_id) IS NOT NULL THEN r.org_id
                         ELSE k.oid END, '') AS oid,
           coalesce(meetaudit_email_domain(r.email), '') AS domain
    FROM period r
    LEFT JOIN known k ON k.email_norm = r.email_norm
    WHERE r.admitted
),
pairs AS MATERIALIZED (  -- the report's rule, as the analysts' views apply it (migrations 0114, 0116),
            -- once per (orgId, email domain) rather than once per row ('' for none)
    SELECT oid, domain,
           meetaudit_classify_domain(nullif(oid, ''), nullif(domain, ''),
                                     CAST(:own_ids AS text[]), CAST(:own_domains AS text[])) AS kind,
           meetaudit_org_key_domain(nullif(oid, ''), nullif(domain, ''), CAST(:own_ids AS text[]),
                                    CAST(:own_domains AS text[]), '') AS org
    FROM (SELECT DISTINCT oid, domain FROM rows) d
),
classified AS (
    SELECT r.*, c.kind, c.org FROM rows r JOIN pairs c USING (oid, domain)
),
outside AS (
    SELECT kind, org, key, meeting_id,
           CASE WHEN key NOT LIKE 'participant:%' THEN key
                WHEN coalesce(display_name, '') = '' OR :show THEN display_name
                ELSE meetaudit_caller_name(display_name, ARRAY(
                    SELECT d.phone_number FROM participant_devices d
                    WHERE d.participant_id = classified.participant_id))
           END AS example
    FROM classified
    WHERE kind <> 'internal'
)
SELECT kind, org, count(DISTINCT meeting_id) AS meetings, count(DISTINCT key) AS people,
       (array_agg(DISTINCT example COLLATE "C" ORDER BY example COLLATE "C"))[1:3] AS examples
FROM outside
GROUP BY kind, org
"""


def outside_organisations(
    session: Session, settings: Settings, period: Period = Period()
) -> list[OutsideOrganisation]:
    """Which outside organisations were admitted to meetings of the period, and how often."""
    _quick(session)
    own_ids = sorted({o.strip().lower() for o in settings.org_ids if o.strip()})
    own_domains = sorted({d.strip().lower().lstrip("@") for d in settings.org_domains if d.strip()})
    rows = session.execute(
        text(_ORGS_SQL),
        {"start": period.start, "end": period.end, "own_ids": own_ids,
         "own_domains": own_domains, "show": settings.show_phone_numbers},
    ).all()  # fmt: skip
    out = [
        OutsideOrganisation(r.kind, r.org, r.meetings, r.people, list(r.examples or []))
        for r in rows
    ]
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
    _quick(session)
    if session.scalar(select(Meeting.meeting_id).where(Meeting.meeting_id == wanted)):
        return [wanted]
    return list(
        session.scalars(
            select(Meeting.meeting_id)
            .where(Meeting.meeting_id.like(_like_pattern(wanted, anywhere=False), escape="\\"))
            .order_by(Meeting.start_at, Meeting.meeting_id)
            .limit(limit)
        )
    )


def meeting_roster(
    session: Session, meeting_id: str, settings: Settings
) -> tuple[Meeting | None, list[RosterLine], list[str]]:
    """A meeting, everyone who joined it, and the invitees who never came."""
    _quick(session)
    meeting = session.get(Meeting, meeting_id, options=[defer(Meeting.raw)])
    if meeting is None:
        return None, [], []
    invitees = {
        email: name or shown or ""
        for email, name, shown in session.execute(
            select(Invitee.email_norm, Invitee.display_name, Invitee.email).where(
                Invitee.meeting_id == meeting_id
            )
        )
        if email
    }
    participants = session.scalars(
        select(Participant)
        .options(defer(Participant.raw))
        .where(Participant.meeting_id == meeting_id)
        .order_by(Participant.display_name)
    ).all()
    devices: dict[str, list[ParticipantDevice]] = defaultdict(list)
    for d in session.scalars(
        select(ParticipantDevice)
        .options(defer(ParticipantDevice.raw))
        .where(ParticipantDevice.meeting_id == meeting_id)
    ):
        devices[d.participant_id].append(d)
    phones: dict[str, set[str]] = defaultdict(set)
    for p in participants:
        phones[_key_of(p)].update(
            d.phone_number for d in devices[p.participant_id] if d.phone_number
        )
    classified = _classifier(session, settings, _month_of(meeting, settings.zone),
                             (p.email_norm for p in participants
                              if p.email_norm and _org_id_missing(p.org_id)))  # fmt: skip
    lines = []
    came: set[str] = set()
    for p in participants:
        kind, org = classified(p.org_id, p.email, p.email_norm)
        ds = devices[p.participant_id]
        if p.email_norm:
            came.add(p.email_norm)
        lines.append(
            RosterLine(
                caller_name(p.display_name, phones[_key_of(p)], show=settings.show_phone_numbers),
                p.email, kind, org,
                "host" if p.host else "co-host" if p.co_host else "attendee",
                p.state, bool(p.email_norm and p.email_norm in invitees), len(ds),
                _attended_minutes(p, ds),
                sorted({f"{d.device_type or '?'}/{d.audio_type or '?'}" for d in ds}),
            )
        )  # fmt: skip
    absent = sorted(name or email for email, name in invitees.items() if email not in came)
    return meeting, lines, absent


def find_roster(
    session: Session, meeting_id: str, settings: Settings
) -> tuple[Meeting, list[RosterLine], list[str]]:
    """:func:`meeting_roster` of the stored meeting whose id is, or begins with, ``meeting_id``
    (as ``investigate meetings`` shows it); none, or several, is an error that says what to do."""
    ids = meeting_ids_like(session, meeting_id, limit=(shown := 10))
    if len(ids) > 1:
        more = " (and more)" if len(ids) == shown else ""
        raise MeetauditError(
            f"{meeting_id!r} begins the ids of several stored meetings: {', '.join(ids)}{more};"
            " give more of the id"
        )
    meeting, lines, absent = meeting_roster(session, ids[0] if ids else meeting_id, settings)
    if meeting is None:
        raise MeetauditError(
            f"no stored meeting's id is or begins with {meeting_id!r}; find the id with"
            " `meetaudit investigate meetings`"
        )
    return meeting, lines, absent


def roster_heading(meeting: Meeting, zone: dt.tzinfo) -> list[str]:
    """What an answer about one meeting says before its roster: its id, title, time, host."""
    return [
        f"Meeting {terminal_text(meeting.meeting_id, whole=True)}",
        f"{terminal_text(meeting.title)} — {local_time(meeting.start_at, zone)} to"
        f" {local_time(meeting.end_at, zone)} ({zone_name(zone)}),"
        f" host {terminal_text(meeting.host_email, whole=True)}",
    ]


def _month_of(meeting: Meeting, zone: dt.tzinfo) -> Period:
    """The calendar month (in ``zone``) of a meeting: the period of the report that holds it."""
    if meeting.start_at is None:
        return Period()
    local = meeting.start_at.astimezone(zone)
    first = dt.datetime(local.year, local.month, 1, tzinfo=zone)
    nxt = dt.datetime(local.year + (local.month == 12), local.month % 12 + 1, 1, tzinfo=zone)
    return Period(first.astimezone(dt.UTC), nxt.astimezone(dt.UTC))


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


def _host_clause(session: Session, host: str) -> ColumnElement[bool]:
    """A meeting's host as a person is found (:func:`resolve`): whole address, else a fragment."""
    typed = host.strip()
    email = func.lower(func.trim(Meeting.host_email))
    if "@" in typed:
        address = normalise_email(typed) or ""
        if session.scalar(select(literal(1)).where(email == address).limit(1)):
            exact: ColumnElement[bool] = email == address
            return exact
    pattern = _like_pattern(typed.lower(), anywhere=True)
    folded = _like_pattern(_fold(session, typed), anywhere=True)
    fragment: ColumnElement[bool] = or_(
        email.like(pattern, escape="\\"),
        func.meetaudit_fold(Meeting.host_display_name).like(folded, escape="\\"),
    )
    return fragment


def find_meetings(
    session: Session,
    *,
    title: str | None = None,
    host: str | None = None,
    period: Period = Period(),
    limit: int = 500,
) -> list[MeetingMatch]:
    """Meetings by title and/or host, newest first.

    ``title`` is a fragment matched anywhere in the title, any case (``board`` also finds
    "Onboarding"); ``host`` is found as a person is (:func:`resolve`): the host's whole
    email address, or a fragment of it or of the host's name.
    """
    _quick(session)
    query = select(Meeting).options(defer(Meeting.raw)).where(period.clause())
    if title:
        pattern = _like_pattern(title.strip().lower(), anywhere=True)
        query = query.where(func.lower(Meeting.title).like(pattern, escape="\\"))
    if host:
        query = query.where(_host_clause(session, host))
    meetings = session.scalars(query.order_by(Meeting.start_at.desc()).limit(limit)).all()
    return [
        MeetingMatch(m.meeting_id, m.title, m.start_at, m.end_at, m.host_email,
                     m.participant_count, m.invitee_count, m.complete_at is not None)
        for m in meetings
    ]  # fmt: skip


# -- a phone number, a device, a person's timeline ------------------------------------------------


def _digits(value: str | None) -> str:
    return "".join(ch for ch in value or "" if ch.isdigit())


#: The indexed form of a phone number (migration 0112): its digits, last digit first.
def _reversed_digits(column: Any) -> Any:
    return func.reverse(func.regexp_replace(column, r"\D", "", "g"))


@dataclass
class PhoneCall:
    """One session joined from a phone number: who, when, which meeting (number masked)."""

    phone_number: str | None
    person_key: str
    display_name: str | None
    email: str | None
    meeting_id: str
    title: str | None
    start_at: dt.datetime | None
    joined_at: dt.datetime | None
    left_at: dt.datetime | None
    call_type: str | None
    admitted: bool


def _masked_caller(name: str | None, number: str | None, *, show: bool) -> str | None:
    """A caller's name in a phone answer: masked when it is (a form of) the number searched.

    Stricter than :func:`caller_name`: "0041 44 555 01 88" is the number +41445550188 written
    another way, so the name cannot show the digits that the number hides.
    """
    if show or not name:
        return name
    mine, theirs = _digits(name), _digits(number)
    if mine and theirs and (mine.endswith(theirs) or theirs.endswith(mine)):
        return mask_phone(name)
    return caller_name(name, [number] if number else [], show=show)


def phone_calls(
    session: Session, number: str, settings: Settings, period: Period = Period()
) -> list[PhoneCall]:
    """Who joined from a phone number — the whole number or its last digits — when, where.

    Only the digits count (``+41 44 555 01 88``, ``0188``); numbers, and names that are a
    number, are masked unless ``show_phone_numbers``. Oldest session first.
    """
    digits = _digits(number)
    if not digits:
        return []
    _quick(session)
    rows = session.execute(
        select(ParticipantDevice.phone_number, ParticipantDevice.joined_at,
               ParticipantDevice.left_at, ParticipantDevice.call_type,
               _person_key().label("key"), Participant.display_name, Participant.email,
               Participant.state, Meeting.meeting_id, Meeting.title, Meeting.start_at)
        .join(Participant, Participant.participant_id == ParticipantDevice.participant_id)
        .join(Meeting, Meeting.meeting_id == Participant.meeting_id)
        .where(ParticipantDevice.phone_number.is_not(None),
               _reversed_digits(ParticipantDevice.phone_number).like(
                   _like_pattern(digits[::-1], anywhere=False), escape="\\"),
               period.clause())
        .order_by(Meeting.start_at, ParticipantDevice.joined_at, Participant.participant_id)
    ).all()  # fmt: skip
    show = settings.show_phone_numbers
    return [
        PhoneCall(mask_phone(r.phone_number, show=show), r.key,
                  _masked_caller(r.display_name, r.phone_number, show=show), r.email,
                  r.meeting_id, r.title, r.start_at, r.joined_at, r.left_at, r.call_type,
                  r.state != "lobby")
        for r in rows
    ]  # fmt: skip


@dataclass
class DeviceSessions:
    """A person's sessions from one device (a correlationId) or one client type."""

    person_key: str
    display_name: str | None
    email: str | None
    device_type: str | None
    call_type: str | None
    correlation_id: str | None
    sessions: int
    meetings: int
    first_joined: dt.datetime | None
    last_left: dt.datetime | None
    meeting_ids: list[str] = field(default_factory=list)


#: A client type names many sessions: a person's meetings are listed up to this many.
MEETINGS_LISTED = 20


def device_sessions(
    session: Session, device: str, settings: Settings, period: Period = Period()
) -> list[DeviceSessions]:
    """Who joined from a device: its correlationId exactly, else a client type (``mac``, ``tp``).

    One row per person (and correlationId), most sessions first; a person's meetings are listed
    (up to :data:`MEETINGS_LISTED`, oldest first).
    """
    wanted = device.strip()
    if not wanted:
        return []
    _quick(session)
    d = ParticipantDevice
    if session.scalar(select(literal(1)).where(d.correlation_id == wanted).limit(1)):
        which: ColumnElement[bool] = d.correlation_id == wanted
        correlation: Any = d.correlation_id
    else:
        which = func.lower(d.device_type) == wanted.lower()
        correlation = literal(None, Text)
    key = _person_key()
    rows = session.execute(
        select(key.label("key"), func.min(_c(Participant.display_name)).label("name"),
               func.min(_c(Participant.email)).label("email"),
               func.min(_c(d.device_type)).label("device_type"),
               func.min(_c(d.call_type)).label("call_type"), correlation.label("correlation"),
               func.count().label("sessions"),
               func.count(func.distinct(d.meeting_id)).label("meetings"),
               func.min(d.joined_at).label("first"), func.max(d.left_at).label("last"),
               func.array_agg(aggregate_order_by(d.meeting_id, Meeting.start_at))
               .label("meeting_ids"))
        .join(Participant, Participant.participant_id == d.participant_id)
        .join(Meeting, Meeting.meeting_id == Participant.meeting_id)
        .where(which, period.clause())
        .group_by(key, correlation)
    ).all()  # fmt: skip
    show = settings.show_phone_numbers
    callers = [r.key[len(PARTICIPANT_KEY) :] for r in rows if r.key.startswith(PARTICIPANT_KEY)]
    phones = _phones_by_key(session, _any(Participant.participant_id, callers)) if callers else {}
    out = [
        DeviceSessions(r.key, caller_name(r.name, phones.get(r.key, ()), show=show), r.email,
                       r.device_type, r.call_type, r.correlation, r.sessions, r.meetings,
                       r.first, r.last, list(dict.fromkeys(r.meeting_ids))[:MEETINGS_LISTED])
        for r in rows
    ]  # fmt: skip
    out.sort(key=lambda x: (-x.sessions, x.person_key))
    return out


@dataclass
class TimelineEvent:
    """One thing in a person's timeline: a meeting attended, a lobby wait, an invitation."""

    at: dt.datetime | None
    event: str
    person_key: str
    display_name: str | None
    email: str | None
    meeting_id: str
    title: str | None
    attended_minutes: float
    #: The external organisations among the people admitted with the person (the report's keys).
    organisations_met: list[str] = field(default_factory=list)


#: What a timeline event is.
ATTENDED, LOBBY_WAIT, INVITED_ABSENT = "attended", "lobby only, never admitted", "invited, absent"


def timeline(
    session: Session, who: str | Who, settings: Settings, period: Period = Period()
) -> list[TimelineEvent]:
    """Every meeting a person attended, lobby they waited in, invitation they did not take up.

    In order of time (the meeting's start), person by person; each meeting attended names the
    outside organisations admitted with them, classified as the report classifies them.
    """
    found = _who(session, who)
    if not found.keys:
        return []
    show = settings.show_phone_numbers
    attended = attendance_of(session, found, period, show_phone_numbers=show)
    emails = found.emails
    invitations = (
        session.execute(
            select(
                Invitee.email_norm,
                Invitee.email,
                Invitee.display_name,
                Meeting.meeting_id,
                Meeting.title,
                Meeting.start_at,
            )
            .join(Meeting, Meeting.meeting_id == Invitee.meeting_id)
            .where(_any(Invitee.email_norm, emails), period.clause())
        ).all()
        if emails
        else []
    )
    # Who else was admitted to the meetings the person was admitted to, and their organisations.
    met: dict[str, set[str]] = defaultdict(set)
    mine = {a.meeting_id for a in attended if a.admitted}
    if mine:
        others = session.execute(
            select(Participant.meeting_id, Participant.org_id, Participant.email,
                   Participant.email_norm)
            .where(_any(Participant.meeting_id, mine), _admitted(),
                   ~_any(_person_key(), found.keys))
        ).all()  # fmt: skip
        classified = _classifier(
            session, settings, period,
            (o.email_norm for o in others if _org_id_missing(o.org_id)),
        )  # fmt: skip
        organisation: dict[tuple[str | None, str | None, str | None], str | None] = {}
        for o in others:  # thousands of rows, far fewer people: each classified once
            person = (o.org_id, o.email, o.email_norm)
            if person not in organisation:
                kind, org = classified(*person)
                organisation[person] = org if kind == "external" else None
            if org := organisation[person]:
                met[o.meeting_id].add(org)
    events: list[TimelineEvent] = []
    seen: set[tuple[str, str]] = set()
    minutes_of: dict[tuple[str, str], float] = defaultdict(float)
    for a in attended:
        minutes_of[(a.meeting_id, a.person_key)] += a.attended_minutes
    for a in attended:
        if (a.meeting_id, a.person_key) in seen:
            continue  # one event per meeting and person, however many rows
        seen.add((a.meeting_id, a.person_key))
        minutes = minutes_of[(a.meeting_id, a.person_key)]
        events.append(
            TimelineEvent(a.start_at, ATTENDED if a.admitted else LOBBY_WAIT, a.person_key,
                          a.display_name, a.email, a.meeting_id, a.title, round(minutes, 1),
                          sorted(met[a.meeting_id]) if a.admitted else [])
        )  # fmt: skip
    for i in invitations:
        if (i.meeting_id, i.email_norm) not in seen:
            events.append(
                TimelineEvent(i.start_at, INVITED_ABSENT, i.email_norm, i.display_name, i.email,
                              i.meeting_id, i.title, 0.0)
            )  # fmt: skip
    # People in people_matching's order, which attendance_of's rows already follow.
    order: dict[str, int] = {}
    for a in attended:
        order.setdefault(a.person_key, len(order))
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    events.sort(key=lambda e: (order.get(e.person_key, len(order)), e.person_key,
                               e.at or far, e.meeting_id))  # fmt: skip
    return events


# -- the period searched -------------------------------------------------------------------------


def search_period(
    zone: dt.tzinfo, month: str | None, start: dt.datetime | None, end: dt.datetime | None
) -> Period:
    """The period a question searches, from its options: none given (``month`` ``None``), all
    stored meetings; a month, or both ``start`` and ``end``, that period (:func:`reporting.periods.
    period_from_options`, mistakes a :class:`~reporting.errors.PeriodError`); one of them
    alone, open at the other end. Times without a zone are in ``zone``."""
    from reporting.periods import period_from_options

    if month is None and not (start or end):
        return Period()
    if month is not None or (start and end):
        w = period_from_options(zone, month, start, end, what="the period searched")
        return Period(w.start, w.end)
    return Period(
        start.replace(tzinfo=start.tzinfo or zone) if start else None,
        end.replace(tzinfo=end.tzinfo or zone) if end else None,
    )


def describe_period(period: Period, zone: dt.tzinfo) -> str:
    """The period searched as the investigator reads it, in the configured zone."""
    start, end, z = local_time(period.start, zone), local_time(period.end, zone), zone_name(zone)
    if period.start is not None and period.end is not None:
        return f"{start} to {end} ({z}; the end not included)"
    if period.start is not None:
        return f"from {start} on ({z})"
    if period.end is not None:
        return f"before {end} ({z})"
    return "all stored meetings (no --month or --from/--to given)"


@dataclass
class PeriodRecords:
    """What the records hold for the period searched: stored meetings, and what is missing."""

    stored: int
    #: Listed by a harvest, their participants not stored yet (an interrupted harvest).
    unstored: int = 0
    #: Open recorded gaps: what a harvest could not fetch.
    gaps: int = 0
    #: Time no finished harvest has listed (only for a period with both ends).
    unlisted: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)


def period_records(session: Session, period: Period, *, count: bool = True) -> PeriodRecords:
    """How much of the period the records hold, as ``meetaudit gaps`` tells it (read only).

    Without ``count`` the stored meetings are not counted (``stored`` 0): an answer that found
    something does not say how many meetings the period holds, and counting them all costs.
    """
    _quick(session)
    stored = 0 if not count else session.scalar(
        select(func.count()).select_from(Meeting)
        .where(period.clause(), Meeting.complete_at.is_not(None))
    ) or 0  # fmt: skip
    if period.start is None or period.end is None or period.end <= period.start:
        return PeriodRecords(stored)
    missing = what_is_missing(session, period)  # type: ignore[arg-type] # both ends are set
    open_gaps = [g for g in missing.gaps if g.resolved_at is None and g.superseded_at is None]
    return PeriodRecords(stored, len(missing.unstored), len(open_gaps), missing.unlisted)


def period_notes(records: PeriodRecords, zone: dt.tzinfo, *, found: bool) -> list[str]:
    """What the investigator must know about the records of the period searched.

    When nothing was ``found``: whether the period holds harvested meetings at all. Always: the
    parts of it never harvested, and meetings or gaps a harvest left open, where answers may be
    missing.
    """
    notes = []
    if not found and records.stored:
        n = records.stored
        notes.append(f"The period holds {n:,} harvested meeting{'' if n == 1 else 's'};"
                     " none matches.")  # fmt: skip
    elif not found:
        notes.append(
            "The period holds no harvested meetings at all"
            + (": it has not been harvested." if records.unlisted else ".")
        )
    for start, end in records.unlisted:
        notes.append(
            f"Not harvested: {local_time(start, zone)} to {local_time(end, zone)}"
            f" ({zone_name(zone)}): {UNCOVERED_REASON}."
        )
    if records.unstored:
        notes.append(
            f"{records.unstored:,} meeting(s) of this period listed but their participants not"
            " stored yet; see `meetaudit gaps`."
        )
    if records.gaps:
        notes.append(f"{records.gaps:,} open harvest gap(s) in this period; see `meetaudit gaps`.")
    return notes


# -- output ---------------------------------------------------------------------------------------
# CSV and JSON follow the report exports (reporting/report/exports.py): times ISO 8601 with their
# offset in the configured zone, booleans true/false, lists ';'-separated in CSV, a cell that
# could run as a spreadsheet formula prefixed with an apostrophe. On the terminal, times are shown
# in the configured zone (named in the caption), and ids and emails are never cut: an id shown by
# one command can be copied into the next. Strangers' text reaches the terminal only through
# :func:`terminal_text`: invisible and direction-changing characters shown as their code points,
# as the PDF shows them, and overlong values cut with a marker; CSV and JSON keep values as stored.

_PERSON_FIELDS = ("person_key", "display_name", "email")
#: Shown whole on the terminal, never wrapped or cut (lists: each item whole, one per line).
_WHOLE = frozenset({"meeting_id", "person_key", "email", "host_email", "phone_number", "examples"})
#: Shown stacked in one terminal column, one line each: the identity with its description.
_STACKS = (("meeting_id", "title", "host_email"), ("display_name", "email", "person_key"))
_LINE_PREFIX = {"host_email": "host "}
_LABEL = {"host_email": "host"}
#: A wrapped column is not made narrower than this (or its widest value, if narrower).
_NARROWEST = 10
#: Longest id or email shown: none is longer (an email address has at most 254 characters).
_WHOLE_LIMIT = 320
#: Who was in the lobby only, never admitted: the report's label for it.
LOBBY_ONLY = f"{STATUS_LABELS['lobby_only']}, never admitted:"


def terminal_text(value: Any, *, whole: bool = False) -> str:
    """A stranger's value as the terminal shows it: the PDF's rule, with a length cap.

    Every invisible, direction-changing or undrawable character is shown as its code point
    (``reporting.report.templating.plain_text``), so a right-to-left override cannot make
    "Invoice [U+202E]fdp.exe" read as "Invoice exe.pdf". Values longer than the PDF shows are
    cut with a marker that gives the length; ids and emails (``whole``) are cut only beyond any
    real one's length, so an id can still be copied from one command into the next.
    """
    text = str(value)
    limit = _WHOLE_LIMIT if whole else DEFAULT_LIMIT
    shown = plain_text(text, limit)
    if len(text) > limit:
        shown += f" [{len(text):,} characters; --format json shows all]"
    return shown


def terminal_label(display_name: str | None, email: str | None, person_key: str) -> str:
    """:func:`person_label` made safe for the terminal (:func:`terminal_text`)."""
    return person_label(
        terminal_text(display_name) if display_name else None,
        terminal_text(email, whole=True) if email else None,
        terminal_text(person_key, whole=True),
    )


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


def _shown(value: Any, zone: dt.tzinfo, *, whole: bool = False) -> str:
    """A value in a terminal cell (lists one item a line); ``whole`` for ids and emails."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return local_time(value, zone)
    if isinstance(value, (list, tuple)):
        return "\n".join(terminal_text(v, whole=whole) for v in value)
    return terminal_text(value, whole=whole)


def cell_text(value: Any, zone: dt.tzinfo) -> str:
    """A value of an answer as a table cell shows it on a page (the console's, a dossier's):
    times in ``zone``, lists joined with ``; ``, minutes to one decimal; the page escapes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list | tuple | set):
        return "; ".join(cell_text(v, zone) for v in value)
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def local_time(value: dt.datetime | None, zone: dt.tzinfo) -> str:
    """A time as the terminal shows it: ``2026-10-02 01:24`` in ``zone`` (see :func:`zone_name`)."""
    return "" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def zone_name(zone: dt.tzinfo) -> str:
    """The zone as the settings name it (``Europe/Zurich``; ``UTC``)."""
    return str(getattr(zone, "key", None) or zone.tzname(None) or zone)


def print_rows(
    console: Any,
    rows: Sequence[Any],
    title: str,
    zone: dt.tzinfo,
    person_title: str | None = None,
    *,
    apart: tuple[str, str] | None = None,
) -> None:
    """Rows (dataclasses) as tables on ``console`` (a ``rich.console.Console``).

    Rows about people (with a ``person_key``) get one table per person, titled
    ``person_title`` and the person; columns that do not change within it are left to the title.
    With ``apart`` (a boolean field and a title), a person's rows whose field is false follow in a
    table of their own under that title, so they cannot be read as the others (a meeting waited
    in the lobby of is not a meeting attended).
    """
    from rich.text import Text

    records = [dataclasses.asdict(r) for r in rows]
    if not records:
        console.print(Text(f"{terminal_text(title, whole=True)}: nothing found."))
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
        label = terminal_label(name, email, key)
        same = {f for f in _PERSON_FIELDS if f in group[0] and len({r[f] for r in group}) == 1}
        parts = [(person_title, group)]
        if apart is not None:
            flag, apart_title = apart
            same.add(flag)
            parts = [(person_title, [r for r in group if r[flag]]),
                     (apart_title, [r for r in group if not r[flag]])]  # fmt: skip
        for i, (part_title, part) in enumerate(parts):
            if i and not part:
                continue
            if i:
                console.print()
            if not part:  # the person's first table is always shown, if only to say "none"
                console.print(Text(f"{person_title} {label}", style="table.title"))
                console.print(Text("  none"))
                continue
            _print_table(
                console,
                [{k: v for k, v in r.items() if k not in same} for r in part],
                f"{part_title} {label}",
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
        if f == "person_key" and rec[f] == normalise_email(rec.get("email")):
            return []  # the email says it: a key is shown when it names a caller without one
        text = _shown(rec[f], zone, whole=f in _WHOLE)
        return [_LINE_PREFIX.get(f, "") + line for line in text.split("\n")] if text else []

    def header(column: tuple[str, ...]) -> str:
        return " / ".join(_LABEL.get(f, f.replace("_", " ")) for f in column)

    # Each value made safe for the terminal once (it is measured and printed).
    shown = [{f: lines(rec, f) for f in fields} for rec in records]
    cells = [
        [Text("\n".join(line for f in column for line in rec[f])) for column in columns]
        for rec in shown
    ]
    # Per column: a fixed width if it holds whole values (ids, emails), else a widest (values
    # unwrapped, the header wrapped at its spaces), and what it needs at the least.
    fixed: list[int | None] = []
    widest: list[int | None] = []
    needs: list[int] = []
    for column in columns:
        whole = max((cell_len(line) for r in shown for f in column if f in _WHOLE
                     for line in r[f]), default=0)  # fmt: skip
        other = max((cell_len(line) for r in shown for f in column if f not in _WHOLE
                     for line in r[f]), default=0)  # fmt: skip
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
    console.print(Text(terminal_text(title, whole=True), style="table.title"))
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
    # Written as plain lines (the values are terminal-safe already): a rich grid per row took
    # seconds for the thousands of rows of a busy person's answer.
    labels = {f: f.replace("_", " ") for f in fields}
    label_width = max(cell_len(label) for label in labels.values())
    value_width = max(console.width - label_width - 2, 16)
    out: list[str] = []
    for n_rec, rec in enumerate(records, start=1):
        if n_rec % 1000 == 0:  # written as it goes: memory follows a thousand rows, not all
            console.out("\n".join(out), highlight=False)
            out.clear()
        out.append("")
        for f in fields:
            label = labels[f]
            text = _shown(rec[f], zone, whole=f in _WHOLE)
            folded = [part for line in text.split("\n") for part in _fold_line(line, value_width)]
            for n, part in enumerate(folded):
                head = (
                    label + " " * (label_width - cell_len(label)) if n == 0 else " " * label_width
                )
                out.append(f"{head}  {part}".rstrip())
    console.out("\n".join(out), highlight=False)


def _fold_line(line: str, width: int) -> list[str]:
    """``line`` in pieces of at most ``width`` terminal cells: at spaces where it can be, a word
    longer than a piece cut into pieces (an id or email is folded, never cut short)."""
    from rich.cells import cell_len, chop_cells

    if cell_len(line) <= width:
        return [line]
    pieces: list[str] = []
    current = ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if cell_len(candidate) <= width:
            current = candidate
            continue
        if current:
            pieces.append(current)
        chunks = chop_cells(word, width) if cell_len(word) > width else [word]
        pieces.extend(chunks[:-1])
        current = chunks[-1] if chunks else ""
    pieces.append(current)
    return pieces


# -- questions, as every face asks them ----------------------------------------------------------
# The CLI (`meetaudit investigate …`), the console (its Investigate page and /api/v1/investigate)
# and a case dossier (reporting.report.dossier, asking a logged question again) ask through this
# one table: the same function, the same checks of what was typed, the same notes beside the
# rows. A face only parses its input, records the look in the access log, and shows the answer.

Ask = Callable[[Session, Settings, dict[str, Any], Period], list[Any]]


@dataclass(frozen=True)
class Question:
    """An investigate question as every face asks it: what it asks (``title``, then the value of
    ``subject`` among its arguments), the rows it answers with, how to ask it, and how the
    console's menu offers it (``label``)."""

    title: str
    subject: str | None
    row_type: type
    ask: Ask
    label: str = ""

    @property
    def columns(self) -> list[str]:
        """The fields of its rows, in order (an empty answer still has them)."""
        return [f.name for f in dataclasses.fields(self.row_type)]


def _roster_lines(session: Session, settings: Settings, a: dict[str, Any], p: Period) -> list[Any]:
    return find_roster(session, str(a.get("meeting_id") or ""), settings)[1]


#: Every question of ``meetaudit investigate`` by its name there, in the console's menu order.
QUESTIONS: dict[str, Question] = {
    "meeting": Question("Everyone in meeting", "meeting_id", RosterLine, _roster_lines,
                        "Everyone in one meeting (give its id)"),
    "person": Question("Meetings attended by", "who", Attendance,
                       lambda s, st, a, p: attendance_of(
                           s, a["who"], p, show_phone_numbers=st.show_phone_numbers),
                       "Meetings a person attended"),
    "with": Question("People in meetings with", "who", CoAttendee,
                     lambda s, st, a, p: co_attendees(s, a["who"], st, p), "Who met a person"),
    "devices": Question("Devices used by", "who", DeviceUse,
                        lambda s, st, a, p: devices_of(s, a["who"], st, p),
                        "Devices a person used"),
    "orgs": Question("Outside organisations", None, OutsideOrganisation,
                     lambda s, st, a, p: outside_organisations(s, st, p),
                     "Outside organisations that took part"),
    "meetings": Question("Meetings", "title", MeetingMatch,
                         lambda s, st, a, p: find_meetings(
                             s, title=a.get("title") or None, host=a.get("host") or None,
                             period=p),
                         "Meetings by title"),
    "phone": Question("Sessions joined from phone number", "number", PhoneCall,
                      lambda s, st, a, p: phone_calls(s, a["number"], st, p),
                      "Who joined from a phone number"),
    "device": Question("Sessions from device", "device", DeviceSessions,
                       lambda s, st, a, p: device_sessions(s, a["device"], st, p),
                       "Who joined from a device"),
    "timeline": Question("Timeline of", "who", TimelineEvent,
                         lambda s, st, a, p: timeline(s, a["who"], st, p),
                         "A person's timeline"),
}  # fmt: skip


#: Questions about one person, who must be named; ``devices`` of nobody in particular lists
#: every device (as the command always has).
_SOMEONE = frozenset({"person", "with", "timeline"})


def check_question(name: str, args: dict[str, Any]) -> Question:
    """The question ``name``, once what was typed for it can be asked; else a
    :class:`~reporting.errors.QuestionError` saying what to type (before anything is looked at)."""
    question = QUESTIONS.get(name)
    if question is None:
        raise QuestionError(f"unknown question {name!r}; ask one of {', '.join(QUESTIONS)}")
    typed = str(args.get(question.subject) or "").strip() if question.subject else ""
    if name in _SOMEONE and len(typed) < 2:
        raise QuestionError(
            "say whom to look for: an email address, a name, or part of one (2 characters or more)"
        )
    if question.subject == "number" and sum(ch.isdigit() for ch in typed) < 3:
        raise QuestionError("give the phone number, or at least its last 3 digits")
    return question


@dataclass
class Answered:
    """A question answered, with what the investigator must be told beside its rows."""

    name: str
    columns: list[str]
    rows: list[Any]
    #: The period searched, in words; ``None`` for a question about one meeting.
    searched: str | None
    #: The subject matched nobody's name or address: answered for names close to it.
    close: bool = False
    #: The people the subject matches, when it matches several (each answered apart).
    people: list[PersonMatch] = field(default_factory=list)
    #: Before the rows: the meeting a roster is of (id, title, time, host).
    heading: list[str] = field(default_factory=list)
    #: After the rows: what the records of the period lack; invitees who did not attend.
    notes: list[str] = field(default_factory=list)
    subject: str = ""

    @property
    def before(self) -> list[str]:
        """What is said before the rows: whom they are for, which meeting they are of."""
        return [n for n in (self.close_note, self.matches_note) if n] + self.heading

    @property
    def close_note(self) -> str | None:
        """Says that the answer is for names close to what was typed, when it is."""
        if not self.close:
            return None
        return (
            f"No name or address contains {self.subject!r}; answering for the people whose name"
            " is close to it (accents, case and small typos ignored)."
        )

    @property
    def matches_note(self) -> str | None:
        """Says that what was typed matches several people, and how to ask about one."""
        if len(self.people) < 2:
            return None
        return (
            f"{len(self.people)} people match {self.subject!r} (give an email address, or the key"
            " in brackets, to ask about one)"
        )


def answer_question(
    session: Session,
    settings: Settings,
    name: str,
    args: dict[str, Any],
    period: Period = Period(),
) -> Answered:
    """Ask question ``name`` with ``args`` (named as the CLI names them: ``who``,
    ``meeting_id``, ``title``, ``number``, ``device``…) for ``period``, and say what the
    investigator must know beside the rows: the period searched, whether the subject matched
    several people or only close names, what of the period was never harvested, and, when
    nothing was found, whether the period holds harvested meetings at all."""
    question = check_question(name, args)
    subject = str(args.get(question.subject) or "") if question.subject else ""
    if name == "meeting":
        meeting, lines, absent = find_roster(session, subject, settings)
        notes = ["Invited but did not attend: " + "; ".join(terminal_text(a) for a in absent)]
        return Answered(name, question.columns, list(lines), None, subject=subject,
                        heading=roster_heading(meeting, settings.zone),
                        notes=notes if absent else [])  # fmt: skip
    found: Who | None = None
    people: list[PersonMatch] = []
    if question.subject == "who":
        found = resolve(session, subject)  # once, for the matches and for the answer
        people = people_matching(session, found, period,
                                 show_phone_numbers=settings.show_phone_numbers)  # fmt: skip
        args = {**args, "who": found}
    rows = question.ask(session, settings, args, period)
    records = period_records(session, period, count=not rows)
    return Answered(
        name, question.columns, rows, describe_period(period, settings.zone),
        close=bool(found and found.close and found.keys), people=people if len(people) > 1 else [],
        notes=period_notes(records, settings.zone, found=bool(rows)), subject=subject,
    )  # fmt: skip
