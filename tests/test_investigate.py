"""Investigators' questions, answered from a harvested simulated organisation."""

from __future__ import annotations

import datetime as dt

import pytest

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.investigate import (
    Period,
    attendance_of,
    co_attendees,
    devices_of,
    find_meetings,
    meeting_roster,
    outside_organisations,
)
from reporting.webex.simulator import SimulatedOrg, generate_org
from tests.factories import harvest_org, month_of, org_settings

START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


@pytest.fixture
def org() -> SimulatedOrg:
    window = month_of(START)
    return generate_org(
        seed=11, start=window.start, end=window.end, meetings=25, participants_per_meeting=8
    )


@pytest.fixture
def harvested(settings: Settings, org: SimulatedOrg, db: Database) -> Settings:
    summary = harvest_org(settings, org, month_of(START), db=db)
    assert summary.complete
    return org_settings(settings, org)


def _busiest_email(org: SimulatedOrg) -> str:
    counts: dict[str, int] = {}
    for meeting in org.meetings:
        for p in org.participants[meeting["id"]]:
            if p.get("email") and p.get("state") != "lobby":
                key = p["email"].strip().lower()
                counts[key] = counts.get(key, 0) + 1
    return max(counts, key=lambda k: (counts[k], k))


def test_attendance_of_a_person_matches_the_api_data(
    harvested: Settings, org: SimulatedOrg, db: Database
) -> None:
    email = _busiest_email(org)
    expected = {
        m["id"]
        for m in org.meetings
        for p in org.participants[m["id"]]
        if (p.get("email") or "").strip().lower() == email
    }
    with db.session() as session:
        rows = attendance_of(session, email.upper())  # emails match whatever their case
    assert {r.meeting_id for r in rows} == expected
    assert all(r.sessions >= 1 or r.state == "lobby" for r in rows)
    assert all(r.attended_minutes >= 0 for r in rows)


def test_attendance_respects_the_period(
    harvested: Settings, org: SimulatedOrg, db: Database
) -> None:
    email = _busiest_email(org)
    cut = START + dt.timedelta(days=15)
    with db.session() as session:
        every = attendance_of(session, email)
        early = attendance_of(session, email, Period(end=cut))
    assert early == [r for r in every if r.start_at is not None and r.start_at < cut]


def test_co_attendees_excludes_the_person_and_counts_shared_meetings(
    harvested: Settings, org: SimulatedOrg, db: Database
) -> None:
    email = _busiest_email(org)
    with db.session() as session:
        mine = {r.meeting_id for r in attendance_of(session, email)}
        others = co_attendees(session, email, harvested)
    assert others, "the busiest person met somebody"
    assert all((o.email or "").strip().lower() != email for o in others)
    top = others[0]
    shared = {
        m for m in mine
        if any((p.get("email") or "").strip().lower() == (top.email or "").strip().lower()
               and p.get("state") != "lobby" for p in org.participants[m])
    }  # fmt: skip
    assert top.meetings_together == len(shared)


def test_outside_organisations_never_lists_own_domains(
    harvested: Settings, org: SimulatedOrg, db: Database
) -> None:
    with db.session() as session:
        outside = outside_organisations(session, harvested)
    keys = {o.organisation for o in outside}
    assert not keys & set(org.domains)
    assert any(o.classification == "external" for o in outside)
    partner_domains_seen = {
        (p.get("email") or "").rpartition("@")[2].lower()
        for m in org.meetings for p in org.participants[m["id"]]
        if p.get("email") and not p.get("orgId") and p.get("state") != "lobby"
    }  # fmt: skip
    assert partner_domains_seen - set(org.domains) <= keys


def test_devices_mask_phone_numbers(harvested: Settings, db: Database, org: SimulatedOrg) -> None:
    callers = [
        p for m in org.meetings for p in org.participants[m["id"]]
        if any(d.get("phoneNumber") for d in p.get("devices", [])) and p.get("displayName")
    ]  # fmt: skip
    assert callers, "the simulated org has phone callers"
    with db.session() as session:
        rows = devices_of(session, callers[0]["displayName"], harvested)
    numbers = [r.phone_number for r in rows if r.phone_number]
    assert numbers and all("•" in n for n in numbers)


def test_meeting_roster_and_search(harvested: Settings, org: SimulatedOrg, db: Database) -> None:
    meeting = org.meetings[0]
    with db.session() as session:
        stored, lines, absent = meeting_roster(session, meeting["id"], harvested)
        found = find_meetings(session, title=meeting["title"][:6])
    assert stored is not None and stored.title == meeting["title"]
    assert len(lines) == len(org.participants[meeting["id"]])
    came = {(p.get("email") or "").strip().lower() for p in org.participants[meeting["id"]]}
    expected_absent = {i["email"].strip().lower() for i in org.invitees[meeting["id"]]} - came
    assert len(absent) == len(expected_absent)
    assert meeting["id"] in {m.meeting_id for m in found}


def test_like_wildcards_in_a_search_are_literal(harvested: Settings, db: Database) -> None:
    with db.session() as session:
        assert attendance_of(session, "%") == []
        # "a%e" would match nearly every name as a LIKE pattern; literally it matches none.
        assert attendance_of(session, "a%e") == []
        assert attendance_of(session, "a_e_") == []


def test_attended_minutes_agree_with_the_report(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import csv

    from reporting.report import generate_report

    result = generate_report(
        harvested, db, month_of(START), label="2026-10", output=tmp_path / "r", formats=("csv",)
    )
    with result.path.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["participant_ids"].count(" ") == 0]
    checked = 0
    with db.session() as session:
        for row in rows:
            if not row["email"] or row["admitted"] != "true":
                continue
            mine = [
                a
                for a in attendance_of(session, row["email"].lstrip("'"))
                if a.meeting_id == row["meeting_id"]
            ]
            if len(mine) != 1:
                continue
            assert abs(mine[0].attended_minutes - float(row["attended_minutes"])) <= 0.1, row
            checked += 1
    assert checked >= 20
