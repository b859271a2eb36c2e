"""A harvest as an auditor relies on it: every item of the window, once, with its raw JSON."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from reporting.config import Settings
from reporting.coverage import open_gaps
from reporting.db.engine import Database
from reporting.db.models import (
    AttendeeReport,
    BreakoutAttendance,
    HarvestGap,
    HarvestRun,
    Invitee,
    Meeting,
    MeetingRevision,
    Participant,
    ParticipantDevice,
)
from reporting.harvest import HarvestEvent, Window
from reporting.report.api import generate_report
from reporting.webex.simulator import FaultPlan, SimulatedOrg, Simulator, TokenOwner, generate_org
from tests.factories import TOKEN, assert_consistent, harvest_org, snapshot
from tests.harvest.conftest import END, NOW, START, WINDOW


def _count(db: Database, model: Any) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _expected(org: SimulatedOrg, ids: list[str] | None = None) -> dict[str, int]:
    ids = ids if ids is not None else [m["id"] for m in org.meetings]
    participants = [p for mid in ids for p in org.participants[mid]]
    return {
        "participants": len(participants),
        "devices": sum(len(p.get("devices", [])) for p in participants),
        "breakouts": sum(len(p.get("breakoutSessionsAttended", [])) for p in participants),
        "invitees": sum(len(org.invitees[mid]) for mid in ids),
    }


def test_clean_harvest_stores_every_item_with_its_raw_json(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db)

    expected = _expected(org)
    assert summary.status == "complete" and summary.gaps == 0
    assert summary.meetings_listed == summary.meetings_complete == len(org.meetings)
    assert (summary.participants, summary.devices, summary.invitees) == (
        expected["participants"],
        expected["devices"],
        expected["invitees"],
    )
    assert _count(db, Participant) == expected["participants"]
    assert _count(db, ParticipantDevice) == expected["devices"]
    assert _count(db, BreakoutAttendance) == expected["breakouts"] > 0
    assert _count(db, Invitee) == expected["invitees"]
    assert_consistent(db.engine)
    with db.sessions() as session:
        # The raw item is kept exactly (every field of the spec, and any the spec does not know).
        mid = org.meetings[3]["id"]
        stored = {p.participant_id: p.raw for p in session.scalars(
            select(Participant).where(Participant.meeting_id == mid))}  # fmt: skip
        assert stored == {p["id"]: p for p in org.participants[mid]}
        # Phone callers keep their number on the device; placeholder times are kept as given.
        phones = session.scalars(select(ParticipantDevice.phone_number).where(
            ParticipantDevice.phone_number.is_not(None))).all()  # fmt: skip
        assert phones and all(p.startswith("+1-555-01") for p in phones)
        assert session.scalar(select(func.count()).select_from(ParticipantDevice).where(
            ParticipantDevice.joined_at == dt.datetime(1970, 1, 1, tzinfo=dt.UTC))) > 0  # fmt: skip
        # Meeting secrets never reach the database.
        raw = session.scalar(select(Meeting.raw).where(Meeting.meeting_id == mid))
        assert raw is not None and "password" not in raw and "hostKey" not in raw
        assert "accessCode" not in raw["telephony"]
        run = session.scalars(select(HarvestRun)).one()
        assert run.status == "complete" and run.meetings_complete == len(org.meetings)
        assert run.participants == expected["participants"] and run.error is None


def test_second_run_skips_complete_meetings_and_refresh_fetches_again(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    harvest_org(settings, org, WINDOW, now=NOW, db=db)
    before = snapshot(db.engine)
    sim = Simulator(org, token=TOKEN, now=NOW)

    again = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim)
    assert again.status == "complete"
    assert (again.meetings_skipped, again.meetings_complete) == (len(org.meetings), 0)
    assert sim.stats.requests["/meetingParticipants"] == 0
    refreshed = harvest_org(settings, org, WINDOW, now=NOW, db=db, refresh=True)
    assert refreshed.meetings_complete == len(org.meetings) and refreshed.revisions == 0
    assert snapshot(db.engine) == before  # nothing changed, nothing duplicated, no revision


def _completion_marks(db: Database) -> dict[str, tuple[Any, Any]]:
    with db.sessions() as session:
        rows = session.execute(
            select(Meeting.meeting_id, Meeting.complete_at, Meeting.complete_run_id)
        )
        return {mid: (at, run) for mid, at, run in rows}


def test_a_refresh_that_changes_nothing_keeps_earlier_reports_reproducible(
    settings: Settings, db: Database, org: SimulatedOrg, tmp_path: Path
) -> None:
    sim = Simulator(org, token=TOKEN, now=NOW)
    harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim)
    marks = _completion_marks(db)
    report = generate_report(settings, db, WINDOW, label="2026-10", formats=("csv",),
                             output=tmp_path / "october.csv")  # fmt: skip

    # Fetched again, the same content: each meeting keeps when and by which run it became
    # complete, so the report generated before renders to the same bytes.
    harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim, refresh=True)
    assert _completion_marks(db) == marks
    again = generate_report(settings, db, None, label="x", reproduce=report.files[0].report_id,
                            output=tmp_path / "again.csv")  # fmt: skip
    assert again.matches is True

    # A meeting whose content did change is complete from the refresh on (with a revision).
    mid = org.meetings[4]["id"]
    sim.replace_items(mid, participants=org.participants[mid][:-1], invitees=org.invitees[mid])
    assert (
        harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim, refresh=True).revisions
        == 1
    )
    after = _completion_marks(db)
    assert after[mid][0] > marks[mid][0]
    assert {k: v for k, v in after.items() if k != mid} == {
        k: v for k, v in marks.items() if k != mid
    }


def test_meeting_that_ended_minutes_ago_waits_for_the_next_run(
    settings: Settings, db: Database
) -> None:
    now = dt.datetime(2026, 10, 20, 12, 0, tzinfo=dt.UTC)
    org = generate_org(
        seed=3, start=START, end=now - dt.timedelta(hours=2), meetings=10, live_at=now
    )
    # The window ends now: its last 15 minutes are not final either (a second gap, by window).
    window = Window(START, now)

    first = harvest_org(settings, org, window, now=now, db=db)
    assert first.status == "incomplete" and first.meetings_unsettled == 1
    with db.sessions() as session:
        (gap,) = [g for g in open_gaps(session, window) if g.meeting_id is not None]
        assert gap.scope == "meeting" and "not finalised" in gap.reason
        recent = gap.meeting_id
        assert session.get(Meeting, recent).complete_at is None  # listed, not fetched
    # The meeting still running is not listed at all (state=ended).
    assert first.meetings_listed == 11

    later = harvest_org(settings, org, window, now=now + dt.timedelta(hours=1), db=db)
    assert later.status == "complete" and later.meetings_complete == 1
    with db.sessions() as session:
        assert open_gaps(session, window) == []
        assert session.get(Meeting, recent).complete_at is not None


def test_dry_run_lists_what_would_be_fetched_and_writes_nothing(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, dry_run=True)
    assert summary.meetings_to_fetch == len(org.meetings) == len(summary.planned)
    assert org.meetings[0]["id"] in summary.planned[0]
    assert _count(db, HarvestRun) == 0 and _count(db, Meeting) == 0


def test_changed_meeting_is_updated_and_its_history_kept(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    sim = Simulator(org, token=TOKEN, now=NOW)
    harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim)
    mid = org.meetings[5]["id"]
    old_participants = org.participants[mid]
    gone = old_participants[-1]
    late = {**old_participants[1], "leftTime": "2026-10-31T23:00:00Z"}
    new_participants = [old_participants[0], late, *old_participants[2:-1]]
    new_invitee = {"id": "inv-new", "email": "new.person@acme.example", "displayName": "New Person",
                   "meetingId": mid, "coHost": False, "panelist": False}  # fmt: skip
    sim.replace_items(
        mid, participants=new_participants, invitees=[*org.invitees[mid], new_invitee]
    )

    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim, refresh=True)

    assert summary.status == "complete" and summary.revisions == 1
    with db.sessions() as session:
        (revision,) = session.scalars(select(MeetingRevision)).all()
        assert revision.meeting_id == mid and revision.harvest_run_id == summary.run_id
        s = revision.summary
        assert (s["participants_before"], s["participants_after"]) == (
            len(old_participants),
            len(old_participants) - 1,
        )
        assert s["participants_removed"] == [gone["id"]] and s["participants_added"] == []
        assert s["participants_changed"] == [late["id"]]
        assert s["invitees_added"] == ["new.person@acme.example"]
        assert s["invitees_after"] == s["invitees_before"] + 1
        previous_ids = {p["id"] for p in revision.previous_items["participants"]}
        assert previous_ids == {p["id"] for p in old_participants}
        # The current rows are the new data.
        current = set(
            session.scalars(select(Participant.participant_id).where(Participant.meeting_id == mid))
        )
        assert current == {p["id"] for p in new_participants}
        assert session.get(Meeting, mid).participant_count == len(new_participants)
    assert_consistent(db.engine)


def test_listing_by_host_email_fetches_as_the_host(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    host = org.meetings[0]["hostEmail"]
    hosted = [m["id"] for m in org.meetings
              if m["hostEmail"] == host or host in org.invitee_emails(m["id"])]  # fmt: skip
    sim = Simulator(org, token=TOKEN, now=NOW)
    seen: list[httpx.URL] = []

    async def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return await sim.handle(request)

    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim,
                          transport=httpx.MockTransport(recording), webex_host_emails=[host])  # fmt: skip
    assert summary.status == "complete"
    with db.sessions() as session:
        assert set(session.scalars(select(Meeting.meeting_id))) == set(hosted)
    listings = [u for u in seen if u.path.endswith("/meetings")]
    assert listings and all(u.params["hostEmail"] == host for u in listings)
    # The simulator answers 404 unless hostEmail names the meeting's real host.
    for url in seen:
        if url.path.endswith(("/meetingParticipants", "/meetingInvitees")):
            meeting = org.get_meeting(url.params["meetingId"])
            assert meeting is not None and url.params["hostEmail"] == meeting["hostEmail"]


def test_every_configured_site_is_listed(settings: Settings, db: Database) -> None:
    east = generate_org(seed=21, start=START, end=END, meetings=6, site_url="east.webex.com")
    west = generate_org(seed=22, start=START, end=END, meetings=5, site_url="west.webex.com")
    # One administrator set up on both sites; each site's meetings served by its own simulator.
    owner = TokenOwner("boss@east.example", "Big Boss", sites=("east.webex.com", "west.webex.com"))
    sims = {o.site_url: Simulator(o, token=TOKEN, now=NOW, token_owner=owner) for o in (east, west)}

    async def route(request: httpx.Request) -> httpx.Response:
        site = request.url.params.get("siteUrl")
        if site is None and "meetingId" not in request.url.params:
            site = "east.webex.com"  # who the token is, and its sites: either one answers
        elif site is None:
            mid = request.url.params["meetingId"]
            site = next(s for s, sim in sims.items() if sim.org.get_meeting(mid) is not None)
        return await sims[site].handle(request)

    summary = harvest_org(settings, east, WINDOW, now=NOW, db=db, transport=httpx.MockTransport(route),
                          webex_site_urls=["east.webex.com", "west.webex.com"])  # fmt: skip
    assert summary.status == "complete" and summary.meetings_complete == 11
    with db.sessions() as session:
        sites = dict(
            session.execute(select(Meeting.site_url, func.count()).group_by(Meeting.site_url)).all()
        )
    assert sites == {"east.webex.com": 6, "west.webex.com": 5}
    # Every site of the token was named: nothing left out of the listing's reach.
    assert summary.listing_reach is not None and summary.listing_reach["verdict"] == "organisation"
    assert summary.listing_reach["sites_seen"] == ["east.webex.com", "west.webex.com"]


def test_windows_at_the_listing_cap_are_split_until_nothing_is_cut_off(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    # A cap of 3 per query stands for Webex's 10,000: a day with 3 or more meetings is split.
    sim = Simulator(org, token=TOKEN, now=NOW, listing_cap=3)
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim, window_cap=3)
    assert summary.status == "complete" and summary.meetings_complete == len(org.meetings)
    assert sim.stats.requests["/meetings"] > 31  # some days were split


def test_a_window_still_at_the_cap_after_splitting_is_a_gap(
    settings: Settings, db: Database
) -> None:
    crowded = generate_org(seed=5, start=START, end=START + dt.timedelta(minutes=10), meetings=6)
    sim = Simulator(crowded, token=TOKEN, now=NOW, listing_cap=4)
    summary = harvest_org(settings, crowded, WINDOW, now=NOW, db=db, simulator=sim, window_cap=4)
    assert summary.status == "incomplete"
    with db.sessions() as session:
        gaps = session.scalars(select(HarvestGap)).all()
    assert [g.scope for g in gaps] == ["meeting_list"] and "cap" in gaps[0].reason
    assert gaps[0].tracking_id
    assert gaps[0].window_to is not None and gaps[0].window_to - gaps[
        0
    ].window_from <= dt.timedelta(minutes=15)


def test_attendee_report_enriches_meetings_when_the_token_allows_it(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    faults = FaultPlan(attendee_report_forbidden=False)
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, faults=faults)
    assert summary.status == "complete"
    expected = sum(len(org.attendee_reports[m["id"]]) for m in org.meetings)
    assert summary.attendee_rows == expected == _count(db, AttendeeReport) > 0
    with db.sessions() as session:
        row = session.scalars(
            select(AttendeeReport).where(AttendeeReport.ip_address.is_not(None))
        ).first()
        assert row is not None and row.client_agent and row.participant_type in ("host", "attendee")
        run = session.scalars(select(HarvestRun)).one()
        assert run.parameters["attendee_report"]["status"] == "fetched"


def test_attendee_report_403_is_noted_once_and_is_not_a_gap(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    sim = Simulator(org, token=TOKEN, now=NOW)  # the default: the token lacks the report scope
    events: list[HarvestEvent] = []
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim, events=events)
    assert summary.status == "complete" and summary.gaps == 0
    assert sim.stats.requests["/meetingReports/attendees"] == 1
    assert _count(db, AttendeeReport) == 0 and _count(db, HarvestGap) == 0
    with db.sessions() as session:
        note = session.scalars(select(HarvestRun)).one().parameters["attendee_report"]
    assert note["http_status"] == 403 and note["tracking_id"]
    assert any(e.kind == "note" and "403" in e.message for e in events)


def test_attendee_report_is_not_asked_for_beyond_90_days(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    late = NOW + dt.timedelta(days=120)
    sim = Simulator(org, token=TOKEN, now=late, faults=FaultPlan(attendee_report_forbidden=False))
    summary = harvest_org(settings, org, WINDOW, now=late, db=db, simulator=sim)
    assert summary.status == "complete"
    assert sim.stats.requests["/meetingReports/attendees"] == 0
    with db.sessions() as session:
        note = session.scalars(select(HarvestRun)).one().parameters["attendee_report"]
    assert note["older_than_90_days"] == len(org.meetings)


def test_only_one_harvest_runs_at_a_time(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    from reporting.errors import DatabaseError
    from reporting.harvest import HARVEST_LOCK_KEY

    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": HARVEST_LOCK_KEY})
        with pytest.raises(DatabaseError, match="another meetaudit harvest is running"):
            harvest_org(settings, org, WINDOW, now=NOW, db=db)
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": HARVEST_LOCK_KEY})
    assert _count(db, HarvestRun) == 0


def test_attendee_report_failures_are_noted_with_tracking_id_and_keep_earlier_rows(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    harvest_org(
        settings, org, WINDOW, now=NOW, db=db, faults=FaultPlan(attendee_report_forbidden=False)
    )
    before = _count(db, AttendeeReport)
    failing = FaultPlan(attendee_report_forbidden=False, server_error_every=1,
                        paths=frozenset({"/meetingReports/attendees"}))  # fmt: skip
    summary = harvest_org(
        settings, org, WINDOW, now=NOW, db=db, faults=failing, refresh=True, max_retries=1
    )
    assert summary.status == "complete" and summary.gaps == 0  # optional enrichment: not a gap
    assert _count(db, AttendeeReport) == before > 0  # what earlier runs stored stays
    with db.sessions() as session:
        run = session.scalars(select(HarvestRun).order_by(HarvestRun.id.desc())).first()
    assert run is not None
    note = run.parameters["attendee_report"]
    failures = note["failures"]
    assert failures and all(
        f["tracking_id"] and f["http_status"] in (500, 502, 503) for f in failures
    )
    # The run record says what happened, day by day: never "fetched" when nothing was.
    assert note["status"].startswith("failed: none of the")
    assert note["days"] and all(
        d["status"] == "failed" and d["http_status"] in (500, 502, 503) and d["tracking_id"]
        for d in note["days"].values()
    )


def test_attendee_report_status_says_partly_when_some_days_failed(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    # Every other report request fails (retries off): some days are fetched, some are not.
    flaky = FaultPlan(attendee_report_forbidden=False, server_error_every=2,
                      paths=frozenset({"/meetingReports/attendees"}))  # fmt: skip
    harvest_org(settings, org, WINDOW, now=NOW, db=db, faults=flaky, max_retries=0)
    with db.sessions() as session:
        note = session.scalars(select(HarvestRun)).one().parameters["attendee_report"]
    states = [d["status"] for d in note["days"].values()]
    assert "fetched" in states and "failed" in states
    fetched = states.count("fetched")
    assert note["status"] == (
        f"partly: fetched for {fetched} of {len(states)} site-days; {len(states) - fetched} not "
        "(see days)"
    )
    assert all("rows" in d for d in note["days"].values() if d["status"] == "fetched")


def test_hostile_text_is_stored_as_given_and_nul_characters_repaired(
    settings: Settings, db: Database
) -> None:
    hostile = generate_org(seed=9, start=START, end=END, meetings=3, hostile=True)
    summary = harvest_org(settings, hostile, WINDOW, now=NOW, db=db)
    assert summary.status == "complete"
    with db.sessions() as session:
        names = set(session.scalars(select(Participant.display_name)))
        raws = session.scalars(select(Participant.raw)).all()
    assert "Null\ufffdByte" in names  # PostgreSQL cannot store NUL; U+FFFD marks the repair
    assert "<script>alert(document.cookie)</script>" in names and "Invoice \u202efdp.exe" in names
    assert any(r.get("displayName") == "Null\ufffdByte" for r in raws)
