"""Every fault the Webex API can throw ends with a consistent database and the right gaps."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from reporting.config import Settings
from reporting.coverage import open_gaps
from reporting.db.engine import Database
from reporting.db.models import HarvestGap, HarvestRun, Meeting, Participant
from reporting.db.writes import record_gap
from reporting.errors import WebexAuthError, WebexHTTPError, WebexNotJson, WebexUnreachable
from reporting.harvest import HarvestEvent
from reporting.report.api import snapshot as report_snapshot
from reporting.report.context import ReportParameters, build_context
from reporting.webex.simulator import FaultPlan, SimulatedOrg, Simulator
from tests.factories import TOKEN, assert_consistent, harvest_org, snapshot
from tests.harvest.conftest import NOW, WINDOW
from tests.report.conftest import add_run, meeting, person, store


@pytest.fixture(scope="module")
def clean(
    org: SimulatedOrg,
    pg_server_url: str,
    template_db: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """The snapshot of a fault-free harvest of ``org``, to compare every faulty one with."""
    from reporting.config import load_settings
    from tests.conftest import _admin, _with_database

    name = f"meetaudit_clean_faults_{id(org)}"
    _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(pg_server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    url = _with_database(pg_server_url, name)
    settings = load_settings(database_url=url, data_dir=tmp_path_factory.mktemp("clean"))
    try:
        with Database(url, data_dir=settings.data_dir) as db:
            assert harvest_org(settings, org, WINDOW, now=NOW, db=db).status == "complete"
            return snapshot(db.engine)
    finally:
        _admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _gaps(db: Database) -> list[HarvestGap]:
    with db.sessions() as session:
        return list(session.scalars(select(HarvestGap).order_by(HarvestGap.meeting_id)))


@pytest.mark.parametrize("form", ["seconds", "http-date", "malformed", "absent", "cycle"])
def test_rate_limits_in_every_retry_after_form_are_waited_out(
    settings: Settings, db: Database, org: SimulatedOrg, clean: dict[str, Any], form: str
) -> None:
    faults = FaultPlan(rate_limit_every=5, retry_after=form, retry_after_seconds=0)  # type: ignore[arg-type]
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, faults=faults)
    assert summary.status == "complete" and summary.rate_limited > 10
    assert summary.retries >= summary.rate_limited
    assert snapshot(db.engine) == clean


def test_locked_answers_are_waited_out(
    settings: Settings, db: Database, org: SimulatedOrg, clean: dict[str, Any]
) -> None:
    faults = FaultPlan(locked_every=4, retry_after_seconds=0)
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, faults=faults)
    assert summary.status == "complete" and summary.rate_limited > 10
    assert snapshot(db.engine) == clean


@pytest.mark.parametrize(
    "faults",
    [
        FaultPlan(server_error_every=5, retry_after_seconds=0),
        FaultPlan(reset_every=7, retry_after_seconds=0),
        FaultPlan(truncate_every=5, retry_after_seconds=0),
        FaultPlan(gateway_timeout_above_max=25, retry_after_seconds=0),
        FaultPlan(
            rate_limit_every=7,
            server_error_every=11,
            reset_every=13,
            truncate_every=17,
            retry_after="cycle",
            retry_after_seconds=0,
        ),
    ],
    ids=["5xx", "resets", "truncated", "504-large-max", "all-at-once"],
)
def test_transient_faults_are_retried_to_the_same_rows(
    settings: Settings, db: Database, org: SimulatedOrg, clean: dict[str, Any], faults: FaultPlan
) -> None:
    # Faults every Nth request can fall into step with the concurrent requests of a retry: more
    # retries than the default keep that test artefact from ending in a gap.
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, faults=faults, max_retries=12)
    assert summary.status == "complete", [(g.scope, g.reason) for g in _gaps(db)]
    assert summary.retries > 0
    assert snapshot(db.engine) == clean


def test_504_asks_again_with_a_smaller_page(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    sim = Simulator(org, token=TOKEN, now=NOW, faults=FaultPlan(gateway_timeout_above_max=25))
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim)
    assert summary.status == "complete"
    assert sim.stats.statuses[504] > 0
    # 100 → 50 → 25: every listing ends up paged by 25.
    assert sim.stats.pages["/meetingParticipants"] >= len(org.meetings)


def test_a_hostile_paging_link_is_refused_and_becomes_a_gap(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    sim = Simulator(org, token=TOKEN, now=NOW, faults=FaultPlan(hostile_link_every=9,
                    paths=frozenset({"/meetingParticipants"})))  # fmt: skip
    hosts: list[str] = []

    async def recording(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return await sim.handle(request)

    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim,
                          transport=httpx.MockTransport(recording))  # fmt: skip
    assert summary.status == "incomplete"
    assert set(hosts) == {"webexapis.com"}  # the token never went to evil.example
    gaps = _gaps(db)
    assert gaps and all(g.scope == "participants" for g in gaps)
    assert all("another host" in g.reason and "evil.example" in g.reason for g in gaps)
    assert all(g.tracking_id for g in gaps)
    assert_consistent(db.engine)
    with db.sessions() as session:
        incomplete = set(
            session.scalars(select(Meeting.meeting_id).where(Meeting.complete_at.is_(None)))
        )
    assert incomplete == {g.meeting_id for g in gaps}

    # The next run, without the hostile server, fetches exactly the missing meetings.
    again = harvest_org(settings, org, WINDOW, now=NOW, db=db)
    assert again.status == "complete" and again.meetings_complete == len(incomplete)
    assert all(g.resolved_by_run_id == again.run_id for g in _gaps(db))


def test_a_meeting_with_invalid_items_is_a_gap_and_nothing_of_it_is_stored(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    bad = org.meetings[7]["id"]
    summary = harvest_org(
        settings, org, WINDOW, now=NOW, db=db, faults=FaultPlan(invalid_items_for={bad})
    )
    assert summary.status == "incomplete" and summary.meetings_complete == len(org.meetings) - 1
    (gap,) = _gaps(db)
    assert (gap.scope, gap.meeting_id) == ("participants", bad)
    assert "does not match the Webex schema" in gap.reason and "devices" in gap.reason
    assert gap.tracking_id  # the page that carried the bad item
    with db.sessions() as session:
        assert (
            session.scalars(select(Participant).where(Participant.meeting_id == bad)).first()
            is None
        )
        assert session.get(Meeting, bad).complete_at is None
    assert_consistent(db.engine)


def test_a_meeting_the_database_refuses_is_a_gap_and_the_others_are_stored(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    # A participant id that another stored meeting already has: PostgreSQL refuses the row
    # (primary key) inside COPY. Only that meeting is lost, as a gap; the run goes on.
    victim = org.meetings[2]
    taken = org.participants[victim["id"]][0]["id"]
    other = meeting(
        "ELSEWHERE", "Stored before", victim["start"], victim["end"], "x@acme.test", "X"
    )
    store(db, add_run(db, WINDOW), [other],
          {"ELSEWHERE": ([person(taken, "ELSEWHERE", "Same Id", "same@acme.test", [])], [])})  # fmt: skip
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db)
    assert summary.status == "incomplete" and summary.gaps == 1
    assert summary.meetings_complete == len(org.meetings) - 1
    (gap,) = _gaps(db)
    assert (gap.meeting_id, gap.scope) == (victim["id"], "meeting")
    assert gap.reason.startswith("PostgreSQL refused the meeting's rows: duplicate key")
    assert_consistent(db.engine)


def test_refused_meetings_are_gaps_with_status_and_tracking_id(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    refused = {org.meetings[1]["id"]: 403, org.meetings[2]["id"]: 404, org.meetings[3]["id"]: 410}
    summary = harvest_org(
        settings, org, WINDOW, now=NOW, db=db, faults=FaultPlan(status_for=refused)
    )
    assert summary.status == "incomplete" and summary.gaps == 3
    assert summary.meetings_complete == len(org.meetings) - 3
    gaps = _gaps(db)
    assert {g.meeting_id: g.http_status for g in gaps} == refused
    for gap in gaps:
        assert gap.tracking_id and gap.tracking_id.startswith("meetaudit_")
        assert gap.url and "meetingId=" in gap.url and TOKEN not in gap.url
        assert f"HTTP {refused[gap.meeting_id]}" in gap.reason
    assert_consistent(db.engine)
    with db.sessions() as session:
        run = session.scalars(select(HarvestRun)).one()
    assert (run.status, run.gaps) == ("incomplete", 3)


def test_gave_up_retries_are_gaps_carrying_the_tracking_id(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    # Every participants request fails: after the retries, each meeting is a gap.
    faults = FaultPlan(server_error_every=1, paths=frozenset({"/meetingParticipants"}))
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, faults=faults, max_retries=1)
    assert summary.status == "incomplete" and summary.gaps == len(org.meetings)
    for gap in _gaps(db):
        assert gap.scope == "participants" and gap.http_status in (500, 502, 503)
        assert gap.tracking_id and "gave up after 1 retries" in gap.reason


def test_a_revoked_token_stops_the_run_with_a_clear_error(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    with pytest.raises(WebexAuthError, match="refused the access token"):
        harvest_org(settings, org, WINDOW, now=NOW, db=db, faults=FaultPlan(revoked=True))
    with db.sessions() as session:
        run = session.scalars(select(HarvestRun)).one()
        assert run.status == "failed" and "HTTP 401" in (run.error or "")
        assert session.scalars(select(Meeting)).first() is None


def test_a_token_revoked_mid_run_keeps_every_meeting_already_fetched(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    sim = Simulator(org, token=TOKEN, now=NOW)
    handled = 0

    async def revoking(request: httpx.Request) -> httpx.Response:
        nonlocal handled
        handled += 1
        if handled == 60:
            sim.faults.revoked = True
        return await sim.handle(request)

    events: list[HarvestEvent] = []
    with pytest.raises(WebexAuthError):
        harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim, events=events,
                    transport=httpx.MockTransport(revoking))  # fmt: skip
    assert_consistent(db.engine)
    with db.sessions() as session:
        run = session.scalars(select(HarvestRun)).one()
        stored = session.scalars(select(Meeting).where(Meeting.complete_at.is_not(None))).all()
    assert run.status == "failed" and 0 < len(stored) < len(org.meetings)
    assert run.meetings_complete == len(stored)
    finished = [e for e in events if e.kind == "finished"]
    assert finished and finished[0].data["summary"].status == "failed"

    sim.faults.revoked = False
    again = harvest_org(settings, org, WINDOW, now=NOW, db=db, simulator=sim)
    assert again.status == "complete" and again.meetings_skipped == len(stored)


def _report_gaps(db: Database, tmp_path: Path, as_of: dt.datetime) -> list[dict[str, Any]]:
    params = ReportParameters(
        label="2026-10", period_from=WINDOW.start, period_to=WINDOW.end, timezone="UTC",
        org_name="Acme", org_domains=(), org_ids=(), min_attendance_minutes=2.0,
        show_phone_numbers=False, roster_row_limit=10_000, exception_row_limit=500, as_of=as_of,
    )  # fmt: skip
    workdir = tmp_path / f"report-{as_of.timestamp()}"
    workdir.mkdir()
    with report_snapshot(db) as session:
        return list(build_context(session, params, workdir=workdir).gaps)


def test_a_meeting_refused_on_every_run_is_one_open_gap_that_keeps_its_history(
    settings: Settings, db: Database, org: SimulatedOrg, tmp_path: Path
) -> None:
    refused = org.meetings[1]["id"]
    faults = FaultPlan(status_for={refused: 403})
    for _ in range(3):
        summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, faults=faults)
        assert summary.status == "incomplete" and summary.gaps == 1
    attempts = sorted(_gaps(db), key=lambda g: g.id)
    assert [g.meeting_id for g in attempts] == [refused] * 3
    # Each attempt keeps its own trackingId; each earlier one points at the attempt after it.
    assert len({g.tracking_id for g in attempts}) == 3
    assert [g.superseded_by_gap_id for g in attempts] == [attempts[1].id, attempts[2].id, None]
    assert attempts[0].superseded_at == attempts[1].occurred_at
    with db.sessions() as session:
        assert [g.id for g in open_gaps(session, WINDOW)] == [attempts[2].id]
        assert [g.id for g in open_gaps(session, WINDOW, history=True)] == [g.id for g in attempts]

    # The report lists the meeting once, as its newest attempt, counting the attempts...
    now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    (line,) = [g for g in _report_gaps(db, tmp_path, now) if g["meeting_id"] == refused]
    assert (line["run_id"], line["tracking_id"], line["attempts"]) == (
        attempts[2].harvest_run_id, attempts[2].tracking_id, 3,
    )  # fmt: skip
    # ... and a report as of before the second attempt still shows what it showed then.
    before = attempts[1].occurred_at - dt.timedelta(microseconds=1)
    (then,) = [g for g in _report_gaps(db, tmp_path, before) if g["meeting_id"] == refused]
    assert (then["tracking_id"], then["attempts"]) == (attempts[0].tracking_id, 1)

    # Once Webex answers, every attempt is resolved by that run.
    assert harvest_org(settings, org, WINDOW, now=NOW, db=db).status == "complete"
    assert all(g.resolved_at is not None for g in _gaps(db))
    with db.sessions() as session:
        assert open_gaps(session, WINDOW) == []
    assert_consistent(db.engine)


def test_a_refresh_refused_for_a_complete_meeting_is_retried_until_it_closes(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    # Stored complete, then a --refresh is refused: the gap must not outlive every later run
    # while the harvest says COMPLETE (the meeting used to be skipped as complete for good).
    assert harvest_org(settings, org, WINDOW, now=NOW, db=db).status == "complete"
    refused = org.meetings[4]["id"]
    faults = FaultPlan(status_for={refused: 403})
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db, faults=faults, refresh=True)
    assert summary.status == "incomplete" and summary.gaps == 1
    still = harvest_org(settings, org, WINDOW, now=NOW, db=db, faults=faults)
    assert still.status == "incomplete" and still.gaps == 1  # tried again, refused again
    assert still.meetings_skipped == len(org.meetings) - 1
    done = harvest_org(settings, org, WINDOW, now=NOW, db=db)
    assert done.status == "complete" and done.meetings_complete == 1
    with db.sessions() as session:
        assert open_gaps(session, WINDOW) == []
    assert_consistent(db.engine)


def test_a_gap_no_run_can_close_keeps_the_harvest_incomplete_like_gaps_says(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    # A meeting refused (404) by an earlier run, which Webex no longer lists (deleted there):
    # this run cannot close its gap, so it must not say COMPLETE while `gaps` says otherwise.
    victim = org.meetings[3]
    gone = meeting("GONE", "Deleted at Webex", victim["start"], victim["end"], "x@acme.test", "X")
    earlier = add_run(db, WINDOW, status="incomplete")
    store(db, earlier, [gone], {})
    with db.session() as session:
        record_gap(session, earlier, scope="participants", meeting_id="GONE", http_status=404,
                   reason="Webex answered HTTP 404")  # fmt: skip
    summary = harvest_org(settings, org, WINDOW, now=NOW, db=db)
    assert (summary.gaps, summary.still_missing, summary.status) == (0, 1, "incomplete")
    assert summary.meetings_complete == len(org.meetings)
    with db.sessions() as session:
        (run,) = session.scalars(select(HarvestRun).where(HarvestRun.id == summary.run_id))
        assert [g.meeting_id for g in open_gaps(session, WINDOW)] == ["GONE"]
    assert run.status == "incomplete"


def test_a_listing_window_refused_twice_is_one_open_gap(db: Database) -> None:
    day = (WINDOW.start, WINDOW.start + dt.timedelta(days=1))
    morning = (day[0], day[0] + dt.timedelta(hours=12))
    run_ids = []
    with db.session() as session:
        for window in (day, day, morning):
            run = HarvestRun(operator="t", hostname="t", meetaudit_version="t", api_base_url="t",
                             window_from=WINDOW.start, window_to=WINDOW.end, parameters={})  # fmt: skip
            session.add(run)
            session.flush()
            run_ids.append(run.id)
            record_gap(session, run.id, scope="meeting_list", reason=f"HTTP 500 run {run.id}",
                       http_status=500, window=window)  # fmt: skip
    with db.sessions() as session:
        gaps = open_gaps(session, WINDOW)
    # The second run's whole day supersedes the first's; the third run's failed morning is
    # narrower, so the whole day stays open beside it (its afternoon is still unlisted).
    assert [(g.harvest_run_id, g.window_to - g.window_from) for g in gaps] == [
        (run_ids[1], dt.timedelta(days=1)), (run_ids[2], dt.timedelta(hours=12)),
    ]  # fmt: skip


class _Unreachable(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def test_webex_unreachable_is_one_clear_error_not_a_gap_per_day(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    with pytest.raises(WebexUnreachable) as caught:
        harvest_org(settings, org, WINDOW, now=NOW, db=db, transport=_Unreachable(), max_retries=1)
    message = str(caught.value)
    assert message.startswith("cannot connect to Webex at https://")
    assert "Connection refused" in message and TOKEN not in message
    assert _gaps(db) == []
    with db.sessions() as session:
        (run,) = session.scalars(select(HarvestRun)).all()
    assert run.status == "failed" and "cannot connect to Webex" in (run.error or "")


def test_a_wrong_api_path_is_one_clear_error(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    def not_found(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"message": "The requested resource could not be found."})

    with pytest.raises(WebexHTTPError, match="Webex has no meeting list at") as caught:
        harvest_org(settings, org, WINDOW, now=NOW, db=db, transport=httpx.MockTransport(not_found))
    assert "check the Webex API address" in str(caught.value)
    assert _gaps(db) == []


def test_an_html_page_instead_of_the_api_is_one_clear_error(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    # A captive proxy or sign-in page answers 200 with HTML: not a truncated body to retry
    # six times per day of the window, but a wrong address or proxy, said once.
    def html(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html><body>Sign in</body></html>",
                              headers={"content-type": "text/html; charset=utf-8"})  # fmt: skip

    with pytest.raises(
        WebexNotJson, match=r"answered with text/html instead of JSON.*gave up after"
    ) as caught:
        harvest_org(settings, org, WINDOW, now=NOW, db=db, transport=httpx.MockTransport(html))
    assert "any proxy" in str(caught.value) and "nothing was stored" in str(caught.value)
    assert _gaps(db) == []
    with db.sessions() as session:
        assert session.scalars(select(Meeting)).first() is None
