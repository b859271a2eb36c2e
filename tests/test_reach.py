"""A report is only as complete as its listing's reach, and says so (reporting.reach).

Harvested with an administrator's token, a month's report reads "Complete." with no warning.
Harvested with a member's token, the same harvest finds nothing missing — it only saw that
person's meetings — and the report must warn on its cover and method page, its manifest and
ledger entry must say so, and `verify --ledger` must not list it as plainly complete.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from reporting.cli import cli
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.harvest import Window
from reporting.reach import period_reach
from reporting.report.api import ReportResult, generate_report, snapshot
from reporting.webex.simulator import SimulatedOrg, Simulator, TokenOwner, generate_org
from tests.factories import TOKEN, harvest_org, org_settings
from tests.report.conftest import add_run, pdf_sections

START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
OCT = Window(START, dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
NOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
WARNING = "Complete only within the listing's reach"


@pytest.fixture(scope="module")
def org() -> SimulatedOrg:
    return generate_org(seed=12, start=OCT.start, end=OCT.end, meetings=8,
                        participants_per_meeting=4)  # fmt: skip


def _member(org: SimulatedOrg) -> TokenOwner:
    host = org.meetings[0]
    return TokenOwner.member(host["hostEmail"], host["hostDisplayName"])


def _report(
    settings: Settings, db: Database, org: SimulatedOrg
) -> tuple[ReportResult, dict[str, str]]:
    result = generate_report(org_settings(settings, org), db, OCT, label="2026-10", workers=1)
    return result, pdf_sections(result.path.read_bytes())


def _flat(text: str) -> str:
    return " ".join(text.split())


def _manifest(pdf: Path) -> dict[str, Any]:
    with pikepdf.open(pdf) as doc:
        return json.loads(doc.attachments["manifest.json"].get_file().read_bytes())  # type: ignore[no-any-return]


def test_an_administrators_harvest_reads_complete_without_warning(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    assert harvest_org(settings, org, OCT, now=NOW, db=db).status == "complete"
    result, sections = _report(settings, db, org)
    cover, method = _flat(sections["Cover"]), _flat(sections["1.2"])
    assert result.complete and "Complete. Every ended meeting" in cover
    assert WARNING not in cover and "could not see the whole organisation" not in cover
    assert "Compliance Admin" in method and "an administrator of the organisation" in method
    assert (
        "the whole organisation" in method and "Scopes granted to the token: not knowable" in method
    )
    assert _manifest(result.path)["listing_reach"]["whole_organisation"] is True
    assert not any("LISTING REACH" in line for line in result.lines())


def test_a_members_harvest_warns_on_cover_method_page_manifest_and_ledger(
    settings: Settings, db: Database, org: SimulatedOrg, database_url: str, tmp_path: Path
) -> None:
    sim = Simulator(org, token=TOKEN, now=NOW, token_owner=_member(org))
    summary = harvest_org(settings, org, OCT, now=NOW, db=db, simulator=sim)
    assert summary.status == "complete" and summary.meetings_listed < len(org.meetings)
    result, sections = _report(settings, db, org)
    # Nothing the listing showed is missing...
    assert result.complete and result.gaps == 0
    # ...and the report never says "Complete." without the listing's reach beside it.
    cover, method = _flat(sections["Cover"]), _flat(sections["1.2"])
    email = org.meetings[0]["hostEmail"]
    assert "Complete." not in cover
    assert f"{WARNING}: the listing could not see the whole organisation" in cover
    assert email in cover and "no administrator" in cover
    assert "no administrator (no roles)" in method
    assert "The listing could not see the whole organisation" in method
    assert "neither in this report nor counted as missing" in method
    reach = _manifest(result.path)["listing_reach"]
    assert reach["whole_organisation"] is False and reach["verdict"] == "limited"
    assert reach["limited_spans"] == [["2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"]]
    assert any(line.startswith("  LISTING REACH: the harvest's listing could not see")
               for line in result.lines())  # fmt: skip

    env = {"MEETAUDIT_DATABASE_URL": database_url, "MEETAUDIT_CONFIG": None,
           "MEETAUDIT_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    ledger = CliRunner().invoke(cli, ["verify", "--ledger"], env=env)
    assert "complete, reach limited" in ledger.output, ledger.output
    checked = CliRunner().invoke(cli, ["verify", str(result.path)], env=env)
    assert "within the listing's reach only" in _flat(checked.output), checked.output
    # The console's overview says the same of the month (not a plain "complete").
    from reporting.web.views import month_overview

    with snapshot(db) as session:
        months = {m.month: m for m in month_overview(session, org_settings(settings, org))}
    october = months["2026-10"]
    assert october.complete and october.reach_limits
    assert "complete only within the listing's reach" in (october.attention or "")


def test_a_period_is_limited_where_only_a_members_run_listed_it(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    """The first half listed by a member, the second by an administrator: only the first half
    is limited; listed again by the administrator, nothing is."""
    half = Window(OCT.start, dt.datetime(2026, 10, 16, tzinfo=dt.UTC))
    rest = Window(half.end, OCT.end)
    member = Simulator(org, token=TOKEN, now=NOW, token_owner=_member(org))
    harvest_org(settings, org, half, now=NOW, db=db, simulator=member)
    harvest_org(settings, org, rest, now=NOW, db=db)
    with snapshot(db) as session:
        reach = period_reach(session, OCT, as_of=dt.datetime.now(dt.UTC))
    assert reach.limited == [(half.start, half.end)] and reach.verdict == "limited"
    assert [r["verdict"] for r in reach.runs] == ["limited", "organisation"]
    harvest_org(settings, org, half, now=NOW, db=db)
    with snapshot(db) as session:
        assert period_reach(session, OCT, as_of=dt.datetime.now(dt.UTC)).whole_organisation


def test_a_run_of_an_earlier_version_is_not_taken_for_the_whole_organisation(db: Database) -> None:
    add_run(db)  # a finished run with nothing recorded about its token
    with snapshot(db) as session:
        reach = period_reach(session, OCT, as_of=dt.datetime.now(dt.UTC))
    assert not reach.whole_organisation and reach.verdict == "unconfirmed"
    assert "earlier version of meetaudit" in reach.reasons[0]


def test_the_cover_of_a_limited_month_still_fits_its_page(
    settings: Settings, db: Database, org: SimulatedOrg
) -> None:
    sim = Simulator(org, token=TOKEN, now=NOW, token_owner=_member(org))
    harvest_org(settings, org, OCT, now=NOW, db=db, simulator=sim)
    result = generate_report(org_settings(settings, org), db, OCT, label="2026-10", workers=1)
    reader = PdfReader(result.path)
    assert WARNING in _flat(reader.pages[0].extract_text())
    assert "Contents" in reader.pages[1].extract_text()  # the cover did not spill over
