"""Test helpers: run the real harvester against the in-process simulator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr
from sqlalchemy import Engine, inspect, text

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.harvest import Harvester, HarvestEvent, HarvestSummary, Window
from reporting.webex.simulator import FaultPlan, SimulatedOrg, Simulator

TOKEN = "test-token"
API = "https://webexapis.com/v1"


def org_settings(settings: Settings, org: SimulatedOrg, **overrides: Any) -> Settings:
    """``settings`` pointed at the simulated organisation (token, domains, org id)."""
    update: dict[str, Any] = {
        "webex_token": SecretStr(TOKEN),
        "webex_base_url": API,
        "org_domains": list(org.domains),
        "org_ids": [org.org_id],
    }
    update.update(overrides)
    return settings.model_copy(update=update)


def month_of(org_start: dt.datetime) -> Window:
    """The calendar month (UTC) starting at ``org_start``."""
    nxt = (org_start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return Window(org_start, nxt)


def harvest_org(
    settings: Settings,
    org: SimulatedOrg,
    window: Window,
    *,
    faults: FaultPlan | None = None,
    simulator: Simulator | None = None,
    refresh: bool = False,
    now: dt.datetime | None = None,
    events: list[HarvestEvent] | None = None,
    db: Database | None = None,
    dry_run: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    on_event: Callable[[HarvestEvent], None] | None = None,
    **setting_overrides: Any,
) -> HarvestSummary:
    """Harvest ``window`` of ``org`` through the real client, in-process, fast retries.

    ``events`` collects every event; ``on_event`` is called too (e.g. to change the simulator
    or the database mid-run); ``transport`` replaces the in-process simulator transport.
    """
    sim = simulator or Simulator(org, token=TOKEN, faults=faults, now=now)
    cfg = org_settings(settings, org, **setting_overrides)
    harvester_db = db or Database.from_settings(cfg)

    def sink(event: HarvestEvent) -> None:
        if events is not None:
            events.append(event)
        if on_event is not None:
            on_event(event)

    try:
        return Harvester(
            cfg,
            harvester_db,
            transport=transport or httpx.MockTransport(sim.handle),
            on_event=sink,
            now=now,
            retry_after_default=0.01,
            backoff_base=0.001,
        ).run(window, refresh=refresh, dry_run=dry_run)
    finally:
        if db is None:
            harvester_db.close()


# Columns that differ between two runs that stored the same data: run ids and timestamps.
RUN_COLUMNS = frozenset({
    "first_seen_run_id", "last_listed_run_id", "complete_at", "complete_run_id",
    "harvest_run_id", "resolved_by_run_id", "occurred_at", "resolved_at", "changed_at", "id",
    "superseded_at", "superseded_by_gap_id", "attendee_report_at",
})  # fmt: skip
HARVESTED_TABLES = (
    "meetings", "participants", "participant_devices", "breakout_attendance", "invitees",
    "attendee_reports", "meeting_revisions", "harvest_gaps",
)  # fmt: skip


def snapshot(engine: Engine, *, open_gaps_only: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Every harvested table's rows, sorted, without run ids and timestamps: two databases that
    hold the same evidence have equal snapshots. Only open gaps are kept by default (a resumed
    harvest may have met and then closed some, or met the same one twice)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in HARVESTED_TABLES:
            columns = [
                c["name"] for c in inspect(conn).get_columns(table) if c["name"] not in RUN_COLUMNS
            ]
            where = (
                " WHERE resolved_at IS NULL AND superseded_at IS NULL"
                if table == "harvest_gaps" and open_gaps_only
                else ""
            )
            rows = conn.execute(text(f"SELECT {', '.join(columns)} FROM {table}{where}")).all()
            out[table] = sorted(tuple(repr(v) for v in row) for row in rows)
    return out


def assert_consistent(engine: Engine) -> None:
    """Only complete meetings have items, and each has exactly the items its mark counts."""
    with engine.connect() as conn:
        orphans = conn.execute(text(
            "SELECT count(*) FROM participants p JOIN meetings m USING (meeting_id) "
            "WHERE m.complete_at IS NULL"
        )).scalar_one()  # fmt: skip
        assert orphans == 0, f"{orphans} participants stored for incomplete meetings"
        orphans = conn.execute(text(
            "SELECT count(*) FROM invitees i JOIN meetings m USING (meeting_id) WHERE m.complete_at IS NULL"
        )).scalar_one()  # fmt: skip
        assert orphans == 0, f"{orphans} invitees stored for incomplete meetings"
        wrong = conn.execute(text(
            "SELECT m.meeting_id FROM meetings m WHERE m.complete_at IS NOT NULL AND ("
            " m.participant_count <> (SELECT count(*) FROM participants p WHERE p.meeting_id = m.meeting_id)"
            " OR m.invitee_count <> (SELECT count(*) FROM invitees i WHERE i.meeting_id = m.meeting_id))"
        )).scalars().all()  # fmt: skip
        assert not wrong, f"meetings marked complete with missing items: {wrong[:5]}"
