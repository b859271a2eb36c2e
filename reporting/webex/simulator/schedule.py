"""Derived views of a simulated org: meeting series, scheduled occurrences, times in a zone.

The org stores only meeting *instances* (what a harvest reads). The real API also answers for
the series and the scheduled occurrences those instances belong to (``meetingType`` of
``meetingSeries`` / ``scheduledMeeting``, series and occurrence ids passed as ``meetingId``), and
renders times in the zone a ``timezone`` header names. This module builds those answers from the
instances, without touching the org's shared dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reporting.webex.simulator.org import PLACEHOLDER_TIME, SimulatedOrg

JSON = dict[str, Any]

#: Fields of ``MeetingObjectForListMeeting`` that only describe an instance (the spec says the
#: ``has*`` flags and ``scheduledMeetingId`` apply to instances only).
_INSTANCE_ONLY = (
    "scheduledMeetingId",
    "hasChat",
    "hasRecording",
    "hasTranscription",
    "hasClosedCaption",
    "hasPolls",
    "hasQA",
    "hasSlido",
    "hostDidJoin",
    "attendeeDidJoin",
)

#: Fields ``MeetingObjectForListMeeting`` declares and ``MeetingSeriesObject`` (the answer of
#: ``GET /meetings/{meetingId}``) does not: dropped from that answer.
LIST_ONLY_FIELDS = (*_INSTANCE_ONLY, "meetingSeriesId", "isModified")

#: Participant fields holding a time, at the top level and inside devices / breakout sessions.
_PARTICIPANT_TIMES = ("joinedTime", "leftTime", "meetingStartTime")


@dataclass(frozen=True, slots=True)
class Group:
    """Instances sharing one series or one scheduled occurrence id, in start order."""

    id: str
    kind: str  # "meetingSeries" | "scheduledMeeting"
    instances: tuple[JSON, ...]


def group_instances(org: SimulatedOrg) -> dict[str, Group]:
    """Every series id and scheduled occurrence id of the org, mapped to its instances."""
    series: dict[str, list[JSON]] = {}
    occurrences: dict[str, list[JSON]] = {}
    for meeting in org.meetings:
        series.setdefault(meeting["meetingSeriesId"], []).append(meeting)
        occurrences.setdefault(meeting["scheduledMeetingId"], []).append(meeting)
    groups = {k: Group(k, "meetingSeries", tuple(v)) for k, v in series.items()}
    groups.update({k: Group(k, "scheduledMeeting", tuple(v)) for k, v in occurrences.items()})
    return groups


def scheduled_start(occurrence_id: str) -> datetime:
    """The scheduled start encoded in an occurrence id (``<series>_20191101T120000Z``)."""
    stamp = occurrence_id.rsplit("_", 1)[1]
    return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(instance: JSON) -> timedelta:
    return datetime.fromisoformat(instance["end"]) - datetime.fromisoformat(instance["start"])


def _base(org: SimulatedOrg, first: JSON, new_id: str, meeting_type: str) -> JSON:
    """A copy of ``first`` re-identified as a series or occurrence, instance-only fields gone.

    Series and occurrences carry a meeting number (the spec drops it only for ended instances);
    the one of their first instance stands for all of them.
    """
    out = {k: v for k, v in first.items() if k not in _INSTANCE_ONLY}
    out["id"] = new_id
    out["meetingType"] = meeting_type
    out["meetingNumber"] = str(org.meeting_number(first["id"]))
    telephony = dict(out["telephony"])
    telephony["links"] = [
        {**link, "href": link["href"].replace(first["id"], new_id)} for link in telephony["links"]
    ]
    out["telephony"] = telephony
    out.pop("links", None)  # breakout-session links name an instance
    return out


def occurrence_object(org: SimulatedOrg, group: Group, now: datetime) -> JSON:
    """The ``scheduledMeeting`` object of an occurrence: its scheduled (not actual) times.

    Its state is ``inProgress`` while an instance runs, ``ended`` once one ran and the slot is
    over, ``ready`` before that.
    """
    first = group.instances[0]
    start = scheduled_start(group.id)
    end = start + _duration(first)
    out = _base(org, first, group.id, "scheduledMeeting")
    out.update(start=_iso_z(start), end=_iso_z(end), isModified=False)
    if any(m["state"] == "inProgress" for m in group.instances):
        out["state"] = "inProgress"
    else:
        out["state"] = "ended" if end <= now else "ready"
    return out


def series_object(
    org: SimulatedOrg, group: Group, occurrences: Iterable[Group], now: datetime
) -> JSON:
    """The ``meetingSeries`` object: times of its first occurrence; ``active`` while an
    occurrence is still to come or running, ``expired`` once all are over.

    ``meetingSeriesId`` is its own id: the list schema requires the field on every item.
    """
    ordered = sorted(occurrences, key=lambda g: scheduled_start(g.id))
    first = ordered[0]
    start = scheduled_start(first.id)
    end = start + _duration(first.instances[0])
    out = _base(org, group.instances[0], group.id, "meetingSeries")
    out.update(start=_iso_z(start), end=_iso_z(end), meetingSeriesId=group.id)
    live = [occurrence_object(org, g, now)["state"] for g in ordered]
    out["state"] = "active" if any(s in ("inProgress", "ready") for s in live) else "expired"
    return out


def parse_zone(raw: str | None) -> ZoneInfo | None:
    """The IANA zone a ``timezone`` header names; ``None`` without the header.

    Raises ``ValueError`` for a name the IANA database does not know.
    """
    if raw is None:
        return None
    name = raw.strip()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"Invalid timezone: '{raw}'.") from None


def render_time(value: Any, zone: ZoneInfo) -> Any:
    """``value`` (an ISO 8601 UTC time) as the same instant in ``zone``, keeping milliseconds
    when it had them. The ``1970-01-01`` placeholder is a marker, not a time: left as is."""
    if not isinstance(value, str) or value == PLACEHOLDER_TIME:
        return value
    moment = datetime.fromisoformat(value).astimezone(zone)
    text = moment.isoformat(timespec="milliseconds" if "." in value else "seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def meeting_renderer(zone: ZoneInfo) -> Callable[[JSON], JSON]:
    """Render a meeting's ``start``/``end`` in ``zone`` and name that zone in ``timezone``
    (the spec: ``timezone`` is the zone of ``start`` and ``end``)."""

    def render(meeting: JSON) -> JSON:
        out = dict(meeting)
        for key in ("start", "end"):
            out[key] = render_time(meeting[key], zone)
        out["timezone"] = zone.key
        return out

    return render


def _times_in(entry: JSON, zone: ZoneInfo) -> JSON:
    out = dict(entry)
    for key in _PARTICIPANT_TIMES:
        if key in out:
            out[key] = render_time(out[key], zone)
    return out


def participant_renderer(zone: ZoneInfo) -> Callable[[JSON], JSON]:
    """Render every time of a participant (its own, its devices', its breakout sessions')."""

    def render(participant: JSON) -> JSON:
        out = _times_in(participant, zone)
        for nested in ("devices", "breakoutSessionsAttended"):
            if nested in out:
                out[nested] = [_times_in(d, zone) for d in out[nested]]
        return out

    return render


def report_renderer(zone: ZoneInfo) -> Callable[[JSON], JSON]:
    """Render an attendee-report row's ``joinedTime``/``leftTime``."""

    def render(row: JSON) -> JSON:
        return _times_in(row, zone)

    return render
