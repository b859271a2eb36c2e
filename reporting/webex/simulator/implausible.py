"""Implausible-but-schema-valid data the simulator can serve, one named fault per check.

Each fault spoils the items of the meetings :meth:`FaultPlan.implausible_target` picks (a stable
hash of the meeting id), so a test knows which meetings to expect refused or flagged. The names
are those of the plausibility checks (``reporting.webex.plausibility.CHECKS``) plus
``missing_start`` (a list item without the ``start`` the spec requires) and
``scheduled_as_instance`` (an occurrence id listed as an instance).
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

JSON = dict[str, Any]

MEETING_FAULTS = (
    "missing_start",
    "meeting_not_ended",
    "meeting_not_an_instance",
    "scheduled_as_instance",
    "meeting_end_before_start",
    "meeting_start_outside_window",
)
PARTICIPANT_FAULTS = (
    "participant_of_other_meeting",
    "device_left_before_joined",
    "negative_duration",
    "session_outside_meeting",
    "attended_exceeds_meeting",
    "email_not_address",
    "org_id_not_uuid",
)
INVITEE_FAULTS = ("invitee_of_other_meeting",)
IMPLAUSIBLE_FAULTS = MEETING_FAULTS + PARTICIPANT_FAULTS + INVITEE_FAULTS
OTHER_MEETING_ID = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f_I_111111111111111111"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def spoil_meeting(meeting: JSON, faults: frozenset[str]) -> JSON:
    """A copy of a meeting-list item with the listing faults of ``faults`` applied."""
    item = copy.deepcopy(meeting)
    start = _time(item["start"])
    if "missing_start" in faults:
        item.pop("start", None)
    if "meeting_not_ended" in faults:
        item["state"] = "inProgress"
    if "meeting_not_an_instance" in faults:
        item["id"] = item["meetingSeriesId"]
        item["meetingType"] = "meetingSeries"
    if "scheduled_as_instance" in faults:
        item["id"] = f"{item['meetingSeriesId']}_{start:%Y%m%dT%H%M%S}Z"
        item["meetingType"] = "scheduledMeeting"
    if "meeting_end_before_start" in faults:
        item["end"] = _iso(start - timedelta(minutes=30))
    if "meeting_start_outside_window" in faults:
        shifted = start.replace(year=1894)
        item["start"] = _iso(shifted)
        item["end"] = _iso(shifted + timedelta(hours=1))
    return item


def _first(items: list[JSON], wanted: Any) -> JSON | None:
    return next((i for i in items if wanted(i)), None)


def _timed_device(p: JSON) -> JSON | None:
    return _first(
        p.get("devices") or [],
        lambda d: "joinedTime" in d and "leftTime" in d and not d["joinedTime"].startswith("1970"),
    )


def spoil_participants(items: list[JSON], meeting: JSON, faults: frozenset[str]) -> list[JSON]:
    """Copies of a meeting's participants with the participant faults of ``faults`` applied
    (each to the first participant it fits)."""
    out = copy.deepcopy(items)
    start, end = _time(meeting["start"]), _time(meeting["end"])
    timed = _first(out, lambda p: _timed_device(p) is not None)
    if "participant_of_other_meeting" in faults and out:
        out[0]["meetingId"] = OTHER_MEETING_ID
    if timed is not None:
        device = _timed_device(timed)
        assert device is not None
        if "device_left_before_joined" in faults:
            device["joinedTime"], device["leftTime"] = device["leftTime"], device["joinedTime"]
            if device["joinedTime"] == device["leftTime"]:
                device["leftTime"] = _iso(_time(device["joinedTime"]) - timedelta(minutes=5))
        if "negative_duration" in faults:
            device["durationSecond"] = -600
        if "session_outside_meeting" in faults:
            away = start - timedelta(days=3)
            device["joinedTime"], device["leftTime"] = (
                _iso(away),
                _iso(away + timedelta(minutes=30)),
            )
            device["durationSecond"] = 1800
        if "attended_exceeds_meeting" in faults:
            device["durationSecond"] = int((end - start).total_seconds()) * 3 + 7200
    if "email_not_address" in faults:
        person = _first(out, lambda p: p.get("email"))
        if person is not None:
            person["email"] = "not an address"
    if "org_id_not_uuid" in faults and out:
        out[0]["orgId"] = "Globex Corporation"
    return out


def spoil_invitees(items: list[JSON], faults: frozenset[str]) -> list[JSON]:
    """Copies of a meeting's invitees with the invitee faults of ``faults`` applied."""
    out = copy.deepcopy(items)
    if "invitee_of_other_meeting" in faults and out:
        out[0]["meetingId"] = OTHER_MEETING_ID
    return out
