"""A window that reaches into the present cannot be complete yet, and says so."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from reporting.config import Settings
from reporting.coverage import open_gaps
from reporting.db.engine import Database
from reporting.db.models import HarvestGap
from reporting.webex.simulator import SimulatedOrg
from tests.factories import harvest_org
from tests.harvest.conftest import END, NOW, WINDOW


def test_a_window_not_over_yet_is_incomplete_until_a_later_run(
    settings: Settings, org: SimulatedOrg, db: Database
) -> None:
    # Harvest October while it is still October 25th: the rest of the month has not happened.
    early = dt.datetime(2026, 10, 25, 12, tzinfo=dt.UTC)
    first = harvest_org(settings, org, WINDOW, now=early, db=db)
    assert first.status == "incomplete"
    with db.session() as session:
        gaps = open_gaps(session, WINDOW)
        not_over = [g for g in gaps if "not over yet" in g.reason]
        assert len(not_over) == 1
        assert not_over[0].window_to == END
        assert not_over[0].window_from == early - dt.timedelta(minutes=settings.settle_minutes)

    # After the month has settled, the same command completes it and closes the gap.
    second = harvest_org(settings, org, WINDOW, now=NOW, db=db)
    assert second.status == "complete", second
    with db.session() as session:
        assert open_gaps(session, WINDOW) == []
        closed = session.scalars(
            select(HarvestGap).where(HarvestGap.reason.contains("not over yet"))
        )
        assert all(g.resolved_by_run_id == second.run_id for g in closed)
