"""Plausibility checks: each implausibility the simulator can serve is refused as a gap naming
the check, or stored with a named data-quality flag that the report and manifest count."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from reporting.config import Settings
from reporting.coverage import what_is_missing
from reporting.db.engine import Database
from reporting.db.models import DataQualityFlag, HarvestRun, Meeting
from reporting.report.api import snapshot
from reporting.report.context import ReportContext, ReportParameters, build_context
from reporting.webex.plausibility import CHECKS
from reporting.webex.simulator import FaultPlan, SimulatedOrg, generate_org
from reporting.webex.simulator.implausible import PARTICIPANT_FAULTS
from tests.factories import harvest_org
from tests.harvest.conftest import END, NOW, START, WINDOW


@pytest.fixture(scope="module")
def small() -> SimulatedOrg:
    return generate_org(seed=5, start=START, end=END, meetings=16, participants_per_meeting=6)


def _context(db: Database, org: SimulatedOrg, tmp_path: Path) -> ReportContext:
    params = ReportParameters(
        label="2026-10", period_from=START, period_to=END, timezone="UTC",
        org_name=org.org_name, org_domains=tuple(org.domains), org_ids=(org.org_id,),
        min_attendance_minutes=2.0, show_phone_numbers=False, roster_row_limit=10_000,
        exception_row_limit=500, as_of=NOW.replace(year=2030),
    )  # fmt: skip
    with snapshot(db) as session:
        return build_context(session, params, workdir=tmp_path)


def _counts(ctx: ReportContext) -> dict[str, tuple[int, int]]:
    return {c["check"]: (c["refused"], c["flagged"]) for c in ctx.plausibility}


def _run_counts(db: Database) -> dict[str, dict[str, int]]:
    with db.sessions() as session:
        run = session.scalars(select(HarvestRun).order_by(HarvestRun.id.desc())).first()
        assert run is not None
        return run.parameters["plausibility"]


def test_plausible_data_is_neither_refused_nor_flagged(
    settings: Settings, db: Database, small: SimulatedOrg, tmp_path: Path
) -> None:
    summary = harvest_org(settings, small, WINDOW, now=NOW, db=db)
    assert summary.status == "complete"
    with db.sessions() as session:
        assert session.scalars(select(DataQualityFlag)).all() == []
    ctx = _context(db, small, tmp_path)
    assert ctx.complete
    assert set(_counts(ctx)) == set(CHECKS) and set(_counts(ctx).values()) == {(0, 0)}
    assert all(c == {"refused": 0, "flagged": 0} for c in _run_counts(db).values())


@pytest.mark.parametrize(
    ("fault", "check", "scope"),
    [
        ("meeting_start_outside_window", "meeting_start_outside_window", "meeting_list"),
        ("meeting_end_before_start", "meeting_end_before_start", "meeting_list"),
        ("meeting_not_an_instance", "meeting_not_an_instance", "meeting_list"),
        ("scheduled_as_instance", "meeting_not_an_instance", "meeting_list"),
        # Not over yet: a gap of the meeting itself (its id and listing window), until it ends.
        ("meeting_not_ended", "meeting_not_ended", "meeting"),
        ("participant_of_other_meeting", "participant_of_other_meeting", "participants"),
        ("invitee_of_other_meeting", "invitee_of_other_meeting", "invitees"),
    ],
)
def test_implausible_items_are_refused_as_gaps_naming_the_check(
    settings: Settings,
    db: Database,
    small: SimulatedOrg,
    tmp_path: Path,
    fault: str,
    check: str,
    scope: str,
) -> None:
    plan = FaultPlan(implausible=frozenset({fault}))
    targets = [m for m in small.meetings if plan.implausible_target(m["id"])]
    assert targets, "the fault must hit at least one meeting of the month"
    summary = harvest_org(settings, small, WINDOW, now=NOW, db=db, faults=plan)
    assert summary.status == "incomplete"

    with db.sessions() as session:
        missing = what_is_missing(session, WINDOW)
        refused = [g for g in missing.gaps if g.plausibility_check == check]
        stored = set(
            session.scalars(select(Meeting.meeting_id).where(Meeting.complete_at.is_not(None)))
        )
    assert missing.anything_open
    assert refused and {g.scope for g in refused} == {scope}
    assert all(check not in g.reason and g.reason for g in refused)  # words, not the code name
    assert not stored & {m["id"] for m in targets}  # never counted as a complete meeting
    if scope == "meeting_list":
        # The listing window asked for travels with the gap, so that window's report shows it.
        assert all(g.window_from is not None and START <= g.window_from < END for g in refused)

    ctx = _context(db, small, tmp_path)
    assert not ctx.complete
    assert _counts(ctx)[check] == (len(refused), 0)
    assert [g for g in ctx.gaps if g["check"] == check]
    assert _run_counts(db)[check]["refused"] >= len(refused)


def test_a_meeting_far_outside_its_window_is_refused_in_that_window_not_filed_elsewhere(
    settings: Settings, db: Database, small: SimulatedOrg, tmp_path: Path
) -> None:
    plan = FaultPlan(implausible=frozenset({"meeting_start_outside_window"}))
    targets = {m["id"] for m in small.meetings if plan.implausible_target(m["id"])}
    harvest_org(settings, small, WINDOW, now=NOW, db=db, faults=plan)
    with db.sessions() as session:
        assert not session.scalars(
            select(Meeting).where(Meeting.meeting_id.in_(targets))
        ).all()  # nothing filed under 1894
    ctx = _context(db, small, tmp_path)
    reasons = [g["reason"] for g in ctx.gaps if g["meeting_id"] in targets]
    assert len(reasons) == len(targets)
    assert all("1894" in r and "outside that window" in r for r in reasons)


def test_a_list_item_without_start_is_a_gap_not_a_meeting_of_no_period(
    settings: Settings, db: Database, small: SimulatedOrg
) -> None:
    plan = FaultPlan(implausible=frozenset({"missing_start"}))
    targets = {m["id"] for m in small.meetings if plan.implausible_target(m["id"])}
    summary = harvest_org(settings, small, WINDOW, now=NOW, db=db, faults=plan)
    assert summary.status == "incomplete"
    with db.sessions() as session:
        assert not session.scalars(select(Meeting).where(Meeting.start_at.is_(None))).all()
        gaps = [g for g in what_is_missing(session, WINDOW).gaps if g.meeting_id in targets]
    assert {g.meeting_id for g in gaps} == targets
    assert all("start" in g.reason and "Field required" in g.reason for g in gaps)


@pytest.mark.parametrize("fault", [f for f in PARTICIPANT_FAULTS if CHECKS[f].action == "flag"])
def test_implausible_details_are_stored_with_a_named_flag_the_report_counts(
    settings: Settings, db: Database, small: SimulatedOrg, tmp_path: Path, fault: str
) -> None:
    plan = FaultPlan(implausible=frozenset({fault}))
    targets = {m["id"] for m in small.meetings if plan.implausible_target(m["id"])}
    summary = harvest_org(settings, small, WINDOW, now=NOW, db=db, faults=plan)
    assert summary.status == "complete"  # stored, flagged: nothing is missing
    with db.sessions() as session:
        flags = session.scalars(select(DataQualityFlag)).all()
    assert flags and {f.check_name for f in flags} == {fault}
    assert {f.meeting_id for f in flags} <= targets and len({f.meeting_id for f in flags}) >= 1
    assert all(f.subject_kind == "participant" and f.subject_id and f.detail for f in flags)

    ctx = _context(db, small, tmp_path)
    assert ctx.complete
    assert _counts(ctx)[fault] == (0, len(flags))
    assert ctx.quality_flags.total == len(flags)
    assert {r["check"] for r in ctx.quality_flags.rows} == {fault}
    # Report row flags stay the report's own: no plausibility name among them.
    assert fault not in ctx.flag_counts
    assert _run_counts(db)[fault]["flagged"] == len(flags)
    if fault == "org_id_not_uuid":
        assert not [r for r in ctx.org_table if "Globex Corporation" in r["label"]]


def test_the_readme_says_what_each_check_does_with_an_item() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    for check in CHECKS.values():
        row = next((line for line in readme.splitlines() if f"| `{check.name}` |" in line), None)
        assert row is not None, f"the README's plausibility table lacks {check.name}"
        assert ("**refused**" if check.action == "refuse" else "**flagged**") in row
