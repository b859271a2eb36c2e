"""A harvested (simulated) organisation, rendered in many small parts: same bytes, same numbering.

The big-month design — bounded parts rendered in worker processes, joined afterwards — is tested
here at small scale by forcing tiny parts: the result must not depend on the number of workers,
page numbers must run through, and every meeting keeps its bookmark.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import tempfile
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import Invitee, Meeting, Participant, ParticipantDevice
from reporting.report import build_context, generate_report, verify_file, write_pdf
from reporting.report.api import snapshot
from reporting.report.context import ReportParameters
from reporting.report.render import ReportMeta
from reporting.webex.simulator import generate_org
from tests.factories import harvest_org, org_settings
from tests.report.conftest import OCT

pytestmark = pytest.mark.slow


@pytest.fixture
def harvested(db: Database, settings: Settings) -> Settings:
    org = generate_org(seed=11, start=OCT.start, end=OCT.end, meetings=14,
                       participants_per_meeting=6, hostile=True)  # fmt: skip
    summary = harvest_org(settings, org, OCT, now=dt.datetime(2026, 11, 2, tzinfo=dt.UTC), db=db)
    assert summary.status == "complete"
    return org_settings(settings, org)


def test_a_harvested_month_ties_out_to_the_database(db: Database, harvested: Settings) -> None:
    result = generate_report(harvested, db, OCT, label="2026-10", workers=1)
    assert result.complete and result.gaps == 0
    t = result.control_totals
    with db.sessions() as session:
        assert t["meetings"] == session.scalar(select(func.count()).select_from(Meeting))
        assert t["participants"] == session.scalar(select(func.count()).select_from(Participant))
        assert t["invitees"] == session.scalar(select(func.count()).select_from(Invitee))
        assert t["sessions"] == session.scalar(select(func.count()).select_from(ParticipantDevice))
    check = verify_file(db, result.path)
    assert check.ok and check.signature == "absent"
    text = "\n".join(p.extract_text() for p in PdfReader(result.path).pages)
    assert "Complete." in text and "Incomplete." not in text


def test_parts_and_workers_do_not_change_the_bytes(db: Database, harvested: Settings) -> None:
    params = ReportParameters(
        label="2026-10", period_from=OCT.start, period_to=OCT.end, timezone="Europe/Zurich",
        org_name=harvested.org_name, org_domains=tuple(harvested.org_domains),
        org_ids=tuple(harvested.org_ids), min_attendance_minutes=2.0, show_phone_numbers=False,
        roster_row_limit=10_000, exception_row_limit=500,
        as_of=dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1),
    )  # fmt: skip
    meta = ReportMeta("MAR-2026-10-TESTPART", params.as_of, "ci", "0.1.0", "70.0")
    outputs = []
    with tempfile.TemporaryDirectory() as tmp:
        with snapshot(db) as session:
            ctx = build_context(session, params, workdir=Path(tmp))
        for workers in (1, 2):
            target = Path(tmp) / f"w{workers}.pdf"
            info = write_pdf(ctx, meta, target, workers=workers, part_rows=30)
            assert info.parts > 8  # the body really was cut into many parts
            outputs.append(target.read_bytes())
    assert hashlib.sha256(outputs[0]).digest() == hashlib.sha256(outputs[1]).digest()

    reader = PdfReader(io.BytesIO(outputs[0]))
    total = len(reader.pages)
    numbers = []
    for page in reader.pages:
        match = re.search(r"Page (\d+) of (\d+)", page.extract_text())
        assert match and int(match.group(2)) == total
        numbers.append(int(match.group(1)))
    assert numbers == list(range(1, total + 1))
    roster = next(i for i, item in enumerate(reader.outline) if not isinstance(item, list)
                  and item.title.startswith("5  "))  # fmt: skip
    meeting_marks = reader.outline[roster + 1]
    assert isinstance(meeting_marks, list) and len(meeting_marks) == ctx.totals.meetings_complete
    pages = [reader.get_destination_page_number(m) for m in meeting_marks]
    assert pages == sorted(pages)
