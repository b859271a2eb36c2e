"""A server whose paging never ends (issue 9, failure 2): every form ends as a gap naming its
scope and why, in bounded requests and time, and the harvest goes on with the rest.

Before listings were bounded, a server answering every page with a new same-host ``next`` link
made the harvest fetch thousands of pages, memory rising, until it was stopped by hand.
"""

from __future__ import annotations

import datetime as dt
import time
import tracemalloc

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from reporting.cli import cli
from reporting.config import Settings
from reporting.coverage import what_is_missing
from reporting.db.engine import Database
from reporting.db.models import Meeting
from reporting.harvest import MEETING_ITEMS_CAP, Window, listing_page_budget
from reporting.webex.simulator import FaultPlan, Simulator, generate_org, hand_faults
from tests.factories import TOKEN, harvest_org
from tests.harvest.conftest import NOW

START = dt.datetime(2026, 10, 5, tzinfo=dt.UTC)
SHORT = Window(START, START + dt.timedelta(days=3))
# Far below what the unbounded harvest fetched (4,397 pages in 90 s) and what it would take to
# notice by hand; the bounds make this a matter of seconds.
MAX_SECONDS = 60.0


@pytest.fixture(scope="module")
def small():  # type: ignore[no-untyped-def]
    return generate_org(seed=21, start=SHORT.start, end=SHORT.end, meetings=6,
                        participants_per_meeting=4)  # fmt: skip


@pytest.mark.parametrize("form", ["new-link", "same-link", "fresh-items"])
def test_an_endless_meeting_list_ends_as_a_gap_naming_its_scope(
    settings: Settings,
    db: Database,
    small,
    form: str,  # type: ignore[no-untyped-def]
) -> None:
    sim = Simulator(small, token=TOKEN, now=NOW,
                    faults=FaultPlan(endless_paging=form, endless_paths=frozenset({"/meetings"})))  # type: ignore[arg-type]  # fmt: skip
    started = time.monotonic()
    summary = harvest_org(settings, small, SHORT, simulator=sim, now=NOW, db=db)
    elapsed = time.monotonic() - started

    assert summary.status == "incomplete"
    assert elapsed < MAX_SECONDS, f"{elapsed:.1f} s"
    # Bounded: never more pages than the budget the listing of this window may spend.
    budget = listing_page_budget(10_000, settings.page_size, 3)
    assert sim.stats.requests["/meetings"] <= budget + 10
    with db.sessions() as session:
        missing = what_is_missing(session, SHORT)
        listing = [g for g in missing.open_gaps if g.scope == "meeting_list"]
    assert listing, "the runaway listing must be a gap"
    for gap in listing:
        assert gap.window_from is not None and gap.window_to is not None
        assert "site" in gap.reason  # names the scope it could not list
        assert "pages" in gap.reason or "no progress" in gap.reason or "link" in gap.reason


def test_endless_participant_lists_make_meeting_gaps_and_the_rest_is_stored(
    settings: Settings,
    db: Database,
    small,  # type: ignore[no-untyped-def]
) -> None:
    victim = small.meetings[0]["id"]
    sim = Simulator(small, token=TOKEN, now=NOW, faults=FaultPlan(
        endless_paging="fresh-items", endless_paths=frozenset({"/meetingParticipants"}),
        endless_meetings=frozenset({victim})))  # fmt: skip
    tracemalloc.start()
    try:
        summary = harvest_org(settings, small, SHORT, simulator=sim, now=NOW, db=db)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.status == "incomplete"
    # The meeting's participants are bounded by MEETING_ITEMS_CAP: fetched pages stay below it.
    pages = -(-MEETING_ITEMS_CAP // settings.page_size) + 10
    assert sim.stats.requests["/meetingParticipants"] <= pages + 4 * len(small.meetings)
    assert peak < 200 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"
    with db.sessions() as session:
        stored = set(
            session.scalars(select(Meeting.meeting_id).where(Meeting.complete_at.is_not(None)))
        )
        missing = what_is_missing(session, SHORT)
    others = {m["id"] for m in small.meetings if m["id"] != victim}
    assert victim not in stored
    assert others <= stored, "the harvest goes on with the other meetings"
    (gap,) = [g for g in missing.open_gaps if g.meeting_id == victim]
    assert "participants" in gap.reason


def test_the_cli_exits_3_and_gaps_lists_the_runaway_listing(
    database_url: str,
    tmp_path,
    small,  # type: ignore[no-untyped-def]
) -> None:
    from reporting.webex.simulator import serve

    sim = Simulator(small, token=TOKEN, now=NOW, faults=hand_faults(["endless-paging"]))
    env = {
        "MEETAUDIT_DATABASE_URL": database_url, "MEETAUDIT_CONFIG": None,
        "MEETAUDIT_DATA_DIR": str(tmp_path), "MEETAUDIT_WEBEX_TOKEN": TOKEN,
        "MEETAUDIT_SETTLE_MINUTES": "0",
    }  # fmt: skip
    with serve(sim) as base_url:
        env["MEETAUDIT_WEBEX_BASE_URL"] = base_url
        harvest = CliRunner().invoke(cli, ["--log-format", "plain", "harvest", "--from",
                                           "2026-10-05", "--to", "2026-10-08"], env=env)  # fmt: skip
    assert harvest.exit_code == 3, harvest.output
    gaps = CliRunner().invoke(cli, ["gaps", "--from", "2026-10-05", "--to", "2026-10-08"], env=env)
    assert gaps.exit_code == 3, gaps.output
    assert "pages" in gaps.output or "link" in gaps.output
