"""Plausibility checks: what a schema-valid Webex item must also satisfy to be evidence.

The schemas (:mod:`reporting.webex.schemas`) check types; these checks look at what the values
say. Each named check in :data:`CHECKS` either **refuses** the item — the meeting is not stored,
it becomes a gap whose reason names the check, and the period is not complete while that gap is
open — or **flags** it: the item is stored as Webex gave it, with a named data-quality flag that
the report counts and lists. The rule for choosing: when the item cannot be evidence of *this*
meeting in *this* period (wrong meeting, wrong time, not an instance, not over), it is refused;
when the meeting is real but one detail of a person's record is impossible, the record is kept
(dropping the person would hide an attendance) and flagged.

Times Webex gives as 1970-01-01 are placeholders (``schemas.PLACEHOLDER_EPOCH``): they are
treated as absent here, as the report does, and never make an item implausible.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from reporting.webex import schemas

Action = Literal["refuse", "flag"]

#: How far a join session may lie outside its meeting's actual start and end (people join the
#: lobby early, the last device may be recorded leaving late).
SESSION_SLACK = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Check:
    """One named check: what it refuses or flags, and why (for the README and method page)."""

    name: str
    action: Action
    applies_to: str
    label: str
    why: str


CHECKS: dict[str, Check] = {
    c.name: c
    for c in (
        Check("meeting_not_ended", "refuse", "meeting list item",
              "Listed in a state other than ended",
              "a meeting not over yet (inProgress, lobby, or a state the spec does not know) has "
              "no final participant list; the next harvest fetches it once Webex lists it as "
              "ended. States that never hold a meeting (active, scheduled, ready, missed, "
              "expired) are counted in the run and the manifest, not refused"),
        Check("meeting_not_an_instance", "refuse", "meeting list item",
              "A series or scheduled meeting listed as an instance",
              "meetingType is not 'meeting', or the id is shaped as a series or occurrence id: "
              "its participants would be those of many meetings, or of none"),
        Check("meeting_end_before_start", "refuse", "meeting list item",
              "Meeting ends before it starts",
              "the meeting's times are what places it in a period and bounds its attendance; "
              "impossible times cannot do either"),
        Check("meeting_start_outside_window", "refuse", "meeting list item",
              "Meeting starts outside the window it was listed for",
              "Webex returns the meetings that start in the window asked for; one starting "
              "outside the harvest's window is not filed silently under another month: it is "
              "a gap of the window it was listed for, so that window's report shows it, until "
              "a harvest of the period it starts in stores it"),
        Check("participant_of_other_meeting", "refuse", "participant",
              "Participant of another meeting",
              "a participant whose meetingId names another meeting means the list is not this "
              "meeting's: its attendance cannot be trusted"),
        Check("invitee_of_other_meeting", "refuse", "invitee",
              "Invitee of another meeting",
              "an invitee whose meetingId is neither this meeting nor its series or occurrence "
              "means the invitee list is not this meeting's"),
        Check("device_left_before_joined", "flag", "participant",
              "Left before joining",
              "a join session (or participant) whose leave time precedes its join time; "
              "the person's other details are real, so the record is kept and flagged"),
        Check("negative_duration", "flag", "participant",
              "Negative duration",
              "a join session with a negative durationSecond; kept and flagged"),
        Check("session_outside_meeting", "flag", "participant",
              "Session outside the meeting",
              "a join session more than an hour before the meeting's start or after its end"),
        Check("attended_exceeds_meeting", "flag", "participant",
              "Attended longer than the meeting",
              "the person's sessions merged (or one session's durationSecond) exceed the "
              "meeting's length plus an hour on each side"),
        Check("email_not_address", "flag", "participant or invitee",
              "Email is not an address",
              "an email that is not an address cannot be matched to an invitation or a domain; "
              "the person is kept, and counted as unidentified if nothing else identifies them"),
        Check("org_id_not_uuid", "flag", "participant",
              "orgId is not a Webex organisation id",
              "Webex orgIds are UUIDs (or their ciscospark:// base64 form); a word or name is "
              "not used to classify the person and is never reported as an organisation"),
    )
}  # fmt: skip

_SERIES_ID = re.compile(r"[0-9a-f]{32}\Z", re.IGNORECASE)
_OCCURRENCE_ID = re.compile(r".+_\d{8}T\d{6}Z\Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z", re.IGNORECASE)
# An opaque identifier (UUID-like, not UUID-exact): no spaces, with digits, not a word.
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{7,127}\Z")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+\Z")


@dataclass(frozen=True)
class Refusal:
    """An item refused by ``check``: the reason is the gap's reason."""

    check: str
    reason: str


@dataclass(frozen=True)
class Flag:
    """A data-quality flag on a stored item (``subject_kind`` meeting, participant or invitee)."""

    check: str
    subject_kind: str
    subject_id: str | None
    detail: str


def plausible_org_id(value: str | None) -> bool:
    """Whether ``value`` looks like a Webex organisation id: a UUID or another opaque identifier
    (no spaces, with digits), or the base64 form of ``ciscospark://<region>/ORGANIZATION/<uuid>``;
    a word or company name is not one."""
    if value is None:
        return True
    text = value.strip()
    if _UUID.match(text) or (_IDENTIFIER.match(text) and any(c.isdigit() for c in text)):
        return True
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        return False
    parts = decoded.decode("utf-8", "replace").rsplit("/", 2)
    return (
        len(parts) == 3
        and parts[0].startswith("ciscospark://")
        and parts[1] == "ORGANIZATION"
        and bool(_UUID.match(parts[2]))
    )


def plausible_email(value: str | None) -> bool:
    """Whether ``value`` is shaped as an email address (absent counts as plausible)."""
    return value is None or bool(_EMAIL.match(value.strip()))


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _real(moment: dt.datetime | None) -> dt.datetime | None:
    """A time, or ``None`` for an absent or 1970 placeholder time."""
    if moment is None or moment <= schemas.PLACEHOLDER_EPOCH:
        return None
    return moment


def check_listed_meeting(
    meeting: schemas.Meeting, window_start: dt.datetime, window_end: dt.datetime
) -> Refusal | None:
    """The refusal of a meeting-list item a harvest of ``[window_start, window_end)`` listed,
    if any."""
    if meeting.state != "ended":
        return Refusal("meeting_not_ended", f"listed as an ended meeting but its state is "
                       f"{meeting.state!r}; it is not stored until Webex lists it as ended — "
                       "run the harvest again later")  # fmt: skip
    shape = (
        "a series id"
        if _SERIES_ID.match(meeting.id) or meeting.id == meeting.meeting_series_id
        else "an occurrence id"
        if _OCCURRENCE_ID.match(meeting.id)
        else None
    )
    if meeting.meeting_type != "meeting" or shape is not None:
        what = (
            f"its meetingType is {meeting.meeting_type!r}"
            if meeting.meeting_type != "meeting"
            else f"its id is {shape}"
        )
        return Refusal("meeting_not_an_instance", f"listed as a meeting instance but {what}, "
                       "not an instance's; it is not stored (its participants would not be those "
                       "of one meeting) — ask Webex support why the listing returns it")  # fmt: skip
    assert meeting.start is not None and meeting.end is not None  # required by the schema
    if meeting.end < meeting.start:
        return Refusal("meeting_end_before_start", f"ends ({_utc(meeting.end)}) before it starts "
                       f"({_utc(meeting.start)}); it is not stored — ask Webex support to correct "
                       "the meeting's times")  # fmt: skip
    if meeting.start < window_start or meeting.start >= window_end:
        return Refusal("meeting_start_outside_window", f"listed for {_utc(window_start)} – "
                       f"{_utc(window_end)} but starts {_utc(meeting.start)}, outside that "
                       "window; it is not stored with it. If it really starts then, a harvest "
                       "of the period it starts in stores it and closes this gap; otherwise ask "
                       "Webex support whether the listing or the meeting's start is wrong")  # fmt: skip
    return None


def check_content(
    meeting: schemas.Meeting,
    participants: Sequence[schemas.Participant],
    invitees: Sequence[schemas.Invitee],
) -> tuple[Refusal | None, list[Flag]]:
    """Check one meeting's participants and invitees: a refusal (the first found), else the
    flags to store with them."""
    own = {meeting.id}
    for p in participants:
        if p.meeting_id is not None and p.meeting_id not in own:
            who = p.id or p.email or "without id"
            return Refusal("participant_of_other_meeting", f"participant {who} belongs to meeting "
                           f"{p.meeting_id}, not to this one; the participant list is not stored "
                           "— ask Webex support, then run the harvest again"), []  # fmt: skip
    related = own | {i for i in (meeting.meeting_series_id, meeting.scheduled_meeting_id) if i}
    for inv in invitees:
        if inv.meeting_id not in related:
            return Refusal("invitee_of_other_meeting", f"invitee {inv.id} belongs to meeting "
                           f"{inv.meeting_id}, neither this meeting nor its series or occurrence; "
                           "the invitee list is not stored — ask Webex support, then run the "
                           "harvest again"), []  # fmt: skip
    flags: list[Flag] = []
    for index, p in enumerate(participants):
        flags.extend(_participant_flags(meeting, index, p))
    for inv in invitees:
        if not plausible_email(inv.email):
            flags.append(Flag("email_not_address", "invitee", inv.id,
                              f"email {inv.email[:80]!r} is not an address"))  # fmt: skip
    return None, flags


def _participant_flags(
    meeting: schemas.Meeting, index: int, p: schemas.Participant
) -> Iterable[Flag]:
    pid = p.id or f"{meeting.id}#missing-id-{index}"

    def flag(check: str, detail: str) -> Flag:
        return Flag(check, "participant", pid, detail)

    assert meeting.start is not None and meeting.end is not None
    earliest, latest = meeting.start - SESSION_SLACK, meeting.end + SESSION_SLACK
    allowed = (meeting.end - meeting.start + 2 * SESSION_SLACK).total_seconds()
    spans: list[tuple[dt.datetime | None, dt.datetime | None]] = [
        (_real(d.joined_time), _real(d.left_time)) for d in p.devices
    ]
    if not spans:
        spans = [(_real(p.joined_time), _real(p.left_time))]
    spans += [(_real(b.joined_time), _real(b.left_time)) for b in p.breakout_sessions_attended]
    backwards = [(j, left) for j, left in spans if j and left and left < j]
    if backwards:
        j, left = backwards[0]
        yield flag("device_left_before_joined", f"a session left {_utc(left)} before joining "
                   f"{_utc(j)}")  # fmt: skip
    negative = [d.duration_second for d in p.devices if (d.duration_second or 0) < 0]
    if negative:
        yield flag("negative_duration", f"a session lasts {negative[0]:g} seconds")
    outside = [t for pair in spans for t in pair if t is not None and not earliest <= t <= latest]
    if outside:
        yield flag("session_outside_meeting", f"a session time {_utc(outside[0])} is outside the "
                   f"meeting ({_utc(meeting.start)} – {_utc(meeting.end)}) by more than an hour")  # fmt: skip
    merged = _union_seconds([(j, left) for j, left in spans if j and left and left > j])
    longest = max((d.duration_second or 0 for d in p.devices), default=0)
    attended = max(merged, longest)
    if attended > allowed:
        yield flag("attended_exceeds_meeting", f"{attended / 60:,.0f} minutes attended in a "
                   f"{(meeting.end - meeting.start).total_seconds() / 60:,.0f}-minute meeting")  # fmt: skip
    if not plausible_email(p.email):
        assert p.email is not None
        yield flag("email_not_address", f"email {p.email[:80]!r} is not an address")
    if not plausible_org_id(p.org_id):
        assert p.org_id is not None
        yield flag("org_id_not_uuid", f"orgId {p.org_id[:80]!r} is not a Webex organisation id")


def _union_seconds(spans: list[tuple[dt.datetime, dt.datetime]]) -> float:
    total = 0.0
    current: tuple[dt.datetime, dt.datetime] | None = None
    for s, e in sorted(spans):
        if current is None or s > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = (s, e)
        elif e > current[1]:
            current = (current[0], e)
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return total
