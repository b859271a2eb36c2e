"""What an operator sees while a harvest runs: JSON lines, plain lines, a Rich bar."""

from __future__ import annotations

import io
import json

import pytest

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.harvest import HarvestEvent
from reporting.progress import HarvestProgress, choose_format
from reporting.webex.simulator import FaultPlan, SimulatedOrg
from tests.factories import harvest_org
from tests.harvest.conftest import NOW, WINDOW


@pytest.fixture
def events(settings: Settings, db: Database, org: SimulatedOrg) -> list[HarvestEvent]:
    collected: list[HarvestEvent] = []
    faults = FaultPlan(
        rate_limit_every=11, retry_after_seconds=0, status_for={org.meetings[0]["id"]: 404}
    )
    harvest_org(settings, org, WINDOW, now=NOW, db=db, faults=faults, events=collected)
    return collected


def test_json_lines_are_one_object_per_event_and_end_with_the_summary(
    events: list[HarvestEvent],
) -> None:
    stream = io.StringIO()
    with HarvestProgress("json", stream=stream) as progress:
        for event in events:
            progress(event)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(records) == len(events)
    assert all(isinstance(r["ts"], float) and r["event"] for r in records)
    gap = next(r for r in records if r["event"] == "gap")
    assert gap["status"] == 404 and gap["tracking_id"] and gap["meeting_id"]
    assert any(r["event"] == "retry" and r["status"] == 429 for r in records)
    final = records[-1]
    assert final["event"] == "finished" and final["message"] == "incomplete"
    assert final["summary"]["gaps"] == 1 and final["summary"]["rate_limited"] > 0
    assert final["summary"]["notes"]["attendee_report"]["http_status"] == 403


def test_plain_lines_for_a_log_file(events: list[HarvestEvent]) -> None:
    stream = io.StringIO()
    with HarvestProgress("plain", stream=stream) as progress:
        for event in events:
            progress(event)
    text = stream.getvalue()
    assert "ended meetings listed" in text and "meetings to fetch" in text
    assert "gap: Webex answered HTTP 404" in text
    assert "rate limited (HTTP 429)" in text
    last = [line for line in text.splitlines() if line.startswith("meetings ")][-1]
    assert last.startswith("meetings 40/40") and "gaps 1" in last


def test_rich_bar_on_a_terminal(
    events: list[HarvestEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    stream = io.StringIO()
    with HarvestProgress("rich", stream=stream) as progress:
        for event in events:
            progress(event)
    text = stream.getvalue()
    assert "Fetching meetings" in text and "40/40" in text and "gap:" in text


def test_format_follows_the_terminal() -> None:
    assert choose_format("auto", io.StringIO()) == "plain"
    assert choose_format("json", io.StringIO()) == "json"
