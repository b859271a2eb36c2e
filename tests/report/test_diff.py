"""A second report of a period names the first and says what changed; altered stored data is a
finding.

The known month is reported, then changed the way it changes in practice — a later harvest that
stores a meeting again with other content, fetches a meeting that was a gap, lists a new one —
or the way an administrator could change it: SQL on the stored rows. Reports are written as JSON
(fast); the changes section is read from the context the PDF prints, and one test renders the PDF.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pypdf import PdfReader
from sqlalchemy import select, text

from reporting.cli import cli
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import HarvestRun, ReportRun
from reporting.report import generate_report, verify_file
from reporting.report.api import snapshot
from reporting.report.context import ReportContext, ReportParameters
from reporting.report.diff import (
    CHANGE_COLUMNS,
    ReportRows,
    build_report_context,
    compare,
    lines,
    summarise,
)
from reporting.webex.simulator import Simulator, generate_org
from tests.factories import TOKEN, harvest_org, org_settings
from tests.report.conftest import (
    OCT,
    _ts,
    add_run,
    build_known_month,
    device,
    invitee,
    known_settings,
    meeting,
    person,
    store,
)


@pytest.fixture
def known(db: Database, settings: Settings) -> Settings:
    """The known month stored; its settings (reports go to ``tmp_path/reports``)."""
    build_known_month(db)
    return known_settings(settings, timezone="UTC")


def _json_report(settings: Settings, db: Database) -> tuple[Any, dict[str, Any]]:
    result = generate_report(settings, db, OCT, label="2026-10", formats=("json",))
    return result, json.loads(result.path.read_bytes())


def _entry(db: Database, report_id: str) -> ReportRun:
    with db.sessions() as session:
        row = session.scalars(select(ReportRun).where(ReportRun.report_id == report_id)).one()
        session.expunge(row)
        return row


def _printed_context(db: Database, report_id: str, tmp: Path) -> ReportContext:
    """The context the PDF of ``report_id`` prints: rebuilt with its recorded parameters, as
    ``report --reproduce`` does."""
    params = ReportParameters.from_json(_entry(db, report_id).parameters["report"])
    tmp.mkdir(parents=True, exist_ok=True)
    with snapshot(db) as session:
        return build_report_context(session, params, workdir=tmp)


def _env(settings: Settings, database_url: str) -> dict[str, str | None]:
    return {
        "MEETAUDIT_CONFIG": None,
        "MEETAUDIT_SIGNING_KEY_FILE": None,
        "MEETAUDIT_DATABASE_URL": database_url,
        "MEETAUDIT_DATA_DIR": str(settings.data_dir),
        "MEETAUDIT_OUTPUT_DIR": str(settings.output_dir),
        "MEETAUDIT_ORG_NAME": settings.org_name,
        "MEETAUDIT_ORG_DOMAINS": ",".join(settings.org_domains),
        "MEETAUDIT_ORG_IDS": ",".join(settings.org_ids),
        "MEETAUDIT_TIMEZONE": "UTC",
    }


def meetaudit(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(cli, ["--log-format", "plain", *args], env=env)


def _harvest_changes(db: Database) -> None:
    """A later harvest: M1 again with Bob now attending, Dmitry leaving ten minutes earlier and
    Erin gone; M3 (a gap until now) fetched; a new meeting M5."""
    from tests.report.conftest import OWN_ORG_ID

    now = dt.datetime.now(dt.UTC)
    with db.session() as session:  # a run of now, after the first report
        run = HarvestRun(operator="harvester@ci", hostname="ci-host", meetaudit_version="0.1.0",
                         api_base_url="https://webexapis.com/v1", window_from=OCT.start,
                         window_to=OCT.end, parameters={}, status="complete", started_at=now,
                         finished_at=now)  # fmt: skip
        session.add(run)
        session.flush()
        run_id = run.id
    m1 = meeting("M1", "Quarterly controls review", _ts(5, 10), _ts(5, 11),
                 "hana.host@acme.example", "Hana Host")  # fmt: skip
    m3 = meeting("M3", "Board prep (never fetched)", _ts(7, 14), _ts(7, 15),
                 "hana.host@acme.example", "Hana Host")  # fmt: skip
    m5 = meeting("M5", "Late addition", _ts(20, 9), _ts(20, 10),
                 "hana.host@acme.example", "Hana Host")  # fmt: skip
    p1 = [
        person("p-host", "M1", "Hana Host", "hana.host@acme.example",
               [device(_ts(5, 10), _ts(5, 11))], host=True),
        person("p-alice-1", "M1", "Alice Ångström", "alice@acme.example",
               [device(_ts(5, 10), _ts(5, 10, 30)), device(_ts(5, 10, 20), _ts(5, 10, 50))],
               invitee=True),
        person("p-alice-2", "M1", "Alice Ångström", "ALICE@acme.example",
               [device(_ts(5, 10, 55), _ts(5, 11))], invitee=True),
        person("p-carol", "M1", "Carol Partner", "carol@partner.example",
               [device(_ts(5, 10, 5), _ts(5, 10, 45))], orgId="PARTNER-ORG-42"),
        person("p-dave", "M1", "Dave Lobby", "dave@eu.acme.example",
               [device(_ts(5, 10, 1), _ts(5, 10, 9), audioType="inactive")], state="lobby"),
        person("p-phone", "M1", "+1-555-0199", None,
               [device(_ts(5, 10, 10), _ts(5, 10, 40), audioType="pstn", callType="callIn",
                       phoneNumber="+1-555-0199", deviceType="phone")]),
        person("p-frank", "M1", "Frank Field", "frank@freemail.example",
               [device(_ts(5, 10), _ts(5, 10, 30))], orgId=OWN_ORG_ID.upper(), coHost=True),
        person("p-dmitry", "M1", "Дмитрий Смирнов", "dmitry@globex.example",
               [device(_ts(5, 10), _ts(5, 10, 30))]),
        person("p-bob", "M1", "Bob Absent", "bob@globex.example",
               [device(_ts(5, 10, 15), _ts(5, 10, 45))], invitee=True),
    ]  # fmt: skip
    i1 = [
        invitee("M1", "  Alice@ACME.example ", "Alice Ångström"),
        invitee("M1", "bob@globex.example", "Bob Absent"),
        invitee("M1", "dave@eu.acme.example", "Dave Lobby"),
        invitee("M1", "frank@freemail.example", "Frank Field", coHost=True),
        invitee("M1", "dmitry@globex.example", "Дмитрий Смирнов"),
    ]
    p3 = [person("p-zed", "M3", "Zed Board", "zed@acme.example", [device(_ts(7, 14), _ts(7, 15))])]
    p5 = [person("p-yan", "M5", "Yan Late", "yan@acme.example", [device(_ts(20, 9), _ts(20, 10))])]
    store(db, run_id, [m1, m3, m5], {"M1": (p1, i1), "M3": (p3, []), "M5": (p5, [])})


def _changes(ctx: ReportContext) -> set[tuple[str, str, str, str, str]]:
    assert ctx.changes is not None
    return {
        (c["change"], c["meeting_id"], c["display_name"], c["before"], c["after"])
        for c in ctx.changes["rows"]
    }


# -- a report of a period with no earlier report -------------------------------------------------


def test_a_first_report_of_a_period_supersedes_nothing(
    db: Database, known: Settings, tmp_path: Path
) -> None:
    first, data = _json_report(known, db)
    assert (
        "supersedes" not in data["manifest"] and "supersedes" not in data["manifest"]["parameters"]
    )
    assert "changes_since_superseded" not in data["manifest"]
    assert "supersedes" not in _entry(db, first.files[0].report_id).parameters["report"]
    assert not any("Supersedes" in line for line in first.lines())
    ctx = _printed_context(db, first.files[0].report_id, tmp_path / "ctx")
    assert ctx.changes is None and ctx.changes_csv is None
    assert ctx.stored_checked == 3 and ctx.altered_meetings == []  # M1, M2, M4 are stored


# -- a second report names the first and says what changed --------------------------------------


def test_a_second_report_names_the_first_and_lists_what_changed(
    db: Database, known: Settings, tmp_path: Path, database_url: str
) -> None:
    first, _ = _json_report(known, db)
    first_id = first.files[0].report_id
    _harvest_changes(db)
    second, data = _json_report(known, db)
    second_id = second.files[0].report_id

    named = {"report_id": first_id, "generated_at": first.generated_at.isoformat().replace(
        "+00:00", "Z"), "sha256": first.files[0].sha256}  # fmt: skip
    manifest = data["manifest"]
    assert manifest["supersedes"] == named
    assert _entry(db, second_id).parameters["report"]["supersedes"] == named
    summary = manifest["changes_since_superseded"]
    assert summary["problems"] == []
    assert summary["reproducible"] is True and summary["restored_meetings"] == 1
    assert summary["counts"] == {
        "meeting_added": 1, "meeting_removed": 0, "meeting_harvested": 1,
        "meeting_unharvested": 0, "person_added": 1, "person_removed": 1, "reclassified": 1,
        "minutes_changed": 1,
    }  # fmt: skip
    assert any(f"Supersedes report {first_id}" in line and "6 changes" in line
               for line in second.lines())  # fmt: skip

    # What the PDF prints: the earlier rows of M1 come from the revision the harvest kept, so
    # only what really changed is listed — not every person of M1 as removed and added again.
    ctx = _printed_context(db, second_id, tmp_path / "ctx")
    assert _changes(ctx) == {
        ("meeting_added", "M5", "", "", "harvested"),
        ("meeting_harvested", "M3", "", "not harvested", "harvested"),
        ("person_added", "M3", "Zed Board", "", "Not testable, internal, 60.00 min"),
        ("reclassified", "M1", "Bob Absent", "Invited, absent, external",
         "Invited, attended, external"),
        ("person_removed", "M1", "Erin Early", "Not invited, internal, 1.00 min", ""),
        ("minutes_changed", "M1", "Дмитрий Смирнов", "40.00", "30.00"),
    }  # fmt: skip
    assert ctx.changes_csv is not None
    with ctx.changes_csv.path.open(encoding="utf-8", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 6
    totals = {t["name"]: (t["before"], t["after"]) for t in ctx.changes["totals"]}
    assert totals["meetings_not_harvested"] == (1, 0) and totals["invited_absent"] == (1, 0)

    # The PDF lists at most exception_row_limit changes; changes.csv holds them all.
    params = ReportParameters.from_json(_entry(db, second_id).parameters["report"])
    (tmp_path / "bounded").mkdir()
    with snapshot(db) as session:
        bounded = build_report_context(
            session, replace(params, exception_row_limit=2), workdir=tmp_path / "bounded"
        )
    assert bounded.changes is not None
    assert len(bounded.changes["rows"]) == 2 and bounded.changes["total"] == 6
    assert bounded.changes_csv is not None
    assert bounded.changes_csv.path.read_bytes() == ctx.changes_csv.path.read_bytes()

    # Rendered again, the comparison is the same: the reproduction gives the same bytes.
    again = generate_report(known, db, None, label="x", reproduce=second_id)
    assert again.matches is True

    # The terminal says the same.
    env = _env(known, database_url)
    out = meetaudit(env, "report", "diff", first_id, second_id)
    assert out.exit_code == 0, out.output
    assert f"What changed from report {first_id}" in out.output
    assert "People reclassified: 1" in out.output
    assert "Invited, absent, external → Invited, attended, external: 1" in out.output
    assert "Bob Absent: Invited, absent, external → Invited, attended, external" in out.output
    assert "Meetings harvested since: 1" in out.output and "Late addition" in out.output
    as_csv = meetaudit(env, "report", "diff", first_id, second_id, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert list(rows[0]) == list(CHANGE_COLUMNS) and len(rows) == 6
    as_json = json.loads(meetaudit(env, "report", "diff", first_id, second_id, "--format",
                                   "json").output)  # fmt: skip
    assert as_json["old"]["report_id"] == first_id and as_json["new"]["report_id"] == second_id
    assert len(as_json["changes"]) == 6 and as_json["reproducible"] is True

    # Backwards, or an id the ledger does not have, is refused in words.
    backwards = meetaudit(env, "report", "diff", second_id, first_id)
    assert backwards.exit_code == 1 and "give the earlier report first" in backwards.output
    unknown = meetaudit(env, "report", "diff", "MAR-2026-10-NOSUCH00", second_id)
    assert unknown.exit_code == 1 and "no report 'MAR-2026-10-NOSUCH00' in the ledger" in (
        unknown.output
    )


def test_a_report_of_unchanged_data_says_nothing_changed(
    db: Database, known: Settings, database_url: str
) -> None:
    first, _ = _json_report(known, db)
    second, data = _json_report(known, db)
    assert data["manifest"]["supersedes"]["report_id"] == first.files[0].report_id
    assert data["manifest"]["changes_since_superseded"]["total"] == 0
    assert any("nothing changed since" in line for line in second.lines())
    out = meetaudit(_env(known, database_url), "report", "diff", first.files[0].report_id,
                    second.files[0].report_id)  # fmt: skip
    assert out.exit_code == 0 and "Nothing changed" in out.output


def test_when_the_stored_rows_of_the_earlier_report_are_gone_it_says_so(
    db: Database, known: Settings, tmp_path: Path, database_url: str
) -> None:
    first, _ = _json_report(known, db)
    with db.session() as session:  # not a harvest: no revision keeps what was there
        session.execute(text("DELETE FROM participants WHERE participant_id = 'p-gina'"))
    second, data = _json_report(known, db)
    summary = data["manifest"]["changes_since_superseded"]
    assert summary["reproducible"] is False and summary["total"] == 0
    assert "participants: 17 in the report, 16 from the stored data now" in summary["problems"][0]
    ctx = _printed_context(db, second.files[0].report_id, tmp_path / "ctx")
    assert ctx.changes is not None and ctx.changes["rows"] == []
    out = meetaudit(_env(known, database_url), "report", "diff", first.files[0].report_id,
                    second.files[0].report_id)  # fmt: skip
    assert "cannot be rebuilt from the stored data" in out.output
    assert "No change is listed" in out.output


# -- the stored-data check -----------------------------------------------------------------------


def test_a_raw_item_edited_in_the_database_is_a_finding_and_the_report_is_not_complete(
    db: Database, known: Settings, tmp_path: Path, database_url: str
) -> None:
    _harvest_changes(db)  # M3 fetched: the period is now completely harvested
    clean, data = _json_report(known, db)
    assert clean.complete and "stored_data_check" not in data["manifest"]

    with db.session() as session:
        session.execute(
            text(
                "UPDATE participants SET raw = jsonb_set(raw, '{displayName}', '\"Mallory\"') "
                "WHERE participant_id = 'p-gina'"
            )
        )
    tampered, data = _json_report(known, db)
    assert not tampered.complete
    assert [a["meeting_id"] for a in tampered.altered_meetings] == ["M2"]
    check = data["manifest"]["stored_data_check"]
    assert check["meetings_checked"] == 5
    assert [a["meeting_id"] for a in check["meetings_altered"]] == ["M2"]
    assert data["manifest"]["complete"] is False
    assert _entry(db, tampered.files[0].report_id).complete is False
    assert any("STORED DATA ALTERED" in line and "M2" in line for line in tampered.lines())
    assert not any("INCOMPLETE" in line for line in tampered.lines())  # no gap: not the reason

    # From the command line: written, recorded, and exit status 4.
    out = meetaudit(_env(known, database_url), "report", "--month", "2026-10", "--format", "csv")
    assert out.exit_code == 4, out.output
    assert "no longer match what was harvested" in out.output


def test_an_item_webex_listed_twice_is_no_false_finding(db: Database, known: Settings) -> None:
    """Webex may list a participant (or invitee) on two pages; the harvest keeps the first, and
    the digest it records covers what it kept, so the check finds nothing wrong."""
    run = add_run(db)
    m6 = meeting("M6", "Paged twice", _ts(21, 9), _ts(21, 10), "hana.host@acme.example",
                 "Hana Host")  # fmt: skip
    ann = person("p-ann", "M6", "Ann", "ann@acme.example", [device(_ts(21, 9), _ts(21, 10))])
    again = {**ann, "leftTime": _ts(21, 9, 50)}
    inv = invitee("M6", "ann@acme.example", "Ann")
    store(db, run, [m6], {"M6": ([ann, again], [inv, {**inv, "displayName": "Ann A."}])})
    result, data = _json_report(known, db)
    assert result.altered_meetings == [] and "stored_data_check" not in data["manifest"]


def test_a_typed_column_edited_alone_is_found_too(db: Database, known: Settings) -> None:
    """The digest covers the records as Webex sent them; the report reads the columns derived
    from them. Changing a column alone (Carol admitted → lobby, a session an hour longer) leaves
    the digest as it was, and is still found."""
    with db.session() as session:
        session.execute(
            text("UPDATE participants SET state = 'lobby' WHERE participant_id = 'p-carol'")
        )
        session.execute(
            text(
                "UPDATE participant_devices SET left_at = left_at + interval '1 hour' "
                "WHERE participant_id = 'p-gina'"
            )
        )
    result, data = _json_report(known, db)
    found = {a["meeting_id"]: a for a in result.altered_meetings}
    assert set(found) == {"M1", "M2"}
    assert found["M1"]["recorded_sha256"] == found["M1"]["stored_sha256"]  # the JSON is intact
    assert "participant p-carol: state" in found["M1"]["what"]
    assert "participant p-gina device 0: left_at" in found["M2"]["what"]
    assert {a["meeting_id"] for a in data["manifest"]["stored_data_check"]["meetings_altered"]} == {
        "M1", "M2"}  # fmt: skip


def test_an_invitee_column_a_dropped_device_and_a_renamed_participant_are_found(
    db: Database, known: Settings
) -> None:
    """The check compares whole rows at once and names the columns only when a row differs:
    each kind of difference is still named."""
    with db.session() as session:
        session.execute(
            text(
                "UPDATE invitees SET display_name = 'Bob Present' WHERE email = 'bob@globex.example'"
            )
        )
        session.execute(text("DELETE FROM participant_devices WHERE participant_id = 'p-gina'"))
        session.execute(
            text("UPDATE participants SET co_host = NOT coalesce(co_host, false) "
                 "WHERE participant_id = 'p-carol'")
        )  # fmt: skip
    result, _ = _json_report(known, db)
    found = {a["meeting_id"]: a["what"] for a in result.altered_meetings}
    assert set(found) == {"M1", "M2"}
    assert "display_name" in found["M1"] and "participant p-carol: co_host" in found["M1"]
    assert "participant p-gina: 0 devices stored, 1 in its record" in found["M2"]


def test_a_harvested_month_passes_the_check_and_a_refresh_diff_lists_the_change(
    db: Database, settings: Settings, tmp_path: Path, database_url: str
) -> None:
    """The simulator (with hostile names) end to end: no false finding; a changed meeting."""
    org = generate_org(seed=5, start=OCT.start, end=OCT.end, meetings=10,
                       participants_per_meeting=5, hostile=True)  # fmt: skip
    now = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    sim = Simulator(org, token=TOKEN, now=now)
    assert harvest_org(settings, org, OCT, now=now, db=db, simulator=sim).complete
    cfg = org_settings(settings, org)
    first, data = _json_report(cfg, db)
    assert first.complete and first.altered_meetings == [] and first.supersedes is None

    mid = org.meetings[3]["id"]
    gone = org.participants[mid][-1]
    sim.replace_items(mid, participants=org.participants[mid][:-1], invitees=org.invitees[mid])
    assert harvest_org(settings, org, OCT, now=now, db=db, simulator=sim, refresh=True).revisions
    second, data = _json_report(cfg, db)
    assert second.complete and second.altered_meetings == []
    summary = data["manifest"]["changes_since_superseded"]
    assert summary["reproducible"] is True and summary["restored_meetings"] == 1
    ctx = _printed_context(db, second.files[0].report_id, tmp_path / "ctx")
    assert ctx.changes is not None
    changed = [(c["meeting_id"], c["change"]) for c in ctx.changes["rows"]]
    assert changed and {m for m, _ in changed} == {mid}
    name = gone.get("displayName") or ""
    assert any(c["display_name"] == name and c["change"] in ("person_removed", "reclassified")
               for c in ctx.changes["rows"])  # fmt: skip


# -- the PDF ---------------------------------------------------------------------------------------


def test_the_pdf_names_the_superseded_report_and_warns_of_altered_data(
    db: Database, known: Settings
) -> None:
    first, _ = _json_report(known, db)
    _harvest_changes(db)
    with db.session() as session:
        session.execute(
            text(
                "UPDATE invitees SET raw = jsonb_set(raw, '{email}', '\"eve@evil.example\"') "
                "WHERE meeting_id = 'M4' AND email = 'hostile0@evil.example'"
            )
        )
    result = generate_report(known, db, OCT, label="2026-10", workers=1)
    assert verify_file(db, result.path).ok
    reader = PdfReader(result.path)
    pages = "\n".join(p.extract_text() or "" for p in reader.pages[:8])
    first_id = first.files[0].report_id
    assert "Supersedes" in pages and first_id in pages
    assert f"What changed since {first_id}" in pages
    assert "Stored data altered." in pages and "Stored data no longer as harvested" in pages
    assert "Complete." not in pages
    attached = reader.attachments
    assert "changes.csv" in attached
    rows = list(csv.DictReader(io.StringIO(attached["changes.csv"][0].decode("utf-8"))))
    assert {r["change"] for r in rows} >= {"reclassified", "meeting_added", "meeting_harvested"}
    manifest = json.loads(attached["manifest.json"][0])
    assert [a["meeting_id"] for a in manifest["stored_data_check"]["meetings_altered"]] == ["M4"]
    assert "changes.csv" in {a["name"] for a in manifest["attachments"]}


# -- the comparison itself (plain data) --------------------------------------------------------


def test_compare_and_its_terminal_lines_show_hostile_names_as_code_points() -> None:
    old = ReportRows("A", meetings={"M1": ("2026-10-05 10:00", "Review", "complete")},
                     rows={("M1", "x@evil.example"): ("Invoice \u202efdp.exe", "x@evil.example",
                                                      "invited_absent", "external", "0.00")})  # fmt: skip
    new = ReportRows("B", meetings={"M1": ("2026-10-05 10:00", "Review", "complete")},
                     rows={("M1", "x@evil.example"): ("Invoice \u202efdp.exe", "x@evil.example",
                                                      "invited_attended", "external", "12.00")})  # fmt: skip
    changes = compare(old, new)
    assert [(c["change"], c["before"], c["after"]) for c in changes] == [
        ("reclassified", "Invited, absent, external", "Invited, attended, external")
    ]
    named = {"report_id": "A", "generated_at": "2026-11-02T00:00:00Z", "sha256": "0" * 64}
    summary = summarise(changes, old=named, new={**named, "report_id": "B"}, limit=10)
    printed = "\n".join(lines(summary))
    assert "Invoice [U+202E]fdp.exe" in printed and "\u202e" not in printed
    assert "People reclassified: 1" in printed
    assert compare(old, old) == []
