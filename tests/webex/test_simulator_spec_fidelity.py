"""The simulator honours every parameter the official spec defines for the operations it serves.

For each of ``GET /meetings``, ``/meetings/{meetingId}``, ``/meetingParticipants``,
``/meetingParticipants/{participantId}``, ``/meetingInvitees``, ``/meetingReports/attendees``,
``/people/me`` and ``/meetingPreferences/sites`` a parameter either changes the answer the way the spec says (asserted against the org's own
data) or is refused with the spec's error body: a simulator that silently ignored one would let
a harvester bug that depends on it pass. Every 200 body is validated against the vendored spec's
response schema, as written and in a strict copy that rejects undeclared fields.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from jsonschema import Draft4Validator

from reporting.webex.simulator import (
    PLACEHOLDER_TIME,
    FaultPlan,
    SimulatedOrg,
    Simulator,
    TokenOwner,
    generate_org,
)
from tests.webex.openapi import ERROR_SCHEMA, response_content_type, response_validators

START = datetime(2024, 5, 1, tzinfo=UTC)
END = START + timedelta(days=14)
NOW = END + timedelta(hours=2)
AUTH = {"Authorization": "Bearer simulated-token"}
BASE = "https://webexapis.com/v1"
#: A window holding every meeting of the org, the live ones included.
ALL = {"from": START.isoformat(), "to": (NOW + timedelta(days=1)).isoformat(), "max": "100"}
PATHS = [
    "/meetings",
    "/meetings/{meetingId}",
    "/meetingParticipants",
    "/meetingParticipants/{participantId}",
    "/meetingInvitees",
    "/meetingReports/attendees",
    "/people/me",
    "/meetingPreferences/sites",
]
SERIES_ID = re.compile(r"[0-9a-f]{32}")
OCCURRENCE_ID = re.compile(r"[0-9a-f]{32}_\d{8}T\d{6}Z")
INSTANCE_ID = re.compile(r"[0-9a-f]{32}_I_\d+")
Validators = dict[str, tuple[Draft4Validator, Draft4Validator]]


@pytest.fixture(scope="module")
def validators() -> Validators:
    """The official and strict 200 validators of every operation served."""
    return response_validators(PATHS)


@pytest.fixture(scope="module")
def org() -> SimulatedOrg:
    """An org with ended meetings, one that just ended and one still running at ``NOW``."""
    return generate_org(start=START, end=END, live_at=NOW)


@pytest.fixture
def client(org: SimulatedOrg) -> httpx.Client:
    sim = Simulator(org, now=NOW, faults=FaultPlan(attendee_report_forbidden=False))
    return httpx.Client(transport=httpx.MockTransport(sim.handle_sync), base_url=BASE, headers=AUTH)


def _ok(validators: Validators, spec_path: str, response: httpx.Response) -> Any:
    """The body of a 200 answer after checking content type and both schemas."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == response_content_type(spec_path)
    body = response.json()
    for validator in validators[spec_path]:
        errors = [e.message for e in validator.iter_errors(body)][:3]
        assert not errors, f"{spec_path}: {errors}"
    return body


def _items(validators: Validators, spec_path: str, response: httpx.Response) -> list[Any]:
    """The items of a validated page that is the whole listing (no next link)."""
    body = _ok(validators, spec_path, response)
    assert "next" not in response.links, "the test expects a single page"
    items: list[Any] = body["items"]
    return items


def _refused(response: httpx.Response, status: int) -> str:
    """The description of an error answer with the spec's error body."""
    assert response.status_code == status, response.text
    body = response.json()
    Draft4Validator(ERROR_SCHEMA).validate(body)
    assert body["trackingId"] == response.headers["trackingid"]
    description: str = body["errors"][0]["description"]
    return description


def _start(item: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(item["start"])


def _scheduled(occurrence_id: str) -> datetime:
    return datetime.strptime(occurrence_id.rsplit("_", 1)[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _multi_instance_series(org: SimulatedOrg) -> str:
    """A series with at least two ended instances."""
    counts: dict[str, int] = {}
    for meeting in org.meetings:
        if meeting["state"] == "ended":
            counts[meeting["meetingSeriesId"]] = counts.get(meeting["meetingSeriesId"], 0) + 1
    return next(sid for sid, n in counts.items() if n >= 2)


def _live(org: SimulatedOrg) -> dict[str, Any]:
    return next(m for m in org.meetings if m["state"] == "inProgress")


# ---------------------------------------------------------------------------------------------
# GET /meetings: meetingType, meetingSeriesId, state, windows
# ---------------------------------------------------------------------------------------------


def test_meeting_type_meeting_lists_instances(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    items = _items(
        validators, "/meetings", client.get("/meetings", params={**ALL, "meetingType": "meeting"})
    )
    assert [m["id"] for m in items] == [m["id"] for m in org.meetings]
    assert all(m["meetingType"] == "meeting" and INSTANCE_ID.fullmatch(m["id"]) for m in items)


def test_meeting_type_scheduled_meeting_lists_occurrences(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    params = {**ALL, "meetingType": "scheduledMeeting"}
    items = _items(validators, "/meetings", client.get("/meetings", params=params))
    assert {m["id"] for m in items} == {m["scheduledMeetingId"] for m in org.meetings}
    for occurrence in items:
        assert occurrence["meetingType"] == "scheduledMeeting"
        assert OCCURRENCE_ID.fullmatch(occurrence["id"])
        assert occurrence["id"].startswith(occurrence["meetingSeriesId"] + "_")
        assert _start(occurrence) == _scheduled(occurrence["id"])  # scheduled, not actual
        assert "scheduledMeetingId" not in occurrence and "hasRecording" not in occurrence
    live = _live(org)
    states = {m["id"]: m["state"] for m in items}
    assert states[live["scheduledMeetingId"]] == "inProgress"
    assert {s for k, s in states.items() if k != live["scheduledMeetingId"]} == {"ended"}


def test_meeting_type_meeting_series_lists_series_not_instances(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    params = {**ALL, "meetingType": "meetingSeries"}
    items = _items(validators, "/meetings", client.get("/meetings", params=params))
    assert sorted(m["id"] for m in items) == sorted({m["meetingSeriesId"] for m in org.meetings})
    assert all(m["meetingType"] == "meetingSeries" and SERIES_ID.fullmatch(m["id"]) for m in items)
    live_series = _live(org)["meetingSeriesId"]
    assert {m["id"]: m["state"] for m in items}[live_series] == "active"
    assert {m["state"] for m in items if m["id"] != live_series} == {"expired"}
    # A series' times are its first occurrence's scheduled ones.
    first = {}
    for meeting in org.meetings:
        sid, occ = meeting["meetingSeriesId"], meeting["scheduledMeetingId"]
        first[sid] = min(first.get(sid, _scheduled(occ)), _scheduled(occ))
    assert all(_start(m) == first[m["id"]] for m in items)


def test_without_meeting_type_series_are_listed_by_default(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    window = {"from": START.isoformat(), "to": (START + timedelta(days=3)).isoformat()}
    got = _items(validators, "/meetings", client.get("/meetings", params={**window, "max": 100}))
    want = {
        m["meetingSeriesId"]
        for m in org.meetings
        if START <= _scheduled(m["scheduledMeetingId"]) < START + timedelta(days=3)
    }
    assert {m["id"] for m in got} == want
    assert len(want) < len({m["meetingSeriesId"] for m in org.meetings})  # the window filtered


def test_series_default_window_looks_ahead_from_now(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    # The spec: for series, no window means [now, now + 7 days); for instances [now - 7 d, now).
    ahead = _items(validators, "/meetings", client.get("/meetings", params={"max": 100}))
    assert ahead == []  # every simulated occurrence was scheduled before NOW
    behind = client.get("/meetings", params={"meetingType": "meeting", "max": 100})
    assert _items(validators, "/meetings", behind)


@pytest.mark.parametrize(
    ("meeting_type", "kinds"),
    [
        (None, {"scheduledMeeting", "meeting"}),
        ("meeting", {"meeting"}),
        ("scheduledMeeting", {"scheduledMeeting"}),
        ("meetingSeries", {"meetingSeries"}),
    ],
)
def test_meeting_series_id_lists_that_series_only(
    client: httpx.Client,
    org: SimulatedOrg,
    validators: Validators,
    meeting_type: str | None,
    kinds: set[str],
) -> None:
    series = _multi_instance_series(org)
    params = {**ALL, "meetingSeriesId": series}
    if meeting_type is not None:
        params["meetingType"] = meeting_type
    items = _items(validators, "/meetings", client.get("/meetings", params=params))
    assert {m["meetingType"] for m in items} == kinds
    mine = [m for m in org.meetings if m["meetingSeriesId"] == series]
    expected: set[str] = set()
    if "meeting" in kinds:
        expected |= {m["id"] for m in mine}
    if "scheduledMeeting" in kinds:
        expected |= {m["scheduledMeetingId"] for m in mine}
    if "meetingSeries" in kinds:
        expected = {series}
    assert {m["id"] for m in items} == expected
    assert [_start(m) for m in items] == sorted(_start(m) for m in items)


@pytest.mark.parametrize(
    ("meeting_type", "state"),
    [("meeting", "inProgress"), ("meetingSeries", "active"), ("scheduledMeeting", "inProgress")],
)
def test_state_filters_every_meeting_type(
    client: httpx.Client, validators: Validators, meeting_type: str, state: str
) -> None:
    everything = _items(
        validators,
        "/meetings",
        client.get("/meetings", params={**ALL, "meetingType": meeting_type}),
    )
    params = {**ALL, "meetingType": meeting_type, "state": state}
    items = _items(validators, "/meetings", client.get("/meetings", params=params))
    assert items and all(m["state"] == state for m in items)
    assert len(items) < len(everything)


# ---------------------------------------------------------------------------------------------
# GET /meetings: flags, scheduledType, integrationTag, hostEmail
# ---------------------------------------------------------------------------------------------

INSTANCE_FLAGS = [
    "hasChat",
    "hasRecording",
    "hasTranscription",
    "hasSummary",
    "hasClosedCaption",
    "hasPolls",
    "hasQA",
    "hasSlido",
]


@pytest.mark.parametrize("flag", INSTANCE_FLAGS)
def test_instance_flags_split_the_instances(
    client: httpx.Client, org: SimulatedOrg, validators: Validators, flag: str
) -> None:
    base = {**ALL, "meetingType": "meeting"}
    yes = _items(validators, "/meetings", client.get("/meetings", params={**base, flag: "true"}))
    no = _items(validators, "/meetings", client.get("/meetings", params={**base, flag: "false"}))
    assert all(m.get(flag, False) is True for m in yes)
    assert all(m.get(flag, False) is False for m in no)
    assert sorted(m["id"] for m in yes + no) == sorted(m["id"] for m in org.meetings)
    _refused(client.get("/meetings", params={**base, flag: "yes"}), 400)


def test_has_recording_actually_filters(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    params = {**ALL, "meetingType": "meeting", "hasRecording": "true"}
    recorded = _items(validators, "/meetings", client.get("/meetings", params=params))
    assert 0 < len(recorded) < len(org.meetings)


def test_instance_flags_do_not_filter_series(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    # The spec: has* flags "only apply to ended meeting instances".
    params = {**ALL, "meetingType": "meetingSeries", "hasRecording": "true"}
    items = _items(validators, "/meetings", client.get("/meetings", params=params))
    assert len(items) == len({m["meetingSeriesId"] for m in org.meetings})


def test_is_modified_filters_scheduled_meetings(
    client: httpx.Client, validators: Validators
) -> None:
    base = {**ALL, "meetingType": "scheduledMeeting"}
    unmodified = _items(
        validators, "/meetings", client.get("/meetings", params={**base, "isModified": "false"})
    )
    modified = _items(
        validators, "/meetings", client.get("/meetings", params={**base, "isModified": "true"})
    )
    assert unmodified and all(m["isModified"] is False for m in unmodified)
    assert modified == []  # no simulated occurrence was modified
    _refused(client.get("/meetings", params={**base, "isModified": "1"}), 400)


@pytest.mark.parametrize(("value", "listed"), [("meeting", True), ("webinar", False)])
def test_scheduled_type_filters(
    client: httpx.Client, validators: Validators, value: str, listed: bool
) -> None:
    for meeting_type in ("meeting", "scheduledMeeting", "meetingSeries"):
        params = {**ALL, "meetingType": meeting_type, "scheduledType": value}
        items = _items(validators, "/meetings", client.get("/meetings", params=params))
        assert bool(items) == listed
        assert all(m["scheduledType"] == value for m in items)


def test_unknown_scheduled_type_and_meeting_type_are_refused(client: httpx.Client) -> None:
    _refused(client.get("/meetings", params={**ALL, "scheduledType": "party"}), 400)
    _refused(client.get("/meetings", params={**ALL, "meetingType": "party"}), 400)


def test_integration_tag_lists_only_tagged_meetings(
    client: httpx.Client, validators: Validators
) -> None:
    params = {**ALL, "meetingType": "meeting", "integrationTag": "JIRA-1234"}
    assert _items(validators, "/meetings", client.get("/meetings", params=params)) == []


def test_host_email_filters_series_and_occurrences(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    host = org.meetings[0]["hostEmail"]
    for meeting_type in ("meetingSeries", "scheduledMeeting"):
        params = {**ALL, "meetingType": meeting_type, "hostEmail": host}
        items = _items(validators, "/meetings", client.get("/meetings", params=params))
        key = "meetingSeriesId" if meeting_type == "meetingSeries" else "scheduledMeetingId"
        want = {
            m[key]
            for m in org.meetings
            if m["hostEmail"] == host or host in org.invitee_emails(m["id"])
        }
        assert {m["id"] for m in items} == want
        assert len(want) < len({m[key] for m in org.meetings})


# ---------------------------------------------------------------------------------------------
# GET /meetings: meetingNumber, webLink, roomId, current
# ---------------------------------------------------------------------------------------------


def test_meeting_number_finds_the_series_and_ignores_the_window(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    meeting = org.meetings[0]
    number = str(org.meeting_number(meeting["id"]))
    # The spec: max, from, to, meetingType and state are ignored for a lookup.
    params = {
        "meetingNumber": number,
        "current": "false",
        "from": END.isoformat(),
        "meetingType": "meeting",
        "state": "missed",
    }
    items = _items(validators, "/meetings", client.get("/meetings", params=params))
    assert [(m["id"], m["meetingType"]) for m in items] == [
        (meeting["meetingSeriesId"], "meetingSeries")
    ]
    # current=true (the default) asks for a running or upcoming occurrence: an expired series
    # has none.
    assert (
        _items(validators, "/meetings", client.get("/meetings", params={"meetingNumber": number}))
        == []
    )


def test_current_meeting_of_a_live_series(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    live = _live(org)
    params = {"meetingNumber": str(org.meeting_number(live["id"]))}
    items = _items(validators, "/meetings", client.get("/meetings", params=params))
    assert [(m["id"], m["state"]) for m in items] == [(live["scheduledMeetingId"], "inProgress")]


def test_web_link_and_room_id_lookups(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    meeting = org.meetings[5]
    params = {"webLink": meeting["webLink"], "current": "false"}
    items = _items(validators, "/meetings", client.get("/meetings", params=params))
    assert [m["id"] for m in items] == [meeting["meetingSeriesId"]]
    by_room = client.get("/meetings", params={"roomId": "Y2lzY29zcGFyazovL3VzL1JPT00vMQ"})
    assert _items(validators, "/meetings", by_room) == []  # no simulated meeting has a space


def test_lookup_keys_are_mutually_exclusive(client: httpx.Client, org: SimulatedOrg) -> None:
    meeting = org.meetings[0]
    params = {"meetingNumber": "123456789", "webLink": meeting["webLink"]}
    assert "mutually exclusive" in _refused(client.get("/meetings", params=params), 400)
    _refused(client.get("/meetings", params={"meetingNumber": "1", "current": "maybe"}), 400)
    _refused(client.get("/meetings", params={**ALL, "current": "maybe"}), 400)


# ---------------------------------------------------------------------------------------------
# timezone header
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("meeting_type", ["meeting", "scheduledMeeting", "meetingSeries"])
def test_timezone_header_renders_meeting_times_in_that_zone(
    client: httpx.Client, validators: Validators, meeting_type: str
) -> None:
    params = {**ALL, "meetingType": meeting_type}
    utc = _items(validators, "/meetings", client.get("/meetings", params=params))
    answer = client.get("/meetings", params=params, headers={"timezone": "Asia/Shanghai"})
    zoned = _items(validators, "/meetings", answer)
    assert [m["id"] for m in zoned] == [m["id"] for m in utc]
    for before, after in zip(utc, zoned, strict=True):
        assert after["timezone"] == "Asia/Shanghai"
        for key in ("start", "end"):
            assert after[key].endswith("+08:00")
            assert datetime.fromisoformat(after[key]) == datetime.fromisoformat(before[key])


def test_unknown_timezone_is_refused(client: httpx.Client, org: SimulatedOrg) -> None:
    bad = {"timezone": "Mars/Olympus_Mons"}
    _refused(client.get("/meetings", params={**ALL, "meetingType": "meeting"}, headers=bad), 400)
    mid = org.meetings[0]["id"]
    _refused(client.get("/meetingParticipants", params={"meetingId": mid}, headers=bad), 400)
    _refused(client.get(f"/meetings/{mid}", headers=bad), 400)


def test_timezone_header_renders_participant_and_device_times(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    # A meeting with the 1970 placeholder somewhere in its participants' or devices' times.
    meeting = next(m for m in org.meetings if PLACEHOLDER_TIME in str(org.participants[m["id"]]))
    params = {"meetingId": meeting["id"], "max": 100}
    plain = _items(
        validators, "/meetingParticipants", client.get("/meetingParticipants", params=params)
    )
    answer = client.get("/meetingParticipants", params=params, headers={"timezone": "Asia/Tokyo"})
    zoned = _items(validators, "/meetingParticipants", answer)
    tokyo = ZoneInfo("Asia/Tokyo")
    pairs = []
    for before, after in zip(plain, zoned, strict=True):
        pairs.append((before, after))
        pairs += zip(before.get("devices", []), after.get("devices", []), strict=True)
    rendered = kept = 0
    for old, new in pairs:
        for key in ("joinedTime", "leftTime", "meetingStartTime"):
            if key not in old:
                continue
            if old[key] == PLACEHOLDER_TIME:
                assert new[key] == PLACEHOLDER_TIME  # a marker, not a time
                kept += 1
                continue
            moment = datetime.fromisoformat(new[key])
            assert moment.utcoffset() == tokyo.utcoffset(moment.replace(tzinfo=None))
            assert moment == datetime.fromisoformat(old[key])
            assert ("." in new[key]) == ("." in old[key])  # milliseconds kept where present
            rendered += 1
    assert rendered > 0 and kept > 0


# ---------------------------------------------------------------------------------------------
# GET /meetingParticipants
# ---------------------------------------------------------------------------------------------


def _busy_meeting(org: SimulatedOrg) -> dict[str, Any]:
    """An ended meeting whose participants joined at several different times."""
    return max(
        (m for m in org.meetings if m["state"] == "ended"),
        key=lambda m: len(
            {p["joinedTime"] for p in org.participants[m["id"]] if "joinedTime" in p}
        ),
    )


def _join_times(org: SimulatedOrg, meeting_id: str) -> dict[str, datetime]:
    return {
        p["id"]: datetime.fromisoformat(p["joinedTime"])
        for p in org.participants[meeting_id]
        if p.get("joinedTime") not in (None, PLACEHOLDER_TIME)
    }


def test_join_time_from_excludes_earlier_joiners(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    meeting = _busy_meeting(org)
    joins = _join_times(org, meeting["id"])
    pivot = sorted(set(joins.values()))[len(set(joins.values())) // 2]
    params = {"meetingId": meeting["id"], "max": 100, "joinTimeFrom": pivot.isoformat()}
    items = _items(
        validators, "/meetingParticipants", client.get("/meetingParticipants", params=params)
    )
    assert {p["id"] for p in items} == {pid for pid, t in joins.items() if t >= pivot}
    assert 0 < len(items) < len(org.participants[meeting["id"]])


def test_join_time_to_is_exclusive(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    meeting = _busy_meeting(org)
    joins = _join_times(org, meeting["id"])
    pivot = sorted(set(joins.values()))[len(set(joins.values())) // 2]
    params = {"meetingId": meeting["id"], "max": 100, "joinTimeTo": pivot.isoformat()}
    items = _items(
        validators, "/meetingParticipants", client.get("/meetingParticipants", params=params)
    )
    assert {p["id"] for p in items} == {pid for pid, t in joins.items() if t < pivot}
    assert items


def test_join_time_window_rules(client: httpx.Client, org: SimulatedOrg) -> None:
    mid = org.meetings[0]["id"]
    too_long = {
        "meetingId": mid,
        "joinTimeFrom": START.isoformat(),
        "joinTimeTo": (START + timedelta(days=91)).isoformat(),
    }
    assert "90 days" in _refused(client.get("/meetingParticipants", params=too_long), 400)
    backwards = {"meetingId": mid, "joinTimeFrom": END.isoformat(), "joinTimeTo": START.isoformat()}
    _refused(client.get("/meetingParticipants", params=backwards), 400)
    _refused(
        client.get("/meetingParticipants", params={"meetingId": mid, "joinTimeFrom": "soon"}), 400
    )


def test_participants_of_a_series_within_meeting_start_times(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    series = _multi_instance_series(org)
    instances = [m for m in org.meetings if m["meetingSeriesId"] == series]
    everyone = {
        "meetingId": series,
        "max": 100,
        "meetingStartTimeFrom": (START - timedelta(days=1)).isoformat(),
        "meetingStartTimeTo": NOW.isoformat(),
    }
    items = _items(
        validators, "/meetingParticipants", client.get("/meetingParticipants", params=everyone)
    )
    assert [p["id"] for p in items] == [
        p["id"] for m in instances for p in org.participants[m["id"]]
    ]
    # meetingStartTimeFrom is exclusive: the first instance's own start leaves it out.
    later = {**everyone, "meetingStartTimeFrom": instances[0]["start"]}
    items = _items(
        validators, "/meetingParticipants", client.get("/meetingParticipants", params=later)
    )
    assert {p["meetingId"] for p in items} == {m["id"] for m in instances[1:]}


def test_series_participants_default_to_the_last_month(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    series = _multi_instance_series(org)
    # NOW is within a month of every meeting: the default window holds them all.
    answer = client.get("/meetingParticipants", params={"meetingId": series, "max": 100})
    items = _items(validators, "/meetingParticipants", answer)
    assert {p["meetingId"] for p in items} == {
        m["id"] for m in org.meetings if m["meetingSeriesId"] == series
    }


def test_participants_of_an_occurrence(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    meeting = org.meetings[3]
    params = {"meetingId": meeting["scheduledMeetingId"], "max": 100}
    items = _items(
        validators, "/meetingParticipants", client.get("/meetingParticipants", params=params)
    )
    same = [m for m in org.meetings if m["scheduledMeetingId"] == meeting["scheduledMeetingId"]]
    assert [p["id"] for p in items] == [p["id"] for m in same for p in org.participants[m["id"]]]


def test_meeting_start_times_are_refused_for_an_instance(
    client: httpx.Client, org: SimulatedOrg
) -> None:
    params = {"meetingId": org.meetings[0]["id"], "meetingStartTimeFrom": START.isoformat()}
    _refused(client.get("/meetingParticipants", params=params), 400)


def test_participants_host_email_for_a_series(client: httpx.Client, org: SimulatedOrg) -> None:
    series = _multi_instance_series(org)
    host = next(m["hostEmail"] for m in org.meetings if m["meetingSeriesId"] == series)
    ok = client.get("/meetingParticipants", params={"meetingId": series, "hostEmail": host})
    assert ok.status_code == 200
    other = {"meetingId": series, "hostEmail": "someone.else@acme.example"}
    _refused(client.get("/meetingParticipants", params=other), 404)


# ---------------------------------------------------------------------------------------------
# GET /meetingParticipants/{participantId}
# ---------------------------------------------------------------------------------------------


def test_get_participant_by_id(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    meeting = org.meetings[2]
    for person in org.participants[meeting["id"]]:
        answer = client.get(f"/meetingParticipants/{person['id']}")
        assert _ok(validators, "/meetingParticipants/{participantId}", answer) == person
    person = org.participants[meeting["id"]][0]
    with_host = client.get(
        f"/meetingParticipants/{person['id']}", params={"hostEmail": meeting["hostEmail"]}
    )
    assert _ok(validators, "/meetingParticipants/{participantId}", with_host) == person


def test_get_participant_refusals(client: httpx.Client, org: SimulatedOrg) -> None:
    meeting = org.meetings[2]
    person = org.participants[meeting["id"]][0]
    _refused(
        client.get(f"/meetingParticipants/{meeting['id']}_{'0' * 8}-0000-4000-8000-{'0' * 12}"), 404
    )
    _refused(client.get("/meetingParticipants/nobody"), 404)
    other = {"hostEmail": "someone.else@acme.example"}
    _refused(client.get(f"/meetingParticipants/{person['id']}", params=other), 404)
    _refused(client.post(f"/meetingParticipants/{person['id']}"), 405)


# ---------------------------------------------------------------------------------------------
# GET /meetings/{meetingId}
# ---------------------------------------------------------------------------------------------


def test_get_meeting_by_instance_occurrence_and_series_id(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    meeting = org.meetings[4]
    ids = {
        meeting["id"]: "meeting",
        meeting["scheduledMeetingId"]: "scheduledMeeting",
        meeting["meetingSeriesId"]: "meetingSeries",
    }
    for meeting_id, meeting_type in ids.items():
        body = _ok(validators, "/meetings/{meetingId}", client.get(f"/meetings/{meeting_id}"))
        assert (body["id"], body["meetingType"]) == (meeting_id, meeting_type)
        assert body["hostEmail"] == meeting["hostEmail"]
    instance = client.get(f"/meetings/{meeting['id']}").json()
    assert (instance["start"], instance["end"]) == (meeting["start"], meeting["end"])


def test_get_meeting_host_email_current_and_timezone(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    live = _live(org)
    series = live["meetingSeriesId"]
    host = {"hostEmail": live["hostEmail"]}
    assert client.get(f"/meetings/{series}", params=host).status_code == 200
    _refused(client.get(f"/meetings/{series}", params={"hostEmail": "x@acme.example"}), 404)
    current = client.get(f"/meetings/{series}", params={"current": "true"})
    body = _ok(validators, "/meetings/{meetingId}", current)
    assert (body["id"], body["state"]) == (live["scheduledMeetingId"], "inProgress")
    expired = org.meetings[0]["meetingSeriesId"]
    assert expired != series
    _refused(client.get(f"/meetings/{expired}", params={"current": "true"}), 404)
    _refused(client.get(f"/meetings/{series}", params={"current": "soon"}), 400)
    zoned = client.get(f"/meetings/{live['id']}", headers={"timezone": "America/New_York"})
    body = _ok(validators, "/meetings/{meetingId}", zoned)
    assert body["start"].endswith("-04:00") and body["timezone"] == "America/New_York"
    assert datetime.fromisoformat(body["start"]) == datetime.fromisoformat(live["start"])


def test_get_meeting_unknown_ids(client: httpx.Client) -> None:
    for unknown in ("0" * 32, "0" * 32 + "_I_123456789012345678", "0" * 32 + "_20240501T090000Z"):
        assert "not found" in _refused(client.get(f"/meetings/{unknown}"), 404)
    _refused(client.get(f"/meetings/{'0' * 32}/globalCallinNumbers"), 404)


# ---------------------------------------------------------------------------------------------
# GET /meetingInvitees
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["meetingSeriesId", "scheduledMeetingId"])
def test_invitees_of_a_series_or_occurrence(
    client: httpx.Client, org: SimulatedOrg, validators: Validators, key: str
) -> None:
    series = _multi_instance_series(org)
    sample = next(m for m in org.meetings if m["meetingSeriesId"] == series)
    meeting_id = sample[key]
    answer = client.get("/meetingInvitees", params={"meetingId": meeting_id, "max": 100})
    items = _items(validators, "/meetingInvitees", answer)
    instances = [m for m in org.meetings if m[key] == meeting_id]
    want = {i["email"].strip().lower() for m in instances for i in org.invitees[m["id"]]}
    emails = [i["email"].strip().lower() for i in items]
    assert sorted(emails) == emails and set(emails) == want and len(emails) == len(want)
    assert {i["meetingId"] for i in items} <= {meeting_id}


def test_invitee_series_host_email_and_panelist(client: httpx.Client, org: SimulatedOrg) -> None:
    series = _multi_instance_series(org)
    wrong = {"meetingId": series, "hostEmail": "x@acme.example"}
    _refused(client.get("/meetingInvitees", params=wrong), 404)
    _refused(client.get("/meetingInvitees", params={"meetingId": series, "panelist": "1"}), 400)
    panelists = client.get("/meetingInvitees", params={"meetingId": series, "panelist": "true"})
    assert panelists.json()["items"] == []  # no simulated invitee is a panelist


# ---------------------------------------------------------------------------------------------
# GET /meetingReports/attendees
# ---------------------------------------------------------------------------------------------

REPORT_WINDOW = {"from": START.isoformat(), "to": END.isoformat(), "max": 1000}


def test_attendee_reports_by_meeting_number_and_title(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    meeting = org.meetings[6]
    base = {**REPORT_WINDOW, "siteUrl": org.site_url}
    number = str(org.meeting_number(meeting["id"]))
    path = "/meetingReports/attendees"
    rows = _items(validators, path, client.get(path, params={**base, "meetingNumber": number}))
    assert rows == org.attendee_reports[meeting["id"]] and rows
    by_title = _items(
        validators, path, client.get(path, params={**base, "meetingTitle": meeting["title"]})
    )
    assert by_title and {r["meetingTitle"] for r in by_title} == {meeting["title"]}
    everything = _items(validators, path, client.get(path, params=base))
    assert len(by_title) < len(everything)


def test_attendee_reports_refuse_series_ids_and_render_timezone(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    meeting = org.meetings[6]
    base = {**REPORT_WINDOW, "siteUrl": org.site_url}
    path = "/meetingReports/attendees"
    for other in (meeting["meetingSeriesId"], meeting["scheduledMeetingId"]):
        _refused(client.get(path, params={**base, "meetingId": other}), 400)
    params = {**base, "meetingId": meeting["id"]}
    zoned = _items(
        validators, path, client.get(path, params=params, headers={"timezone": "Asia/Shanghai"})
    )
    plain = org.attendee_reports[meeting["id"]]
    assert zoned and len(zoned) == len(plain)
    for old, new in zip(plain, zoned, strict=True):
        assert new["joinedTime"].endswith("+08:00")
        assert datetime.fromisoformat(new["joinedTime"]) == datetime.fromisoformat(
            old["joinedTime"]
        )


# ---------------------------------------------------------------------------------------------
# Whose token: GET /people/me, GET /meetingPreferences/sites, and a member's narrower listing
# ---------------------------------------------------------------------------------------------


def _member_client(org: SimulatedOrg) -> tuple[httpx.Client, str]:
    """A client whose token belongs to the host of the first meeting, no administrator."""
    email = org.meetings[0]["hostEmail"]
    sim = Simulator(
        org,
        now=NOW,
        faults=FaultPlan(attendee_report_forbidden=False),
        token_owner=TokenOwner.member(email, org.meetings[0]["hostDisplayName"]),
    )
    client = httpx.Client(
        transport=httpx.MockTransport(sim.handle_sync), base_url=BASE, headers=AUTH
    )
    return client, email


def test_people_me_shows_roles_to_an_administrator_only(
    client: httpx.Client, org: SimulatedOrg, validators: Validators
) -> None:
    admin = _ok(validators, "/people/me", client.get("/people/me"))
    assert admin["roles"] and admin["emails"] and admin["displayName"]
    assert admin["orgId"] and admin["id"]
    member_client, email = _member_client(org)
    member = _ok(validators, "/people/me", member_client.get("/people/me"))
    assert member["emails"] == [email] and "roles" not in member and "licenses" not in member
    assert member["orgId"] == admin["orgId"]
    _refused(client.get("/people/me", params={"callingData": "yes"}), 400)


def test_site_list_of_the_token_and_of_a_user_for_an_administrator(
    org: SimulatedOrg, validators: Validators
) -> None:
    sites = ("acme.webex.com", "acme-eu.webex.com")
    owner = TokenOwner("boss@acme.example", "Big Boss", admin=True, sites=sites)
    sim = Simulator(org, now=NOW, token_owner=owner)
    c = httpx.Client(transport=httpx.MockTransport(sim.handle_sync), base_url=BASE, headers=AUTH)
    path = "/meetingPreferences/sites"
    body = _ok(validators, path, c.get(path))
    assert body["sites"] == [
        {"siteUrl": "acme.webex.com", "default": True},
        {"siteUrl": "acme-eu.webex.com", "default": False},
    ]
    user = _ok(validators, path, c.get(path, params={"userEmail": org.meetings[1]["hostEmail"]}))
    assert user["sites"] == [{"siteUrl": org.site_url, "default": True}]
    _refused(c.get(path, params={"userEmail": "someone@elsewhere.example"}), 404)
    _refused(c.get(path, params={"siteUrl": "other.webex.com"}), 403)
    # A site the owner has but no meeting was held on lists nothing, rather than refusing.
    empty = {**ALL, "meetingType": "meeting", "siteUrl": "acme-eu.webex.com"}
    assert _items(validators, "/meetings", c.get("/meetings", params=empty)) == []


def test_a_members_token_lists_only_their_own_meetings(
    org: SimulatedOrg, validators: Validators
) -> None:
    member, email = _member_client(org)
    own = [
        m["id"]
        for m in org.meetings
        if m["hostEmail"] == email or email in org.invitee_emails(m["id"])
    ]
    others = [m for m in org.meetings if m["id"] not in own]
    assert own and others
    params = {**ALL, "meetingType": "meeting"}
    listed = _items(validators, "/meetings", member.get("/meetings", params=params))
    assert [m["id"] for m in listed] == own
    # hostEmail is for admin-level scopes only: a member's is not used.
    other_host = others[0]["hostEmail"]
    as_other = member.get("/meetings", params={**params, "hostEmail": other_host})
    assert [m["id"] for m in _items(validators, "/meetings", as_other)] == own
    # The site list ignores userEmail for a member: their own sites.
    sites = member.get("/meetingPreferences/sites", params={"userEmail": other_host})
    assert (
        _ok(validators, "/meetingPreferences/sites", sites)["sites"][0]["siteUrl"] == org.site_url
    )
    # Another's meeting is not found; the attendee report needs an admin scope.
    _refused(member.get("/meetingParticipants", params={"meetingId": others[0]["id"]}), 404)
    _refused(member.get("/meetingInvitees", params={"meetingId": others[0]["id"]}), 404)
    _refused(member.get(f"/meetings/{others[0]['id']}"), 404)
    mine = member.get("/meetingParticipants", params={"meetingId": own[0], "max": "100"})
    assert _ok(validators, "/meetingParticipants", mine)["items"]
    report = {**REPORT_WINDOW, "siteUrl": org.site_url}
    _refused(member.get("/meetingReports/attendees", params=report), 403)
