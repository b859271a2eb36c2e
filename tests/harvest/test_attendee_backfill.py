"""The attendee report is added later to meetings stored while it could not be read.

A meeting stored complete is skipped by later runs. When its attendee report could not be read
then (the token lacked the report scope, or the day's report failed), ``attendee_report_at`` stays
NULL and a later normal run fetches only the report for it — not its participants again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import AttendeeReport, HarvestRun, Meeting, MeetingRevision
from reporting.db.writes import MeetingRecord, store_attendee_reports, store_meetings
from reporting.harvest import HarvestEvent
from reporting.webex import schemas
from reporting.webex.simulator import FaultPlan, SimulatedOrg, Simulator
from tests.factories import TOKEN, assert_consistent, harvest_org, snapshot
from tests.harvest.conftest import NOW, WINDOW

REPORTS = "/meetingReports/attendees"
# What a report-only fetch must leave exactly as it was.
CONTENT_TABLES = ("participants", "participant_devices", "breakout_attendance", "invitees",
                  "meeting_revisions", "harvest_gaps")  # fmt: skip


def _allowed(org: SimulatedOrg, now: dt.datetime = NOW) -> Simulator:
    return Simulator(org, token=TOKEN, now=now, faults=FaultPlan(attendee_report_forbidden=False))


def _marks(db: Database) -> dict[str, tuple[Any, ...]]:
    """Per meeting: completion mark, completing run, content digest, attendee-report mark."""
    with db.sessions() as session:
        rows = session.execute(
            select(Meeting.meeting_id, Meeting.complete_at, Meeting.complete_run_id,
                   Meeting.content_sha256, Meeting.attendee_report_at)
        ).all()  # fmt: skip
    return {mid: tuple(rest) for mid, *rest in rows}


def _attendee_raws(db: Database) -> dict[str, list[dict[str, Any]]]:
    with db.sessions() as session:
        rows = session.execute(
            select(AttendeeReport.meeting_id, AttendeeReport.raw).order_by(
                AttendeeReport.meeting_id, AttendeeReport.seq
            )
        ).all()
    out: dict[str, list[dict[str, Any]]] = {}
    for mid, raw in rows:
        out.setdefault(mid, []).append(raw)
    return out


def _count(db: Database, model: Any) -> int:
    with db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _content(db: Database) -> dict[str, Any]:
    whole = snapshot(db.engine, open_gaps_only=False)
    return {table: whole[table] for table in CONTENT_TABLES}


def _report(org: SimulatedOrg, mid: str) -> list[tuple[schemas.AttendeeReportItem, dict[str, Any]]]:
    raws = list(org.attendee_reports[mid])
    items, problem = schemas.validate_items(schemas.ATTENDEE_REPORT, "attendee report", raws)
    assert problem is None
    return list(zip(items, raws, strict=True))


def _record(
    org: SimulatedOrg,
    mid: str,
    report: list[tuple[schemas.AttendeeReportItem, dict[str, Any]]] | None,
) -> MeetingRecord:
    participants = list(org.participants[mid])
    invitees = list(org.invitees[mid])
    return MeetingRecord(
        mid,
        list(zip(schemas.PARTICIPANTS.validate_python(participants), participants, strict=True)),
        list(zip(schemas.INVITEES.validate_python(invitees), invitees, strict=True)),
        report,
    )


def test_report_refused_at_first_is_added_by_a_later_run_without_fetching_participants(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    ids = {m["id"] for m in org.meetings}
    expected = {mid: org.attendee_reports[mid] for mid in ids if org.attendee_reports[mid]}
    assert expected

    # Run 1: the token cannot read attendee reports (403).
    refused = Simulator(org, token=TOKEN, now=NOW)
    first = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=refused)
    assert first.status == "complete" and first.meetings_complete == len(ids)
    assert refused.stats.requests[REPORTS] == 1
    stored = _marks(db)
    assert set(stored) == ids
    assert all(complete is not None and report_at is None
               for complete, _, _, report_at in stored.values())  # fmt: skip
    assert _count(db, AttendeeReport) == 0
    content = _content(db)

    # Run 2, not --refresh: the token may read reports now. Only the reports are fetched.
    sim = _allowed(org)
    events: list[HarvestEvent] = []
    second = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim, events=events)
    assert second.status == "complete" and second.gaps == 0
    assert (second.meetings_skipped, second.meetings_complete, second.meetings_to_fetch) == (
        len(ids), 0, 0,
    )  # fmt: skip
    assert second.attendee_backfill_planned == second.attendee_backfilled == len(ids)
    assert sim.stats.requests["/meetingParticipants"] == 0
    assert sim.stats.requests["/meetingInvitees"] == 0
    assert sim.stats.requests[REPORTS] > 0
    assert second.revisions == 0 and _count(db, MeetingRevision) == 0
    assert (
        second.attendee_rows == sum(len(r) for r in expected.values()) == _count(db, AttendeeReport)
    )
    assert _attendee_raws(db) == expected  # every row, in the report's order, raw as served
    after = _marks(db)
    for mid, (complete, run_id, digest, report_at) in after.items():
        # Participants, invitees, digest and completion mark are untouched; the report is read
        # (also for the meetings whose report has no row).
        assert (complete, run_id, digest) == stored[mid][:3]
        assert report_at is not None and report_at > complete
    assert _content(db) == content
    assert_consistent(db.engine)
    with db.sessions() as session:
        run = session.get(HarvestRun, second.run_id)
        assert run is not None and run.meetings_complete == 0
        assert run.meetings_skipped == len(ids)
        assert run.parameters["attendee_report"]["status"] == "fetched"
        assert run.parameters["attendee_report"]["added_to_stored_meetings"] == len(ids)
    assert second.as_dict()["attendee_backfilled"] == len(ids)

    # Run 3: every report has been read; nothing is asked for again.
    sim.reset_stats()
    third = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim)
    assert third.status == "complete" and third.meetings_skipped == len(ids)
    assert third.attendee_backfill_planned == third.attendee_backfilled == 0
    assert sim.stats.requests[REPORTS] == 0
    assert sim.stats.requests["/meetingParticipants"] == 0
    assert _marks(db) == after


def test_report_still_refused_leaves_the_mark_empty_for_the_next_run(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    harvest_org(settings, org, WINDOW, now=NOW, db=db)  # 403: stored without reports
    stored = _marks(db)

    # Still refused: one probe, nothing stored, the meetings stay without a report mark.
    refused = Simulator(org, token=TOKEN, now=NOW)
    again = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=refused)
    assert again.status == "complete" and again.gaps == 0
    assert refused.stats.requests[REPORTS] == 1
    assert refused.stats.requests["/meetingParticipants"] == 0
    assert again.attendee_backfill_planned == len(org.meetings) and again.attendee_backfilled == 0
    # The day's report fails (5xx): noted, not a gap, nothing stored.
    failing = FaultPlan(attendee_report_forbidden=False, server_error_every=1,
                        paths=frozenset({REPORTS}))  # fmt: skip
    broken = harvest_org(settings, org, WINDOW, now=NOW, db=db, faults=failing, max_retries=1)
    assert broken.status == "complete" and broken.gaps == 0 and broken.attendee_backfilled == 0
    assert _marks(db) == stored and _count(db, AttendeeReport) == 0

    # Readable at last: added now.
    sim = _allowed(org)
    later = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim)
    assert later.attendee_backfilled == len(org.meetings)
    assert _count(db, AttendeeReport) == sum(
        len(org.attendee_reports[m["id"]]) for m in org.meetings
    )
    assert all(report_at is not None for *_, report_at in _marks(db).values())


def test_no_report_only_fetch_when_enrichment_is_disabled(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    harvest_org(settings, org, WINDOW, now=NOW, db=db)  # 403: stored without reports
    stored = _marks(db)

    sim = _allowed(org)
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim,
                          harvest_attendee_reports=False)  # fmt: skip
    assert summary.status == "complete" and summary.meetings_skipped == len(org.meetings)
    assert summary.attendee_backfill_planned == summary.attendee_backfilled == 0
    assert sim.stats.requests[REPORTS] == 0
    assert _marks(db) == stored and _count(db, AttendeeReport) == 0
    dry = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim, dry_run=True,
                      harvest_attendee_reports=False)  # fmt: skip
    assert dry.attendee_backfill_planned == 0


def test_no_report_only_fetch_beyond_the_report_apis_90_days(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    harvest_org(settings, org, WINDOW, now=NOW, db=db)  # 403: stored without reports
    late = NOW + dt.timedelta(days=120)
    sim = _allowed(org, now=late)
    summary = harvest_org(settings, org, WINDOW, now=late, db=db, simulator=sim)
    assert summary.status == "complete" and summary.attendee_backfill_planned == 0
    assert sim.stats.requests[REPORTS] == 0
    assert _count(db, AttendeeReport) == 0


def test_dry_run_counts_the_meetings_that_would_get_their_report(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    harvest_org(settings, org, WINDOW, now=NOW, db=db)  # 403: stored without reports
    sim = _allowed(org)
    dry = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim, dry_run=True)
    assert dry.meetings_to_fetch == 0 and dry.meetings_skipped == len(org.meetings)
    assert dry.attendee_backfill_planned == len(org.meetings)
    assert sim.stats.requests[REPORTS] == 0 and _count(db, AttendeeReport) == 0


def test_store_meetings_marks_the_report_read_only_when_the_record_carries_one(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    run = harvest_org(settings, org, WINDOW, now=NOW, db=db)  # rows to store against
    with_rows = [m["id"] for m in org.meetings if org.attendee_reports[m["id"]]]
    a, b = with_rows[:2]

    with db.session() as session:
        store_meetings(session, run.run_id, [_record(org, a, _report(org, a)),
                                             _record(org, b, _report(org, b))])  # fmt: skip
    first = _marks(db)
    for mid in (a, b):
        complete, _, _, report_at = first[mid]
        # Stored already by the harvest with the same content: still complete since then,
        # and the report read now.
        assert report_at > complete
    assert _attendee_raws(db) == {a: org.attendee_reports[a], b: org.attendee_reports[b]}

    # b comes back without a report (not read this time): its mark and rows stay as they were.
    with db.session() as session:
        store_meetings(session, run.run_id, [_record(org, a, _report(org, a)),
                                             _record(org, b, None)])  # fmt: skip
    second = _marks(db)
    # Same content: both stay complete since the first store; a's report was read again.
    assert second[a][0] == first[a][0] and second[a][3] > first[a][3]
    assert second[b] == first[b]
    assert _attendee_raws(db) == {a: org.attendee_reports[a], b: org.attendee_reports[b]}
    assert_consistent(db.engine)


def test_store_attendee_reports_replaces_only_the_report(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    run = harvest_org(settings, org, WINDOW, now=NOW, db=db)  # stored without reports
    a, b = [m["id"] for m in org.meetings if org.attendee_reports[m["id"]]][:2]
    content, stored = _content(db), _marks(db)

    with db.session() as session:
        written = store_attendee_reports(session, run.run_id, [(a, _report(org, a)), (b, [])])
    assert written == len(org.attendee_reports[a])
    assert _attendee_raws(db) == {a: org.attendee_reports[a]}
    marks = _marks(db)
    assert marks[a][:3] == stored[a][:3] and marks[a][3] is not None
    assert marks[b][:3] == stored[b][:3] and marks[b][3] is not None  # read: no rows
    assert _content(db) == content
    # Read again with fewer rows: the old rows go.
    with db.session() as session:
        store_attendee_reports(session, run.run_id, [(a, _report(org, a)[:1])])
    assert _attendee_raws(db) == {a: org.attendee_reports[a][:1]}
    assert _count(db, MeetingRevision) == 0
