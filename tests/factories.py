"""Test helpers: run the real harvester against the in-process simulator."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from pydantic import SecretStr

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
    **setting_overrides: Any,
) -> HarvestSummary:
    """Harvest ``window`` of ``org`` through the real client, in-process, fast retries."""
    sim = simulator or Simulator(org, token=TOKEN, faults=faults, now=now)
    cfg = org_settings(settings, org, **setting_overrides)
    harvester_db = db or Database.from_settings(cfg)
    try:
        return Harvester(
            cfg,
            harvester_db,
            transport=httpx.MockTransport(sim.handle),
            on_event=events.append if events is not None else None,
            now=now,
            retry_after_default=0.01,
            backoff_base=0.001,
        ).run(window, refresh=refresh)
    finally:
        if db is None:
            harvester_db.close()
