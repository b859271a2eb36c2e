"""A report never says Complete while `meetaudit gaps` finds something missing (issue 9, failure 1).

A meeting-list item that fails validation is recorded as a gap that names the item's meeting id
*and* the listing window it came from, and no meeting row is stored for it. Every face of
meetaudit — `gaps`, `report` (cover, appendix, manifest, ledger, exit status) and `monthly` — must
count it as missing from the window's period.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx
import pikepdf
import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from reporting.cli import _print_harvest_summary, cli
from reporting.config import load_settings
from reporting.coverage import what_is_missing
from reporting.db.engine import Database
from reporting.db.models import HarvestRun, Meeting, ReportRun
from reporting.db.writes import record_gap
from reporting.webex.simulator import Simulator, generate_org, serve
from tests.factories import TOKEN, harvest_org
from tests.harvest.conftest import NOW
from tests.report.conftest import OCT, add_run, meeting, pdf_sections, store

DAY = (dt.datetime(2026, 10, 9, tzinfo=dt.UTC), dt.datetime(2026, 10, 10, tzinfo=dt.UTC))
REFUSED = "refused-item-0009"


def _env(database_url: str, tmp_path: Path, **extra: str | None) -> dict[str, str | None]:
    return {
        "MEETAUDIT_DATABASE_URL": database_url,
        "MEETAUDIT_DATA_DIR": str(tmp_path / "data"),
        "MEETAUDIT_OUTPUT_DIR": str(tmp_path / "reports"),
        "MEETAUDIT_CONFIG": None,
        "MEETAUDIT_SIGNING_KEY_FILE": None,
        **extra,
    }


def _manifest(pdf: Path) -> dict[str, object]:
    with pikepdf.open(pdf) as doc:
        return json.loads(doc.attachments["manifest.json"].get_file().read_bytes())  # type: ignore[no-any-return]


def _refused_item_month(db: Database) -> None:
    """October listed by a finished run; one meeting stored; one list item refused."""
    run = add_run(db, status="incomplete", gaps=1)
    ok = meeting("OK1", "Stored fine", "2026-10-05T10:00:00Z", "2026-10-05T11:00:00Z",
                 "hana.host@acme.example", "Hana Host")  # fmt: skip
    store(db, run, [ok], {"OK1": ([], [])})
    with db.session() as session:
        record_gap(
            session, run, scope="meeting_list", meeting_id=REFUSED, window=DAY,
            reason="meeting item 3 of the listing does not fit the schema: 'title' is not text",
        )  # fmt: skip
        # What the run counted of items listed in another state than ended (see below).
        session.execute(
            text("UPDATE harvest_runs SET parameters = CAST(:p AS jsonb) WHERE id = :id"),
            {"p": json.dumps({"listed_not_ended": {"scheduled": 1, "inProgress": 2}}), "id": run},
        )


def test_a_refused_list_item_makes_gaps_report_and_ledger_incomplete(
    database_url: str, tmp_path: Path
) -> None:
    with Database(database_url, data_dir=tmp_path) as db:
        _refused_item_month(db)
        env = _env(database_url, tmp_path)
        gaps = CliRunner().invoke(cli, ["gaps", "--month", "2026-10"], env=env)
        assert gaps.exit_code == 3, gaps.output
        assert f"{REFUSED} (listing 2026-10-09 00:00 – 2026-10-10 00:00; no meeting" in gaps.output

        out = CliRunner().invoke(cli, ["report", "--month", "2026-10"], env=env)
        assert out.exit_code == 3, out.output
        assert "INCOMPLETE: 1 open gap, listed in its Appendix A" in out.stderr
        pdf = next((tmp_path / "reports").glob("*.pdf"))
        sections = pdf_sections(pdf.read_bytes())
        assert "Incomplete." in sections["Cover"] and "Complete." not in sections["Cover"]
        assert REFUSED in sections["A"].replace("\n", "")
        assert "'title' is not text" in sections["A"].replace("\n", " ")
        method = sections["1.2"].replace("\n", " ")
        assert "Listed but not ended: 3 (inProgress: 2, scheduled: 1)" in method
        manifest = _manifest(pdf)
        assert manifest["complete"] is False
        assert manifest["listed_not_ended"] == {"inProgress": 2, "scheduled": 1}
        assert manifest["control_totals"]["gaps"] == 1  # type: ignore[index]
        with db.session() as session:
            entry = session.scalars(select(ReportRun)).one()
            assert entry.complete is False and entry.control_totals["gaps"] == 1
        ledger = CliRunner().invoke(cli, ["verify", "--ledger"], env=env)
        assert "INCOMPLETE" in ledger.output


def test_monthly_prints_the_open_gaps_it_exits_3_for(database_url: str, tmp_path: Path) -> None:
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    org = generate_org(seed=5, start=start, end=OCT.end, meetings=6, participants_per_meeting=3)
    refused = org.meetings[2]
    refused["title"] = 12345  # valid JSON, not the text the schema asks for: the item is refused
    with serve(Simulator(org, token=TOKEN)) as base_url:
        env = _env(
            database_url, tmp_path,
            MEETAUDIT_WEBEX_BASE_URL=base_url, MEETAUDIT_WEBEX_TOKEN=TOKEN,
            MEETAUDIT_WEBEX_TOKEN_FILE=None, MEETAUDIT_WEBEX_REFRESH_TOKEN=None,
        )  # fmt: skip
        out = CliRunner().invoke(cli, ["monthly", "--month", "2026-10"], env=env)
    assert out.exit_code == 3, out.output
    assert "INCOMPLETE (1 open gap" in out.stderr, out.stderr
    gaps = CliRunner().invoke(cli, ["gaps", "--month", "2026-10"], env=env)
    assert gaps.exit_code == 3 and refused["id"] in gaps.output
    assert len(gaps.output.splitlines()) == 1, gaps.output
    pdf = next((tmp_path / "reports").glob("*.pdf"))
    assert "Incomplete." in pdf_sections(pdf.read_bytes())["Cover"]
    assert _manifest(pdf)["complete"] is False
    with Database(database_url, data_dir=tmp_path) as db, db.session() as session:
        assert session.execute(text("SELECT complete FROM report_runs")).scalar_one() is False


def test_items_listed_in_another_state_are_counted_and_a_live_one_is_a_gap(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    org = generate_org(seed=7, start=start, end=OCT.end, meetings=4, participants_per_meeting=2)
    sim = Simulator(org, token=TOKEN, now=NOW)
    # Each with every field the spec requires of a list item, so only its state is unusual.
    extra = [
        {"id": "live-1", "meetingSeriesId": "s-live", "state": "inProgress",
         "meetingType": "meeting", "start": "2026-10-09T09:00:00Z",
         "end": "2026-10-09T10:00:00Z", "title": "Still going"},
        {"id": "sched-1", "meetingSeriesId": "s-sched", "state": "scheduled",
         "meetingType": "meeting", "start": "2026-10-09T11:00:00Z",
         "end": "2026-10-09T12:00:00Z", "title": "Never held"},
        {"id": "ready-1", "meetingSeriesId": "s-ready", "state": "ready",
         "meetingType": "meeting", "start": "2026-10-09T12:00:00Z",
         "end": "2026-10-09T13:00:00Z", "title": "Ready"},
    ]  # fmt: skip

    async def handle(request: httpx.Request) -> httpx.Response:
        response = await sim.handle(request)
        await response.aread()
        if request.url.path.endswith("/meetings") and response.status_code == 200:
            if request.url.params.get("from", "").startswith("2026-10-09"):
                body = json.loads(response.content)
                body["items"] = [*body["items"], *extra]
                headers = {k: v for k, v in response.headers.items() if k != "content-length"}
                return httpx.Response(200, json=body, headers=headers)
        return response

    settings = load_settings(database_url=database_url, data_dir=tmp_path, output_dir=tmp_path)
    summary = harvest_org(
        settings, org, OCT, simulator=sim, now=NOW, transport=httpx.MockTransport(handle)
    )
    assert summary.listed_not_ended == {"inProgress": 1, "ready": 1, "scheduled": 1}
    assert summary.status == "incomplete" and summary.meetings_listed == len(org.meetings)
    _print_harvest_summary(summary)
    assert (
        "listed but not ended: 3 (inProgress: 1, ready: 1, scheduled: 1)" in capsys.readouterr().out
    )
    with Database(database_url, data_dir=tmp_path) as db, db.session() as session:
        run = session.get(HarvestRun, summary.run_id)
        assert run is not None and run.parameters["listed_not_ended"] == summary.listed_not_ended
        missing = what_is_missing(session, OCT)
        assert [g.meeting_id for g in missing.open_gaps] == ["live-1"]
        assert "'inProgress'" in missing.open_gaps[0].reason
        stored = session.scalars(select(Meeting.meeting_id)).all()
        assert not {"live-1", "sched-1", "ready-1"} & set(stored)
    env = {"MEETAUDIT_DATABASE_URL": database_url, "MEETAUDIT_CONFIG": None}
    gaps = CliRunner().invoke(cli, ["gaps", "--month", "2026-10"], env=env)
    assert gaps.exit_code == 3 and "live-1" in gaps.output and "sched-1" not in gaps.output
