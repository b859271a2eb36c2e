"""A period no finished harvest has listed is never reported as complete."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner

from reporting.cli import cli
from reporting.config import load_settings
from reporting.coverage import uncovered, what_is_missing
from reporting.db.engine import Database
from reporting.db.models import HarvestRun
from reporting.db.writes import (
    MeetingRecord,
    record_gap,
    store_meetings,
    upsert_listed_meetings,
)
from reporting.harvest import Window
from reporting.report.api import generate_report
from reporting.webex import schemas

D = [dt.datetime(2026, 10, day, tzinfo=dt.UTC) for day in range(1, 32)]
OCT = Window(D[0], dt.datetime(2026, 11, 1, tzinfo=dt.UTC))


def test_uncovered_spans_are_what_no_window_includes() -> None:
    period = (D[0], D[30])
    assert uncovered(period, []) == [period]
    assert uncovered(period, [(D[0], D[30])]) == []
    assert uncovered(period, [(D[0] - dt.timedelta(days=9), D[30] + dt.timedelta(days=9))]) == []
    # Overlapping, touching, out of order and outside windows.
    covered = [
        (D[10], D[15]),
        (D[2], D[5]),
        (D[4], D[8]),
        (D[15], D[20]),
        (D[25], D[30] + dt.timedelta(1)),
    ]
    assert uncovered(period, covered) == [(D[0], D[2]), (D[8], D[10]), (D[20], D[25])]


def _run(session: object, status: str, window: Window) -> int:
    run = HarvestRun(operator="t", hostname="t", meetaudit_version="t", api_base_url="t",
                     window_from=window.start, window_to=window.end, parameters={}, status=status,
                     finished_at=None if status in ("running",) else dt.datetime.now(dt.UTC))  # fmt: skip
    session.add(run)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    return run.id


def _meeting(n: int) -> tuple[schemas.Meeting, dict[str, object]]:
    raw: dict[str, object] = {
        "id": f"m{n}", "meetingSeriesId": f"s{n}", "title": f"Meeting {n}",
        "meetingType": "meeting", "state": "ended",
        "start": f"2026-10-{n + 1:02d}T09:00:00Z", "end": f"2026-10-{n + 1:02d}T10:00:00Z",
    }  # fmt: skip
    return schemas.Meeting.model_validate(raw), raw


def test_a_month_never_harvested_is_not_complete(database_url: str, tmp_path: Path) -> None:
    settings = load_settings(database_url=database_url, data_dir=tmp_path, output_dir=tmp_path)
    with Database(database_url, data_dir=tmp_path) as db:
        result = generate_report(settings, db, OCT, label="2026-10", formats=("csv",))
    assert not result.complete and result.gaps == 1
    env = {"MEETAUDIT_DATABASE_URL": database_url, "MEETAUDIT_TIMEZONE": "Europe/Zurich"}
    out = CliRunner().invoke(cli, ["gaps", "--month", "2026-10"], env=env)
    assert out.exit_code == 3, out.output
    # The month in Zurich time: 2026-10-01 00:00 +02:00 to 2026-11-01 00:00 +01:00.
    assert "not listed 2026-10-01 00:00 – 2026-11-01 00:00: no finished harvest" in out.output


def test_gaps_lists_what_an_interrupted_harvest_left_and_the_report_agrees(
    database_url: str, tmp_path: Path
) -> None:
    settings = load_settings(database_url=database_url, data_dir=tmp_path, output_dir=tmp_path)
    env = {"MEETAUDIT_DATABASE_URL": database_url}
    with Database(database_url, data_dir=tmp_path) as db:
        with db.session() as session:
            run = _run(session, "interrupted", OCT)
            upsert_listed_meetings(session, run, [_meeting(1), _meeting(2)])
            store_meetings(session, run, [MeetingRecord("m1", [], [])])
        out = CliRunner().invoke(cli, ["gaps", "--month", "2026-10"], env=env)
        lines = out.output.splitlines()
        assert out.exit_code == 3 and len(lines) == 2, out.output
        assert lines[0].startswith("not listed 2026-10-01 00:00 – 2026-11-01 00:00")
        assert lines[1].startswith("meeting m2 (2026-10-03 09:00, Meeting 2): listed, but")

        # A later run finished listing the month (and was stopped before m2): m2 is still open.
        with db.session() as session:
            _run(session, "incomplete", OCT)
        out = CliRunner().invoke(cli, ["gaps", "--month", "2026-10"], env=env)
        assert out.exit_code == 3 and out.output.splitlines() == lines[1:]
        report = generate_report(settings, db, OCT, label="2026-10", formats=("csv",))
        assert not report.complete and report.gaps == 1

        with db.session() as session:
            store_meetings(session, run, [MeetingRecord("m2", [], [])])
        out = CliRunner().invoke(cli, ["gaps", "--month", "2026-10"], env=env)
        assert out.exit_code == 0 and out.output.startswith("Nothing missing")
        assert generate_report(settings, db, OCT, label="2026-10", formats=("csv",)).complete


def test_which_period_a_gap_belongs_to(database_url: str, tmp_path: Path) -> None:
    """Stored meeting's start, else the gap's listing window, else the recording run's window."""
    nov = Window(dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    nov_1 = (nov.start, nov.start + dt.timedelta(days=1))
    with Database(database_url, data_dir=tmp_path) as db, db.session() as session:
        run = _run(session, "incomplete", OCT)
        nov_run = _run(session, "incomplete", nov)
        late, raw = _meeting(29)  # 30 October 09:00
        upsert_listed_meetings(session, run, [(late, raw)])
        # Refused while listing 1 November although it started in October: both months.
        record_gap(session, nov_run, scope="meeting_list", meeting_id="m29", window=nov_1,
                   reason="start outside the window listed")  # fmt: skip
        # A meeting id never stored, no window: the window of the run that recorded it.
        record_gap(session, nov_run, scope="participants", meeting_id="ghost", reason="403")
        # A refused item of 1 November that was never stored: November only.
        record_gap(session, nov_run, scope="meeting_list", meeting_id="x1", window=nov_1,
                   reason="not an instance")  # fmt: skip
        october = what_is_missing(session, OCT)
        november = what_is_missing(session, nov)
        assert [g.meeting_id for g in october.gaps] == ["m29"]
        assert {g.meeting_id for g in november.gaps} == {"m29", "ghost", "x1"}
        assert october.open_count == 1 and november.open_count == 3

        # As of a moment before the gaps were recorded, they were not missing yet; once
        # fetched, the gap is closed from then on but still open as of before.
        before = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        assert what_is_missing(session, OCT, as_of=before).gaps == []
        store_meetings(session, run, [MeetingRecord("m29", [], [])])
        assert not what_is_missing(session, OCT).anything_open
        later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        assert not what_is_missing(session, OCT, as_of=later).anything_open
