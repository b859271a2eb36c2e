"""The report's figures on a month where every answer is known (see conftest.build_known_month)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from reporting.db.engine import Database
from reporting.report.api import snapshot
from reporting.report.context import ReportContext, ReportParameters, build_context
from tests.report.conftest import (
    OCT,
    OWN_ORG_ID,
    _ts,
    add_run,
    build_known_month,
    device,
    invitee,
    meeting,
    person,
    store,
)


def _params(**over: Any) -> ReportParameters:
    values: dict[str, Any] = dict(
        label="2026-10", period_from=OCT.start, period_to=OCT.end, timezone="UTC",
        org_name="Acme Corporation", org_domains=("acme.example",), org_ids=(OWN_ORG_ID,),
        min_attendance_minutes=2.0, show_phone_numbers=False, roster_row_limit=10_000,
        exception_row_limit=500,
        as_of=dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=5),
    )  # fmt: skip
    values.update(over)
    return ReportParameters(**values)


@pytest.fixture
def known(db: Database, tmp_path: Path) -> ReportContext:
    build_known_month(db)
    with snapshot(db) as session:
        return build_context(session, _params(), workdir=tmp_path)


def _rows(ctx: ReportContext) -> dict[tuple[str, str], dict[str, str]]:
    with ctx.reconciliation_csv.path.open(encoding="utf-8", newline="") as fh:
        return {(r["meeting_id"], r["person_key"]): r for r in csv.DictReader(fh)}


def test_invitees_against_attendees(known: ReportContext) -> None:
    rows = _rows(known)
    status = {k[1]: r["status"] for k, r in rows.items() if k[0] == "M1"}
    assert status == {
        "hana.host@acme.example": "host_attended",
        "alice@acme.example": "invited_attended",  # invited as "  Alice@ACME.example "
        "frank@freemail.example": "invited_attended",
        "dmitry@globex.example": "invited_attended",
        "carol@partner.example": "uninvited_attended",
        "erin@acme.example": "uninvited_attended",
        "participant:p-phone": "not_testable",  # no email to look for on the list
        "dave@eu.acme.example": "lobby_only",
        "bob@globex.example": "invited_absent",
    }
    assert rows[("M2", "gina@guest.example")]["status"] == "not_testable"  # M2 has no list
    assert {k[1]: r["status_reason"] for k, r in rows.items() if r["status_reason"]} == {
        "participant:p-phone": "no_email",
        "gina@guest.example": "no_invitee_list",
    }


def test_one_attendee_per_person_with_union_of_sessions(known: ReportContext) -> None:
    alice = _rows(known)[("M1", "alice@acme.example")]
    assert alice["sessions"] == "3"
    assert alice["attended_seconds"] == str(55 * 60)  # 10:00–10:50 on two devices + 10:55–11:00
    assert alice["participant_ids"] == "p-alice-1;p-alice-2"
    assert alice["first_joined"] == "2026-10-05T10:00:00+00:00"
    assert alice["last_left"] == "2026-10-05T11:00:00+00:00"


def test_classification_and_masking(known: ReportContext) -> None:
    rows = _rows(known)
    assert (
        rows[("M1", "frank@freemail.example")]["classification"],
        rows[("M1", "frank@freemail.example")]["role"],
    ) == ("internal", "cohost")
    assert rows[("M1", "dave@eu.acme.example")]["classification"] == "internal"
    carol = rows[("M1", "carol@partner.example")]
    assert (carol["classification"], carol["org_key"], carol["org_id"]) == (
        "external",
        "partner-org-42",
        "PARTNER-ORG-42",
    )
    assert rows[("M1", "bob@globex.example")]["org_key"] == "globex.example"
    phone = rows[("M1", "participant:p-phone")]
    assert phone["classification"] == "unidentified"
    # A leading "+" would make a spreadsheet compute the number: the CSV defuses it with "'".
    assert phone["phone_numbers"] == "'+1-555-01••"
    assert phone["display_name"] == "'+1-555-01••"  # the caller's name was their number
    assert (phone["audio_types"], phone["call_types"]) == ("pstn", "callIn")
    assert "0199" not in ctx_text(known)


def ctx_text(ctx: ReportContext) -> str:
    return ctx.reconciliation_csv.path.read_text(
        encoding="utf-8"
    ) + ctx.meetings_csv.path.read_text(encoding="utf-8")


def test_data_quality_flags(known: ReportContext) -> None:
    rows = _rows(known)
    assert (
        rows[("M1", "erin@acme.example")]["flags"]
        == "placeholder_time;invitee_without_invitation;short_attendance"
    )
    assert rows[("M1", "participant:p-phone")]["flags"] == "missing_email"
    assert known.flag_counts["no_invitee_list"] == 1
    assert [r["flag"] for r in known.exceptions["flags"].rows if r["meeting_id"] == "M2"] == [
        "no_invitee_list"
    ]


def test_completeness_gaps_and_control_totals(known: ReportContext) -> None:
    t = known.totals
    assert (t.meetings, t.meetings_complete, t.meetings_not_harvested) == (
        4,
        3,
        1,
    )  # M0 is September
    assert t.participants == 9 + 1 + 7
    assert t.invitees == 5 + 6
    assert t.sessions == 11 + 1 + 7
    assert not known.complete
    gaps = list(known.gaps)
    assert [(g["meeting_id"], g["http_status"], g["tracking_id"]) for g in gaps] == [
        ("M3", 503, "ROUTER_TRACK_777")
    ]
    meetings = {m["meeting_id"]: m for m in known.meetings}
    assert meetings["M3"]["harvest_status"] == "not_harvested"
    assert [r["id"] for r in known.harvest_runs] == [1]


def test_per_organisation_table(known: ReportContext) -> None:
    table = {(r["classification"], r["org_key"]): r for r in known.org_table}
    internal = table[("internal", "Acme Corporation")]
    assert (internal["meetings"], internal["people"]) == (2, 4)  # hana (M1, M4), alice, erin, frank
    assert table[("external", "globex.example")]["people"] == 1  # bob never came: not counted
    assert table[("external", "partner-org-42")]["minutes"] == 40
    assert table[("unidentified", None)]["people"] == 1


def test_a_person_is_counted_under_one_organisation_all_period(
    db: Database, tmp_path: Path
) -> None:
    """Webex gives orgId in one meeting and leaves it out of the next: still one organisation."""
    run = add_run(db)
    ma = meeting("MA", "With orgId", _ts(5, 10), _ts(5, 11), "hana@acme.example", "Hana")
    mb = meeting("MB", "Without", _ts(6, 10), _ts(6, 11), "hana@acme.example", "Hana")
    slot = [device(_ts(5, 10), _ts(5, 10, 30))]
    later = [device(_ts(6, 10), _ts(6, 10, 30))]
    store(db, run, [ma, mb], {
        "MA": ([person("a-dan", "MA", "Dan", "dan@globex.example", slot, orgId="GLOBEX-1")], []),
        # Dan without his orgId; Eve, same domain, never given one; Bob invited, never came.
        "MB": ([person("b-dan", "MB", "Dan", "Dan@Globex.example", later),
                person("b-eve", "MB", "Eve", "eve@globex.example", later)],
               [invitee("MB", "dan@globex.example", "Dan"),
                invitee("MB", "bob@globex.example", "Bob")]),
    })  # fmt: skip
    with snapshot(db) as session:
        ctx = build_context(session, _params(), workdir=tmp_path)
    rows = _rows(ctx)
    dan_b = rows[("MB", "dan@globex.example")]
    assert (dan_b["org_key"], dan_b["org_id"]) == ("globex-1", "")  # as Webex gave it: none
    assert rows[("MB", "eve@globex.example")]["org_key"] == "globex.example"  # never guessed
    assert rows[("MB", "bob@globex.example")]["org_key"] == "globex.example"
    ext = ctx.exceptions["external_people"]
    assert ext.total == ctx.totals.external_people == 2  # Dan once, Eve; not Dan twice
    assert {(r["org_key"], r["email"], r["meetings"]) for r in ext.rows} == {
        ("globex-1", "dan@globex.example", 2),
        ("globex.example", "eve@globex.example", 1),
    }
    table = {r["org_key"]: r for r in ctx.org_table if r["classification"] == "external"}
    assert (table["globex-1"]["people"], table["globex-1"]["meetings"]) == (1, 2)
    assert table["globex-1"]["seen_with"] == ["globex.example"]
    assert (table["globex.example"]["people"], table["globex.example"]["seen_with"]) == (
        1,
        ["globex-1"],
    )


def test_rows_recorded_after_the_report_are_left_out(db: Database, tmp_path: Path) -> None:
    build_known_month(db)
    with snapshot(db) as session:
        ctx = build_context(
            session, _params(as_of=dt.datetime(2026, 11, 2, tzinfo=dt.UTC)), workdir=tmp_path
        )
    # The harvest run started 2026-11-02 01:00, after this as_of: nothing of it counts.
    assert ctx.harvest_runs == []
    assert ctx.totals.meetings == 0


def test_exception_lists_are_capped_but_counted(db: Database, tmp_path: Path) -> None:
    build_known_month(db)
    with snapshot(db) as session:
        ctx = build_context(session, _params(exception_row_limit=1), workdir=tmp_path)
    uninvited = ctx.exceptions["uninvited"]
    # Carol and Erin; the phone caller, with no email to look for, is not testable.
    assert (uninvited.total, len(uninvited.rows), uninvited.truncated) == (2, 1, True)


def test_rosters_dropped_above_the_limit(db: Database, tmp_path: Path) -> None:
    build_known_month(db)
    with snapshot(db) as session:
        ctx = build_context(session, _params(roster_row_limit=5), workdir=tmp_path)
    assert ctx.rosters is None
    assert ctx.totals.reconciliation_rows == 9 + 1 + 7


def test_class_totals_are_rounded_once_from_unrounded_seconds() -> None:
    # Three external organisations of 20.4 minutes each: 61.2 minutes, shown as 61 — the sum of
    # the rounded rows (20 + 20 + 20 = 60) would not tie with the CSVs.
    from types import SimpleNamespace

    from reporting.report.charts import class_bars

    rows = [{"classification": "external", "minutes": 20, "seconds": 20.4 * 60} for _ in range(3)]
    bars = class_bars(SimpleNamespace(org_table=rows))  # type: ignore[arg-type]
    external = next(b for b in bars["bars"] if b["label"] == "External")
    assert external["value"] == 61 and bars["total"] == 61
