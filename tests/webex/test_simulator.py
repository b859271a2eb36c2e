"""The Webex simulator: spec conformance, realism, determinism, paging, faults, loopback HTTP.

Every 200 page is validated against the official OpenAPI spec in ``tests/fixtures`` (its
schemas as written, plus a stricter copy that also rejects fields the spec does not declare).
The spec gives no body schema for error answers of these operations, so error bodies are checked
against the documented shape ``{"message", "errors": [{"description"}], "trackingId"}``.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import socket
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from reporting.webex.simulator import (
    PLACEHOLDER_TIME,
    ConnectionReset,
    FaultPlan,
    SimulatedOrg,
    Simulator,
    generate_org,
    hostile_names,
    serve,
)
from tests.webex.openapi import ERROR_SCHEMA, openapi_to_jsonschema
from tests.webex.openapi import strict as strict_schema

SPEC_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "webex-meeting.openapi.json"
SPEC_URI = "urn:webex-meeting-openapi"
START = datetime(2024, 5, 1, tzinfo=UTC)
END = START + timedelta(days=14)
NOW = END + timedelta(hours=2)
TOKEN = "simulated-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WINDOW = {
    "meetingType": "meeting",
    "state": "ended",
    "from": START.isoformat(),
    "to": END.isoformat(),
}
BASE = "https://webexapis.com/v1"

# ---------------------------------------------------------------------------------------------
# The official spec as JSON Schema validators
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    """The official Webex meetings OpenAPI document."""
    data: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return data


def _pointer(path: str, status: str, content_type: str) -> str:
    def esc(part: str) -> str:
        return part.replace("~", "~0").replace("/", "~1")

    return f"/paths/{esc(path)}/get/responses/{status}/content/{esc(content_type)}/schema"


RESPONSE_TYPES = {
    "/meetings": "application/json;charset=UTF-8",
    "/meetingParticipants": "application/json",
    "/meetingInvitees": "application/json;charset=UTF-8",
    "/meetingReports/attendees": "application/json;charset=UTF-8",
}


@pytest.fixture(scope="module")
def validators(spec: dict[str, Any]) -> dict[str, tuple[Draft4Validator, Draft4Validator]]:
    """Per endpoint: (official 200 schema, strict copy) validators with ``$ref`` resolution."""
    official = openapi_to_jsonschema(spec)
    strict = strict_schema(official)
    registry: Registry[Any] = Registry().with_resources(
        [
            (SPEC_URI, Resource.from_contents(official, default_specification=DRAFT4)),
            (SPEC_URI + "-strict", Resource.from_contents(strict, default_specification=DRAFT4)),
        ]
    )
    out = {}
    for path, content_type in RESPONSE_TYPES.items():
        pointer = _pointer(path, "200", content_type)
        out[path] = (
            Draft4Validator({"$ref": f"{SPEC_URI}#{pointer}"}, registry=registry),
            Draft4Validator({"$ref": f"{SPEC_URI}-strict#{pointer}"}, registry=registry),
        )
    return out


def _check(
    validators: dict[str, tuple[Draft4Validator, Draft4Validator]],
    path: str,
    response: httpx.Response,
) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == RESPONSE_TYPES[path]
    body = response.json()
    official, strict = validators[path]
    errors = [e.message for e in official.iter_errors(body)][:3]
    assert not errors, f"{path}: {errors}"
    errors = [e.message for e in strict.iter_errors(body)][:3]
    assert not errors, f"{path} (undeclared fields): {errors}"


def _check_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    Draft4Validator(ERROR_SCHEMA).validate(body)
    assert response.headers["trackingid"] == body["trackingId"]
    return body


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def org() -> SimulatedOrg:
    """The default org over a two-week window."""
    return generate_org(start=START, end=END)


def _client(sim: Simulator, **kwargs: Any) -> httpx.Client:
    return httpx.Client(
        transport=httpx.MockTransport(sim.handle_sync), base_url=BASE, headers=AUTH, **kwargs
    )


def _walk(client: httpx.Client, path: str, params: dict[str, Any]) -> list[httpx.Response]:
    """Every page of a listing, following ``Link rel=next`` exactly as given."""
    pages = [client.get(path, params=params)]
    while "next" in pages[-1].links:
        assert len(pages) < 20_000, "runaway paging"
        pages.append(client.get(pages[-1].links["next"]["url"]))
    return pages


def _items(pages: list[httpx.Response]) -> list[dict[str, Any]]:
    return [item for page in pages for item in page.json()["items"]]


def _all_participants(org: SimulatedOrg) -> list[dict[str, Any]]:
    return [p for m in org.meetings for p in org.participants[m["id"]]]


def _real(device: dict[str, Any]) -> bool:
    return device.get("joinedTime") not in (None, PLACEHOLDER_TIME) and device.get(
        "leftTime"
    ) not in (None, PLACEHOLDER_TIME)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


# ---------------------------------------------------------------------------------------------
# Conformance with the official spec
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["default", "hostile", "live"])
def test_every_page_validates_against_the_official_spec(
    variant: str, validators: dict[str, tuple[Draft4Validator, Draft4Validator]]
) -> None:
    org = generate_org(
        start=START,
        end=END,
        hostile=variant == "hostile",
        live_at=NOW if variant == "live" else None,
    )
    sim = Simulator(org, now=NOW, faults=FaultPlan(attendee_report_forbidden=False))
    with _client(sim) as client:
        window = {k: v for k, v in WINDOW.items() if k != "state"}
        window["to"] = (NOW + timedelta(days=1)).isoformat()
        pages = _walk(client, "/meetings", {**window, "max": 7})
        assert len(pages) > 3
        for page in pages:
            _check(validators, "/meetings", page)
        meetings = _items(pages)
        assert len(meetings) == len(org.meetings)
        for meeting in meetings:
            for path in ("/meetingParticipants", "/meetingInvitees"):
                for page in _walk(client, path, {"meetingId": meeting["id"], "max": 4}):
                    _check(validators, path, page)
        report = {
            "siteUrl": org.site_url,
            "from": (END - timedelta(days=7)).isoformat(),
            "to": END.isoformat(),
            "max": 50,
        }
        report_pages = _walk(client, "/meetingReports/attendees", report)
        assert len(report_pages) > 1
        for page in report_pages:
            _check(validators, "/meetingReports/attendees", page)


def test_the_spec_defines_no_error_body_schema_for_these_calls(spec: dict[str, Any]) -> None:
    # Why error bodies are checked against ERROR_SCHEMA (the documented shape) instead.
    for path in RESPONSE_TYPES:
        for status, answer in spec["paths"][path]["get"]["responses"].items():
            if status != "200":
                assert "content" not in answer


def test_error_bodies_have_the_documented_shape(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW)
    with _client(sim) as client:
        _check_error(client.get("/meetingParticipants"), 400)
        _check_error(client.get("/meetingParticipants", params={"meetingId": "nope"}), 404)
        _check_error(client.get("/meetings", params=WINDOW, headers={"Authorization": ""}), 401)
        _check_error(client.get("/meetingReports/attendees", params={"siteUrl": org.site_url}), 403)
        _check_error(client.post("/meetings", params=WINDOW), 405)
        _check_error(client.get("/nowhere"), 404)


def test_every_answer_carries_a_tracking_id_and_echoes_the_clients(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW)
    with _client(sim) as client:
        ok = client.get("/meetings", params=WINDOW)
        assert re.fullmatch(
            r"ROUTER_[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}", ok.headers["trackingid"]
        )
        mine = client.get("/meetings", params=WINDOW, headers={"TrackingID": "MEETAUDIT_1"})
        assert mine.headers["trackingid"] == "MEETAUDIT_1"
        bad = client.get("/meetingParticipants", headers={"TrackingID": "MEETAUDIT_2"})
        assert bad.json()["trackingId"] == "MEETAUDIT_2"


# ---------------------------------------------------------------------------------------------
# Realism of the default org
# ---------------------------------------------------------------------------------------------


def test_org_identity_and_reserved_domains(org: SimulatedOrg) -> None:
    uuid.UUID(org.org_id)
    assert org.domains == ["acme.example", "acme-corp.example"]
    assert org.site_url == "acme.webex.com"
    emails = [p["email"] for p in _all_participants(org) if "email" in p]
    emails += [i["email"] for m in org.meetings for i in org.invitees[m["id"]]]
    for email in emails:
        assert email.strip().lower().endswith((".example", ".test")), email


def test_meetings_are_ended_instances_with_real_id_formats(org: SimulatedOrg) -> None:
    assert len(org.meetings) == 40
    starts = [m["start"] for m in org.meetings]
    assert starts == sorted(starts)
    for m in org.meetings:
        series = m["meetingSeriesId"]
        assert re.fullmatch(r"[0-9a-f]{32}", series)
        assert re.fullmatch(rf"{series}_\d{{8}}T\d{{6}}Z", m["scheduledMeetingId"])
        assert re.fullmatch(rf"{series}_I_\d{{18}}", m["id"])
        assert m["meetingType"] == "meeting" and m["state"] == "ended"
        assert "meetingNumber" not in m
        assert m["password"] and m["hostKey"] and m["telephony"]["callInNumbers"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["start"])
        start, end = _ts(m["start"]), _ts(m["end"])
        assert START <= start < end < END
        assert m["hostEmail"].endswith(tuple(org.domains))
    assert len({m["id"] for m in org.meetings}) == 40
    # Recurring series: some series have several instances.
    series_ids = [m["meetingSeriesId"] for m in org.meetings]
    assert len(set(series_ids)) < len(series_ids)


def test_participant_ids_and_meeting_fields(org: SimulatedOrg) -> None:
    for m in org.meetings:
        for p in org.participants[m["id"]]:
            prefix, _, tail = p["id"].rpartition("_")
            assert prefix == m["id"]
            uuid.UUID(tail)
            assert p["meetingId"] == m["id"] and p["hostEmail"] == m["hostEmail"]
            assert p["siteUrl"] == org.site_url


def test_internal_staff_have_org_id_only_sometimes(org: SimulatedOrg) -> None:
    staff = [
        p for p in _all_participants(org) if p.get("email", "").lower().endswith(tuple(org.domains))
    ]
    with_org = [p for p in staff if "orgId" in p]
    assert with_org and all(p["orgId"] == org.org_id for p in with_org)
    assert len(with_org) < len(staff) / 2  # most finished-meeting participants have none
    assert {p["email"].rpartition("@")[2].lower() for p in staff} == set(org.domains)


def test_guests_from_partner_domains(org: SimulatedOrg) -> None:
    people = _all_participants(org)
    partner = [
        p for p in people if p.get("email", "").lower().rpartition("@")[2] in org.partner_org_ids
    ]
    domains = {p["email"].lower().rpartition("@")[2] for p in partner}
    assert len(domains) >= 4
    with_org = [p for p in partner if "orgId" in p]
    assert with_org and len(with_org) < len(partner) / 2
    for p in with_org:
        assert p["orgId"] == org.partner_org_ids[p["email"].lower().rpartition("@")[2]]
        assert p["orgId"] != org.org_id


def test_phone_callers_have_no_email(org: SimulatedOrg) -> None:
    callers = [p for p in _all_participants(org) if "email" not in p]
    assert callers
    call_types = set()
    for p in callers:
        assert "orgId" not in p
        (device,) = p["devices"]
        assert device["audioType"] == "pstn"
        assert re.fullmatch(r"\+1-555-01\d\d", device["phoneNumber"])
        call_types.add(device["callType"])
    assert call_types == {"callIn", "callBack"}


def test_rejoins_and_second_devices(org: SimulatedOrg) -> None:
    people = _all_participants(org)
    multi = [p for p in people if len([d for d in p["devices"] if _real(d)]) >= 2]
    assert multi
    # A rejoin: sequential sessions; a second device: a pstn call-back overlapping a laptop.
    rejoined = [p for p in multi if all(d.get("audioType") != "pstn" for d in p["devices"])]
    dual = [
        p
        for p in multi
        if any(d.get("callType") == "callBack" for d in p["devices"]) and "email" in p
    ]
    assert rejoined and dual
    for p in rejoined:
        sessions = sorted(
            (_ts(d["joinedTime"]), _ts(d["leftTime"])) for d in p["devices"] if _real(d)
        )
        assert all(a[1] < b[0] for a, b in itertools.pairwise(sessions))


def test_lobby_only_participants(org: SimulatedOrg) -> None:
    lobby = [p for p in _all_participants(org) if p["state"] == "lobby"]
    assert lobby
    assert {p["state"] for p in _all_participants(org)} == {"end", "lobby"}
    assert all(not p.get("breakoutSessionsAttended") for p in lobby)


def test_invitees_who_never_came_and_attendees_never_invited(org: SimulatedOrg) -> None:
    no_shows = uninvited = 0
    for m in org.meetings:
        joined = {p["email"].strip().lower() for p in org.participants[m["id"]] if "email" in p}
        invited = {i["email"].strip().lower() for i in org.invitees[m["id"]]}
        no_shows += len(invited - joined)
        uninvited += sum(1 for p in org.participants[m["id"]] if not p["invitee"] and not p["host"])
        for p in org.participants[m["id"]]:
            if "email" in p:
                assert p["invitee"] == (p["email"].strip().lower() in invited)
    assert no_shows and uninvited


def test_invitee_email_differing_only_in_case_and_spaces(org: SimulatedOrg) -> None:
    found = []
    for m in org.meetings:
        emails = {p["email"] for p in org.participants[m["id"]] if "email" in p}
        for invitee in org.invitees[m["id"]]:
            if invitee["email"] not in emails and any(
                invitee["email"].strip().lower() == e.lower() for e in emails
            ):
                found.append(invitee["email"])
    assert found
    assert any(e != e.strip() for e in found) and any(e.strip() != e.strip().lower() for e in found)


def test_display_names_in_many_scripts(org: SimulatedOrg) -> None:
    scripts = set()
    for p in _all_participants(org):
        for ch in p["displayName"]:
            if ord(ch) < 128 or not ch.isalpha():
                continue
            name = unicodedata.name(ch, "")
            for script in ("LATIN", "CYRILLIC", "GREEK", "CJK", "ARABIC", "HEBREW", "HANGUL"):
                if name.startswith(script):
                    scripts.add(script)
    assert {"LATIN", "CYRILLIC", "GREEK", "CJK", "ARABIC", "HEBREW"} <= scripts


def test_hosts_and_co_hosts(org: SimulatedOrg) -> None:
    cohosts = 0
    for m in org.meetings:
        people = org.participants[m["id"]]
        hosts = [p for p in people if p["host"]]
        assert len(hosts) == 1 and hosts[0]["email"] == m["hostEmail"]
        cohosts += sum(1 for p in people if p["coHost"])
    assert cohosts
    assert any(i["coHost"] for m in org.meetings for i in org.invitees[m["id"]])


def test_a_meeting_without_invitees(org: SimulatedOrg) -> None:
    empty = [m for m in org.meetings if not org.invitees[m["id"]]]
    assert empty
    assert all(not p["invitee"] for m in empty for p in org.participants[m["id"]])


def test_invitees_are_sorted_by_email(org: SimulatedOrg) -> None:
    for m in org.meetings:
        keys = [i["email"].strip().lower() for i in org.invitees[m["id"]]]
        assert keys == sorted(keys)


def test_placeholder_times_and_consistent_durations(org: SimulatedOrg) -> None:
    devices = [d for p in _all_participants(org) for d in p["devices"]]
    assert any(d.get("joinedTime") == PLACEHOLDER_TIME for d in devices)
    for d in devices:
        if _real(d):
            span = (_ts(d["leftTime"]) - _ts(d["joinedTime"])).total_seconds()
            assert d["durationSecond"] == span > 0


def test_participant_times_within_their_meeting(org: SimulatedOrg) -> None:
    for m in org.meetings:
        start, end = _ts(m["start"]), _ts(m["end"])
        for p in org.participants[m["id"]]:
            assert start <= _ts(p["joinedTime"]) <= _ts(p["leftTime"]) <= end
            for d in p["devices"]:
                if _real(d):
                    assert start <= _ts(d["joinedTime"]) <= _ts(d["leftTime"]) <= end


def test_breakout_sessions(org: SimulatedOrg) -> None:
    with_breakouts = [m for m in org.meetings if m["enabledBreakoutSessions"]]
    assert with_breakouts
    attended = [
        b
        for m in with_breakouts
        for p in org.participants[m["id"]]
        for b in p.get("breakoutSessionsAttended", [])
    ]
    assert attended
    for m in org.meetings:
        if not m["enabledBreakoutSessions"]:
            assert not any("breakoutSessionsAttended" in p for p in org.participants[m["id"]])


def test_participant_counts_vary_around_the_average(org: SimulatedOrg) -> None:
    counts = [len(org.participants[m["id"]]) for m in org.meetings]
    assert min(counts) < 8 < max(counts)
    assert 6 <= sum(counts) / len(counts) <= 10


def test_attendee_reports_follow_participants(org: SimulatedOrg) -> None:
    for m in org.meetings:
        rows = org.attendee_reports[m["id"]]
        admitted = [p for p in org.participants[m["id"]] if p["state"] == "end"]
        assert len(rows) == len(admitted)
        assert {r["participantType"] for r in rows} <= {"host", "attendee"}


def test_hostile_meeting(validators: dict[str, tuple[Draft4Validator, Draft4Validator]]) -> None:
    org = generate_org(start=START, end=END, hostile=True)
    assert len(org.meetings) == 41
    hostile = [m for m in org.meetings if "<script>" in m["title"]]
    assert len(hostile) == 1
    people = org.participants[hostile[0]["id"]]
    names = [p["displayName"] for p in people]
    blob = "\n".join(names + [p.get("email", "") for p in people])
    for needle in (
        '<img src="file:///etc/passwd">',
        "<style>body{display:none}</style>",
        "url(http://evil.example/x)",
        "\u200b",
        "\u202e",
    ):
        assert needle in blob
    assert any(len(n) == 2000 and " " not in n for n in names)
    assert any("<" in i["email"] for i in org.invitees[hostile[0]["id"]])
    assert [(p["displayName"], p.get("email")) for p in people[1:]] == hostile_names()
    assert START <= _ts(hostile[0]["start"]) < _ts(hostile[0]["end"]) < END


def test_live_meetings_relative_to_now(org: SimulatedOrg) -> None:
    live = generate_org(start=START, end=END, live_at=NOW)
    running = [m for m in live.meetings if m["state"] == "inProgress"]
    assert len(running) == 1 and "meetingNumber" in running[0]
    just_ended = [
        m
        for m in live.meetings
        if m["state"] == "ended" and _ts(m["end"]) == NOW - timedelta(minutes=5)
    ]
    assert len(just_ended) == 1
    unfinished = live.participants[just_ended[0]["id"]]
    assert any(p.get("leftTime") == PLACEHOLDER_TIME for p in unfinished)
    assert all("orgId" in p for p in unfinished if p.get("email", "").endswith("acme.example"))
    assert all(p["state"] in ("joined", "lobby") for p in live.participants[running[0]["id"]])
    sim = Simulator(live, now=NOW)
    with _client(sim) as client:
        window = {**WINDOW, "to": (NOW + timedelta(hours=1)).isoformat()}
        ended = _items(_walk(client, "/meetings", {**window, "max": 100}))
        assert just_ended[0]["id"] in {m["id"] for m in ended}
        assert running[0]["id"] not in {m["id"] for m in ended}
        in_progress = _items(_walk(client, "/meetings", {**window, "state": "inProgress"}))
        assert [m["id"] for m in in_progress] == [running[0]["id"]]


# ---------------------------------------------------------------------------------------------
# Determinism and scale
# ---------------------------------------------------------------------------------------------


def _dump(org: SimulatedOrg, order: list[str] | None = None) -> bytes:
    ids = order or [m["id"] for m in org.meetings]
    people = {i: (org.participants[i], org.invitees[i], org.attendee_reports[i]) for i in ids}
    data = {
        "org": [org.org_id, org.domains],
        "meetings": org.meetings,
        "people": {i: people[i] for i in sorted(people)},
    }
    return json.dumps(data, ensure_ascii=False, sort_keys=True).encode()


def test_same_seed_same_bytes_whatever_the_access_order() -> None:
    a = generate_org(seed=11, start=START, end=END, hostile=True)
    b = generate_org(seed=11, start=START, end=END, hostile=True)
    reverse = [m["id"] for m in reversed(b.meetings)]
    assert _dump(a) == _dump(b, reverse)
    c = generate_org(seed=12, start=START, end=END, hostile=True)
    assert _dump(a) != _dump(c)


def test_same_requests_same_response_bytes(org: SimulatedOrg) -> None:
    def run() -> list[bytes]:
        sim = Simulator(generate_org(start=START, end=END), now=NOW)
        with _client(sim) as client:
            pages = _walk(client, "/meetings", {**WINDOW, "max": 9})
            out = [p.content + p.headers["trackingid"].encode() for p in pages]
            for m in _items(pages)[:5]:
                out += [
                    p.content
                    for p in _walk(client, "/meetingParticipants", {"meetingId": m["id"], "max": 3})
                ]
            return out

    assert run() == run()


def test_large_org_is_fast_and_lazy() -> None:
    began = time.perf_counter()
    big = generate_org(
        start=START, end=START + timedelta(days=30), meetings=2000, participants_per_meeting=20
    )
    planned = time.perf_counter() - began
    total = sum(len(big.participants[m["id"]]) for m in big.meetings)
    elapsed = time.perf_counter() - began
    assert planned < 2 and elapsed < 10, (planned, elapsed)
    assert 0.8 * 40_000 < total < 1.2 * 40_000
    assert len(big._cache) <= 256  # bounded: evicted meetings are regenerated identically
    first = big.meetings[0]["id"]
    assert json.dumps(big.participants[first]) == json.dumps(
        generate_org(
            start=START, end=START + timedelta(days=30), meetings=2000, participants_per_meeting=20
        ).participants[first]
    )


# ---------------------------------------------------------------------------------------------
# Listing and paging
# ---------------------------------------------------------------------------------------------


def test_walking_next_links_returns_every_item_once(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW)
    with _client(sim) as client:
        pages = _walk(client, "/meetings", {**WINDOW, "max": 6, "siteUrl": org.site_url})
        assert len(pages) == 7  # 40 meetings, 6 a page
        ids = [m["id"] for m in _items(pages)]
        assert ids == [m["id"] for m in org.meetings]
        assert "link" not in pages[-1].headers
        for page in pages[:-1]:
            nxt = httpx.URL(page.links["next"]["url"])
            assert nxt.host == "webexapis.com" and nxt.path == "/v1/meetings"
            kept = dict(nxt.params)
            assert kept.pop("after")
            assert kept == {
                **{k: str(v) for k, v in WINDOW.items()},
                "max": "6",
                "siteUrl": org.site_url,
            }
        meeting = max(org.meetings, key=lambda m: len(org.participants[m["id"]]))
        people = _walk(client, "/meetingParticipants", {"meetingId": meeting["id"], "max": 2})
        assert [p["id"] for p in _items(people)] == [
            p["id"] for p in org.participants[meeting["id"]]
        ]
        assert sim.stats.pages["/meetingParticipants"] == len(people)


def test_max_is_capped_at_100_and_defaults_to_10() -> None:
    org = generate_org(start=START, end=END, meetings=250)
    sim = Simulator(org, now=NOW)
    with _client(sim) as client:
        first = client.get("/meetings", params={**WINDOW, "max": 1000})
        assert len(first.json()["items"]) == 100
        assert httpx.URL(first.links["next"]["url"]).params["max"] == "1000"
        pages = _walk(client, "/meetings", {**WINDOW, "max": 1000})
        assert [len(p.json()["items"]) for p in pages] == [100, 100, 50]
        assert len(client.get("/meetings", params=WINDOW).json()["items"]) == 10


def test_window_bounds_and_default_window(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW)
    pivot = org.meetings[10]["start"]
    with _client(sim) as client:
        before = _items(_walk(client, "/meetings", {**WINDOW, "to": pivot, "max": 100}))
        after = _items(_walk(client, "/meetings", {**WINDOW, "from": pivot, "max": 100}))
        assert [m["id"] for m in before] == [m["id"] for m in org.meetings[:10]]  # to exclusive
        assert after[0]["id"] == org.meetings[10]["id"]  # from inclusive
        default = _items(_walk(client, "/meetings", {"meetingType": "meeting", "max": 100}))
        cutoff = NOW - timedelta(days=7)
        assert [m["id"] for m in default] == [
            m["id"] for m in org.meetings if cutoff <= _ts(m["start"]) < NOW
        ]


def test_host_email_lists_meetings_hosted_or_invited(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW)
    invitee = next(i["email"].strip() for m in org.meetings for i in org.invitees[m["id"]])
    host = org.meetings[0]["hostEmail"]
    with _client(sim) as client:
        for email in (host, invitee.upper()):
            got = {
                m["id"] for m in _items(_walk(client, "/meetings", {**WINDOW, "hostEmail": email}))
            }
            want = {
                m["id"]
                for m in org.meetings
                if m["hostEmail"] == email.lower()
                or email.lower() in {i["email"].strip().lower() for i in org.invitees[m["id"]]}
            }
            assert got == want and got


def test_listing_is_capped_at_10000_instances() -> None:
    big = generate_org(
        start=START, end=START + timedelta(days=28), meetings=10_050, participants_per_meeting=2
    )
    sim = Simulator(big, now=NOW)
    with _client(sim) as client:
        params = {**WINDOW, "to": (START + timedelta(days=28)).isoformat(), "max": 100}
        pages = _walk(client, "/meetings", params)
    ids = [m["id"] for m in _items(pages)]
    assert len(ids) == len(set(ids)) == 10_000
    assert ids == [m["id"] for m in big.meetings[:10_000]]
    assert len(pages) == 100 and "link" not in pages[-1].headers


def test_cursor_cannot_be_forged_or_moved_to_another_query(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW)
    with _client(sim) as client:
        first = client.get("/meetings", params={**WINDOW, "max": 5})
        after = httpx.URL(first.links["next"]["url"]).params["after"]
        # A client that rebuilds the URL and drops a parameter gets a 400, not wrong data.
        _check_error(
            client.get("/meetings", params={"meetingType": "meeting", "max": 5, "after": after}),
            400,
        )
        _check_error(client.get("/meetings", params={**WINDOW, "max": 5, "after": "%%%"}), 400)


def test_max_may_be_lowered_mid_walk(org: SimulatedOrg) -> None:
    # What a client does after a 504: same next link, smaller max; nothing skipped or repeated.
    sim = Simulator(org, now=NOW)
    with _client(sim) as client:
        pages = [client.get("/meetings", params={**WINDOW, "max": 9})]
        while "next" in pages[-1].links:
            nxt = httpx.URL(pages[-1].links["next"]["url"]).copy_set_param("max", "4")
            pages.append(client.get(nxt))
    assert [len(p.json()["items"]) for p in pages] == [9, 4, 4, 4, 4, 4, 4, 4, 3]
    assert [m["id"] for m in _items(pages)] == [m["id"] for m in org.meetings]


# ---------------------------------------------------------------------------------------------
# Auth and validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", [None, "Bearer wrong", "Basic simulated-token", "Bearer"])
def test_bad_credentials_are_401(org: SimulatedOrg, auth: str | None) -> None:
    sim = Simulator(org, now=NOW)
    headers = {} if auth is None else {"Authorization": auth}
    with httpx.Client(transport=httpx.MockTransport(sim.handle_sync), base_url=BASE) as client:
        _check_error(client.get("/meetings", params=WINDOW, headers=headers), 401)


def test_custom_token(org: SimulatedOrg) -> None:
    sim = Simulator(org, token="t0k3n", now=NOW)
    with _client(sim) as client:
        _check_error(client.get("/meetings", params=WINDOW), 401)
        ok = client.get("/meetings", params=WINDOW, headers={"Authorization": "Bearer t0k3n"})
        assert ok.status_code == 200


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/meetingParticipants", {}, 400),
        ("/meetingParticipants", {"meetingId": "0" * 32 + "_I_123456789012345678"}, 404),
        ("/meetingInvitees", {}, 400),
        ("/meetingInvitees", {"meetingId": "missing"}, 404),
        ("/meetings", {**WINDOW, "meetingType": "party"}, 400),
        ("/meetings", {**WINDOW, "state": "finished"}, 400),
        ("/meetings", {**WINDOW, "max": "ten"}, 400),
        ("/meetings", {**WINDOW, "max": "0"}, 400),
        ("/meetings", {**WINDOW, "from": "yesterday"}, 400),
        ("/meetings", {**WINDOW, "from": END.isoformat(), "to": START.isoformat()}, 400),
        ("/meetings", {**WINDOW, "siteUrl": "other.webex.com"}, 403),
    ],
)
def test_bad_requests(org: SimulatedOrg, path: str, params: dict[str, str], status: int) -> None:
    sim = Simulator(org, now=NOW)
    with _client(sim) as client:
        _check_error(client.get(path, params=params), status)


def test_participants_host_email_and_breakout_filters(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW)
    meeting = next(
        m
        for m in org.meetings
        if m["enabledBreakoutSessions"]
        and any("breakoutSessionsAttended" in p for p in org.participants[m["id"]])
    )
    with _client(sim) as client:
        mid = meeting["id"]
        ok = client.get(
            "/meetingParticipants", params={"meetingId": mid, "hostEmail": meeting["hostEmail"]}
        )
        assert ok.status_code == 200
        _check_error(
            client.get(
                "/meetingParticipants", params={"meetingId": mid, "hostEmail": "x@globex.example"}
            ),
            404,
        )
        room = next(
            b["id"] for p in org.participants[mid] for b in p.get("breakoutSessionsAttended", [])
        )
        people = _items(
            _walk(client, "/meetingParticipants", {"meetingId": mid, "breakoutSessionId": room})
        )
        assert people and all(
            any(b["id"] == room for b in p["breakoutSessionsAttended"]) for p in people
        )


def test_attendee_report_rules(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW, faults=FaultPlan(attendee_report_forbidden=False))
    mid = org.meetings[3]["id"]
    with _client(sim) as client:
        path = "/meetingReports/attendees"
        _check_error(client.get(path), 400)
        _check_error(
            client.get(
                path,
                params={
                    "siteUrl": org.site_url,
                    "from": START.isoformat(),
                    "to": (START + timedelta(days=31)).isoformat(),
                },
            ),
            400,
        )
        _check_error(
            client.get(
                path,
                params={"siteUrl": org.site_url, "from": (NOW - timedelta(days=91)).isoformat()},
            ),
            400,
        )
        rows = _items(
            _walk(
                client,
                path,
                {
                    "siteUrl": org.site_url,
                    "from": START.isoformat(),
                    "to": END.isoformat(),
                    "meetingId": mid,
                },
            )
        )
        assert rows == org.attendee_reports[mid]
        big = client.get(
            path,
            params={
                "siteUrl": org.site_url,
                "from": START.isoformat(),
                "to": END.isoformat(),
                "max": 5000,
            },
        )
        assert len(big.json()["items"]) == min(
            1000, sum(len(org.attendee_reports[m["id"]]) for m in org.meetings)
        )


# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------


def test_rate_limit_every_nth_request_with_each_retry_after_form(org: SimulatedOrg) -> None:
    plan = FaultPlan(rate_limit_every=3, retry_after="cycle", retry_after_seconds=30)
    sim = Simulator(org, now=NOW, faults=plan)
    with _client(sim) as client:
        answers = [client.get("/meetings", params=WINDOW) for _ in range(12)]
    limited = [a for a in answers if a.status_code == 429]
    assert [a.status_code == 429 for a in answers] == [n % 3 == 0 for n in range(1, 13)]
    for answer in limited:
        _check_error(answer, 429)
    forms = [a.headers.get("retry-after") for a in limited]
    assert forms[0] == "30"
    assert parsedate_to_datetime(forms[1]) == NOW.replace(microsecond=0) + timedelta(seconds=30)
    assert forms[2] == "rand(30),add(30)"
    assert forms[3] is None
    assert sim.stats.faults["status_429"] == 4


def test_locked_and_server_errors(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW, faults=FaultPlan(locked_every=5, server_error_every=2))
    with _client(sim) as client:
        statuses = [client.get("/meetings", params=WINDOW).status_code for _ in range(10)]
        locked = [client.get("/meetings", params=WINDOW) for _ in range(5)][-1]
    # Request 10 is both a multiple of 5 and 2: the 423 wins (documented precedence).
    assert statuses == [200, 500, 200, 502, 423, 503, 200, 500, 200, 423]
    assert locked.status_code == 423 and locked.headers["retry-after"] == "1"


def test_counted_faults_can_target_one_endpoint(org: SimulatedOrg) -> None:
    plan = FaultPlan(server_error_every=1, paths=frozenset({"/meetingInvitees"}))
    sim = Simulator(org, now=NOW, faults=plan)
    mid = org.meetings[0]["id"]
    with _client(sim) as client:
        assert client.get("/meetings", params=WINDOW).status_code == 200
        assert client.get("/meetingParticipants", params={"meetingId": mid}).status_code == 200
        assert client.get("/meetingInvitees", params={"meetingId": mid}).status_code == 500
    assert plan.requests_counted == 1


def test_gateway_timeout_above_max(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW, faults=FaultPlan(gateway_timeout_above_max=50))
    mid = org.meetings[0]["id"]
    with _client(sim) as client:
        _check_error(client.get("/meetings", params={**WINDOW, "max": 100}), 504)
        assert client.get("/meetings", params={**WINDOW, "max": 50}).status_code == 200
        _check_error(client.get("/meetingParticipants", params={"meetingId": mid, "max": 51}), 504)
        assert (
            client.get("/meetingParticipants", params={"meetingId": mid, "max": 20}).status_code
            == 200
        )


def test_reset_in_process_raises_transport_errors(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW, faults=FaultPlan(reset_every=2))
    with _client(sim) as client:
        assert client.get("/meetings", params=WINDOW).status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/meetings", params=WINDOW)
        assert client.get("/meetings", params=WINDOW).status_code == 200
        with pytest.raises(httpx.ReadError):
            client.get("/meetings", params=WINDOW)
    with pytest.raises(ConnectionReset):
        sim.respond("GET", f"{BASE}/meetings", AUTH)  # request 5: no fault
        sim.respond("GET", f"{BASE}/meetings", AUTH)  # request 6: reset
    assert sim.stats.faults["reset"] == 3


def test_truncated_body(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW, faults=FaultPlan(truncate_every=2))
    with _client(sim) as client:
        good = client.get("/meetings", params=WINDOW)
        cut = client.get("/meetings", params=WINDOW)
    assert good.json()["items"]
    assert cut.status_code == 200 and int(cut.headers["content-length"]) == len(cut.content)
    assert good.content.startswith(cut.content) and len(cut.content) < len(good.content)
    with pytest.raises(json.JSONDecodeError):
        cut.json()


def test_hostile_next_link(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW, faults=FaultPlan(hostile_link_every=1))
    with _client(sim) as client:
        answer = client.get("/meetings", params={**WINDOW, "max": 100})
    nxt = httpx.URL(answer.links["next"]["url"])
    assert nxt.host == "evil.example" and nxt.scheme == "https"
    assert nxt.path == "/v1/meetings" and nxt.params["meetingType"] == "meeting"


def test_invalid_items_for_a_meeting(
    org: SimulatedOrg, validators: dict[str, tuple[Draft4Validator, Draft4Validator]]
) -> None:
    bad, good = org.meetings[0]["id"], org.meetings[1]["id"]
    sim = Simulator(org, now=NOW, faults=FaultPlan(invalid_items_for={bad}))
    with _client(sim) as client:
        spoiled = client.get("/meetingParticipants", params={"meetingId": bad, "max": 100})
        fine = client.get("/meetingParticipants", params={"meetingId": good, "max": 100})
    official = validators["/meetingParticipants"][0]
    messages = " ".join(e.message for e in official.iter_errors(spoiled.json()))
    assert "'laptop' is not of type 'array'" in messages and "'sideways'" in messages
    _check(validators, "/meetingParticipants", fine)
    assert org.participants[bad][0]["devices"] != "laptop"  # the org itself is untouched


@pytest.mark.parametrize("status", [403, 404, 410])
def test_status_for_a_meeting(org: SimulatedOrg, status: int) -> None:
    mid = org.meetings[2]["id"]
    sim = Simulator(org, now=NOW, faults=FaultPlan(status_for={mid: status}))
    with _client(sim) as client:
        _check_error(client.get("/meetingParticipants", params={"meetingId": mid}), status)
        _check_error(client.get("/meetingInvitees", params={"meetingId": mid}), status)
        other = org.meetings[3]["id"]
        assert client.get("/meetingParticipants", params={"meetingId": other}).status_code == 200


def test_revoked_token(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW, faults=FaultPlan(revoked=True, rate_limit_every=1))
    with _client(sim) as client:
        for path in ("/meetings", "/meetingParticipants", "/meetingInvitees", "/nowhere"):
            _check_error(client.get(path, params=WINDOW), 401)


def test_attendee_report_forbidden_by_default(org: SimulatedOrg) -> None:
    assert FaultPlan().attendee_report_forbidden
    sim = Simulator(org, now=NOW)
    with _client(sim) as client:
        _check_error(client.get("/meetingReports/attendees", params={"siteUrl": org.site_url}), 403)


def test_fault_counter_is_thread_safe(org: SimulatedOrg) -> None:
    plan = FaultPlan(rate_limit_every=4)
    sim = Simulator(org, now=NOW, faults=plan)
    statuses: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(50):
            status = sim.respond("GET", f"{BASE}/meetings?meetingType=meeting", AUTH).status
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(429) == 100 and statuses.count(200) == 300
    assert sim.stats.total == 400 and plan.requests_counted == 400


def test_async_client_with_latency(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW, latency=0.05)

    async def main() -> list[int]:
        transport = httpx.MockTransport(sim.handle)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers=AUTH) as client:
            answers = await asyncio.gather(
                *(
                    client.get("/meetingParticipants", params={"meetingId": m["id"]})
                    for m in org.meetings[:20]
                )
            )
            return [a.status_code for a in answers]

    began = time.perf_counter()
    assert asyncio.run(main()) == [200] * 20
    assert time.perf_counter() - began < 0.5  # slept concurrently, not 20 x 50 ms


# ---------------------------------------------------------------------------------------------
# Real HTTP on loopback
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def served(org: SimulatedOrg) -> Iterator[tuple[Simulator, str]]:
    """A simulator behind real loopback HTTP, with a reset every 7th request."""
    sim = Simulator(org, now=NOW, faults=FaultPlan(reset_every=7))
    with serve(sim) as base_url:
        yield sim, base_url


def test_serve_full_walk_over_loopback(served: tuple[Simulator, str]) -> None:
    sim, base_url = served
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url)
    resets = 0

    def get(client: httpx.Client, url: str, **kwargs: Any) -> httpx.Response:
        nonlocal resets
        for _ in range(3):
            try:
                return client.get(url, **kwargs)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                resets += 1
        raise AssertionError("too many resets")

    with httpx.Client(base_url=base_url, headers=AUTH) as client:
        first = get(client, "/meetings", params={**WINDOW, "max": 7})
        pages = [first]
        while "next" in pages[-1].links:
            nxt = pages[-1].links["next"]["url"]
            assert nxt.startswith(base_url + "/meetings?")
            pages.append(get(client, nxt))
        meetings = _items(pages)
        assert [m["id"] for m in meetings] == [m["id"] for m in sim.org.meetings]
        people = 0
        for m in meetings:
            page = get(client, "/meetingParticipants", params={"meetingId": m["id"], "max": 100})
            assert page.headers["content-type"] == "application/json"
            people += len(page.json()["items"])
            assert get(client, "/meetingInvitees", params={"meetingId": m["id"]}).status_code == 200
        assert people == sum(len(sim.org.participants[m["id"]]) for m in sim.org.meetings)
        assert (
            get(client, "/meetings", params=WINDOW, headers={"Authorization": "x"}).status_code
            == 401
        )
    assert resets == sim.stats.faults["reset"] > 5


def test_serve_reset_really_closes_the_connection(served: tuple[Simulator, str]) -> None:
    sim, base_url = served
    url = httpx.URL(base_url)
    assert url.port is not None
    request = (
        f"GET /v1/meetings?meetingType=meeting HTTP/1.1\r\nHost: {url.host}:{url.port}"
        f"\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.host, url.port), timeout=5) as sock:
        answered = 0
        for _ in range(6):  # requests 1-6 on one keep-alive connection
            sock.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(65536)
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
            body = head.split(b"\r\n\r\n", 1)[1]
            while len(body) < length:
                body += sock.recv(65536)
            answered += 1
        sock.sendall(request)  # request 7: reset
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        assert data == b"" and answered == 6
    assert sim.stats.faults["reset"] == 1


def test_serve_many_concurrent_keep_alive_connections(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW)
    mid = org.meetings[0]["id"]
    errors: list[BaseException] = []

    def worker(base_url: str) -> None:
        try:
            with httpx.Client(base_url=base_url, headers=AUTH) as client:
                for _ in range(5):
                    answer = client.get("/meetingParticipants", params={"meetingId": mid})
                    assert answer.status_code == 200
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    with serve(sim) as base_url:
        threads = [threading.Thread(target=worker, args=(base_url,)) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    assert sim.stats.requests["/meetingParticipants"] == 500


def test_serve_shuts_down_with_idle_keep_alive_connections(org: SimulatedOrg) -> None:
    sim = Simulator(org, now=NOW)
    client = httpx.Client(headers=AUTH)
    began = time.perf_counter()
    with serve(sim) as base_url:
        assert client.get(f"{base_url}/meetings", params=WINDOW).status_code == 200
    assert time.perf_counter() - began < 3
    with pytest.raises(httpx.TransportError):
        client.get(f"{base_url}/meetings", params=WINDOW)
    client.close()


def test_org_dicts_are_not_mutated_by_serving(org: SimulatedOrg) -> None:
    before = copy.deepcopy(org.meetings[:3])
    sim = Simulator(org, now=NOW, faults=FaultPlan(invalid_items_for={before[0]["id"]}))
    with _client(sim) as client:
        client.get("/meetingParticipants", params={"meetingId": before[0]["id"]})
    assert org.meetings[:3] == before
