"""Traceability: every meeting, reconciliation row and unidentified caller has a reference that
the PDF prints wherever it shows them and the CSV and JSON files carry, so an auditor can go from
a printed line to its roster and its CSV row, and tell look-alike callers apart (issue 12).

One month is built for it: two meetings with the same title, one of them with a roster long
enough to continue on a second page, phone callers whose masked numbers look alike, and a
meeting without an invitee list. It is rendered once for the module.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from pypdf import PdfReader

from reporting.config import Settings, load_settings
from reporting.db.engine import Database
from reporting.report import generate_report
from reporting.report.api import ReportResult
from tests.report.conftest import (
    OCT,
    OWN_ORG_ID,
    _ts,
    add_run,
    device,
    invitee,
    meeting,
    person,
    store,
)

TITLE = "Customer onboarding – Globex"
HOST = "hana.host@acme.example"


def caller(pid: str, mid: str, name: str, number: str, day: int, hh: int) -> dict[str, Any]:
    """A phone caller: no email, no orgId."""
    return person(pid, mid, name, None, [device(_ts(day, hh, 5), _ts(day, hh, 35),
                  audioType="pstn", callType="callIn", phoneNumber=number, deviceType="phone")])  # fmt: skip


def build_traced_month(db: Database) -> None:
    """Three meetings: M-001 and M-002 share a title; M-002's roster runs onto another page;
    M-003 has no invitee list. Four callers, three of them with numbers masked alike."""
    run = add_run(db)
    first = meeting("MA", TITLE, _ts(3, 10), _ts(3, 11), HOST, "Hana Host")
    second = meeting("MB", TITLE, _ts(4, 10), _ts(4, 11), HOST, "Hana Host")
    third = meeting("MC", "Ad-hoc call", _ts(5, 9), _ts(5, 10), HOST, "Hana Host")
    host = person("pa-host", "MA", "Hana Host", HOST, [device(_ts(3, 10), _ts(3, 11))], host=True)
    a_people = [
        host,
        person("pa-ann", "MA", "Ann Invited", "ann@acme.example", [device(_ts(3, 10), _ts(3, 11))]),
        person("pa-carl", "MA", "Carl Crasher", "carl@partner.example",
               [device(_ts(3, 10, 5), _ts(3, 10, 50))]),
        caller("pa-c1", "MA", "Call-in User_1", "+1-555-0142", 3, 10),
    ]  # fmt: skip
    a_invitees = [invitee("MA", "ann@acme.example", "Ann Invited")]
    b_people = [person("pb-host", "MB", "Hana Host", HOST, [device(_ts(4, 10), _ts(4, 11))],
                       host=True)]  # fmt: skip
    b_invitees = []
    for n in range(60):  # enough rows for the roster to continue on the next page
        email = f"colleague{n:02d}@acme.example"
        b_people.append(person(f"pb-{n:02d}", "MB", f"Colleague {n:02d}", email,
                               [device(_ts(4, 10), _ts(4, 10, 40))]))  # fmt: skip
        b_invitees.append(invitee("MB", email, f"Colleague {n:02d}"))
    b_people += [
        person("pb-carl", "MB", "Carl Crasher", "carl@partner.example",
               [device(_ts(4, 10, 5), _ts(4, 10, 45))]),
        caller("pb-c1", "MB", "Call-in User_1", "+1-555-0177", 4, 10),
        caller("pb-c2", "MB", "+1-555-0142", "+1-555-0142", 4, 10),
    ]  # fmt: skip
    c_people = [
        person("pc-host", "MC", "Hana Host", HOST, [device(_ts(5, 9), _ts(5, 10))], host=True),
        person("pc-gina", "MC", "Gina Guest", "gina@guest.example", [device(_ts(5, 9), _ts(5, 10))]),
        caller("pc-c1", "MC", "Call-in User_1", "+1-555-0199", 5, 9),
    ]  # fmt: skip
    store(db, run, [first, second, third],
          {"MA": (a_people, a_invitees), "MB": (b_people, b_invitees), "MC": (c_people, [])})  # fmt: skip


@pytest.fixture(scope="module")
def traced(module_db: Database, tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    build_traced_month(module_db)
    out = tmp_path_factory.mktemp("reports")
    settings: Settings = load_settings(
        database_url=module_db.url, data_dir=out / "data", output_dir=out,
        org_name="Acme Corporation", org_domains=["acme.example"], org_ids=[OWN_ORG_ID],
        operator="auditor-bot@ci",
    )  # fmt: skip
    return generate_report(
        settings, module_db, OCT, label="2026-10", formats=("pdf", "csv", "json"), workers=1
    )


def _file(result: ReportResult, fmt: str, suffix: str = "") -> Path:
    return next(f.path for f in result.files if f.format == fmt and f.path.name.endswith(suffix))


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def recon(traced: ReportResult) -> list[dict[str, str]]:
    return _csv(next(f.path for f in traced.files if f.path.name.endswith(".csv")
                     and not f.path.name.endswith(".meetings.csv")))  # fmt: skip


@pytest.fixture(scope="module")
def pages(traced: ReportResult) -> list[str]:
    """The text of every page, bidi isolates left out, whitespace runs as one space."""
    reader = PdfReader(_file(traced, "pdf"))
    return [
        " ".join((p.extract_text() or "").replace("\u2068", "").replace("\u2069", "").split())
        for p in reader.pages
    ]


def _outline(path: Path) -> dict[str, int]:
    """Bookmark title -> page index."""
    reader = PdfReader(path)
    out: dict[str, int] = {}

    def walk(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
            else:
                out[item.title] = reader.get_destination_page_number(item)

    walk(reader.outline)
    return out


# -- meetings -----------------------------------------------------------------------------------


def test_meetings_are_numbered_in_the_reports_order_in_every_file(
    traced: ReportResult, recon: list[dict[str, str]]
) -> None:
    meetings = _csv(_file(traced, "csv", ".meetings.csv"))
    assert [(m["meeting_ref"], m["meeting_id"]) for m in meetings] == [
        ("M-001", "MA"), ("M-002", "MB"), ("M-003", "MC"),
    ]  # fmt: skip
    assert {(r["meeting_id"], r["meeting_ref"]) for r in recon} == {
        ("MA", "M-001"), ("MB", "M-002"), ("MC", "M-003"),
    }  # fmt: skip
    export = json.loads(_file(traced, "json").read_text(encoding="utf-8"))
    assert [m["meeting_ref"] for m in export["meetings"]] == ["M-001", "M-002", "M-003"]


def test_exception_rows_name_their_meeting_and_link_to_its_roster(
    traced: ReportResult, pages: list[str]
) -> None:
    path = _file(traced, "pdf")
    marks = _outline(path)
    roster_page = {ref: page for title, page in marks.items()
                   if (ref := title.split()[0]).startswith("M-")}  # fmt: skip
    assert set(roster_page) == {"M-001", "M-002", "M-003"}
    section3 = range(marks["3  Exceptions"], marks["4  Meetings of the period"])
    # Carl came uninvited to both meetings of the same title: the references tell them apart.
    uninvited = next(p for p in pages[section3.start : section3.stop] if "3.1 Attended" in p)
    assert re.search(r"M-001-\d{3} Customer onboarding – Globex 2026-10-03 10:00 Carl Crasher",
                     uninvited)  # fmt: skip
    assert re.search(r"M-002-\d{3} Customer onboarding – Globex 2026-10-04 10:00 Carl Crasher",
                     uninvited)  # fmt: skip

    with pikepdf.open(path) as pdf:
        links = []
        for number, page in enumerate(pdf.pages):
            for annot in page.obj.get("/Annots", []):
                if annot.get("/Subtype") == "/Link" and "/Dest" in annot:
                    target = pdf.pages.index(pikepdf.Page(annot.Dest[0]))
                    links.append((number, str(annot.get("/Contents", "")), target))
    to_rosters = [(n, text, target) for n, text, target in links if text.startswith("Roster")]
    assert any(n in section3 for n, _, _ in to_rosters)  # from the exception lists
    assert any(n == marks["4  Meetings of the period"] for n, _, _ in to_rosters)  # the index
    for _, text, target in to_rosters:
        ref = re.match(r"Roster of meeting (M-\d{3}) ", text)
        assert ref, text  # every link says where it leads
        assert target == roster_page[ref.group(1)]
    assert "Roster of meeting M-002 2026-10-04 10:00 Customer onboarding – Globex, page" in {
        text.rsplit(" ", 1)[0] for _, text, _ in to_rosters
    }


def test_a_roster_continuation_page_names_its_meeting(
    traced: ReportResult, pages: list[str]
) -> None:
    marks = _outline(_file(traced, "pdf"))
    heading = next(p for t, p in marks.items() if t.startswith("M-002"))
    following = next(p for t, p in marks.items() if t.startswith("M-003"))
    assert following > heading + 1  # M-002's roster runs over more than one page
    # Section 5 begins on the page of M-002's heading: nothing runs over onto it.
    assert "(continued)" not in pages[heading]
    running = "M-002 · Customer onboarding – Globex · 2026-10-04 10:00 (continued)"
    for page in range(heading + 1, following + 1):  # M-003 begins under M-002's last rows
        assert running in pages[page], page
        assert "Name and email" in pages[page]  # the table header repeats too


# -- reconciliation rows ------------------------------------------------------------------------


def test_every_reconciliation_row_has_a_reference_in_the_csv_the_json_and_the_pdf(
    traced: ReportResult, recon: list[dict[str, str]], pages: list[str]
) -> None:
    refs = [r["row_ref"] for r in recon]
    assert len(set(refs)) == len(refs) == 71  # 4 + 64 + 3 rows
    # Numbered within each meeting, in the file's order; as wide as the meeting's longest.
    assert [r for r in refs if r.startswith("M-001-")] == [f"M-001-{n:03d}" for n in range(1, 5)]
    assert refs[4:6] == ["M-002-001", "M-002-002"]
    assert all(r["row_ref"].startswith(r["meeting_ref"] + "-") for r in recon)
    export = json.loads(_file(traced, "json").read_text(encoding="utf-8"))
    assert [r["row_ref"] for r in export["rows"]] == refs

    text = " ".join(pages)
    carl = next(r for r in recon if r["meeting_id"] == "MB" and r["email"].startswith("carl"))
    # In the roster: the reference in its own column, before the name.
    assert f"{carl['row_ref']} Carl Crasher carl@partner.example Attendee External" in text
    # In the exception lists: the row's reference opens the line that names the meeting.
    assert f"{carl['row_ref']} Customer onboarding – Globex 2026-10-04 10:00 Carl Crasher" in text


def test_verify_still_knows_a_csv_with_the_earlier_shorter_header(
    module_db: Database, recon: list[dict[str, str]], tmp_path: Path
) -> None:
    """Columns are only ever added: a reconciliation.csv written before the references (25
    columns) is still told as meetaudit's, with what to do about it."""
    from reporting.report import verify_file

    columns = list(recon[0])[:25]
    old = tmp_path / "old.csv"
    with old.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, columns, extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(recon)
    result = verify_file(module_db, old)
    assert result.export == "reconciliation.csv"
    assert "its attachment reconciliation.csv" in " ".join(result.problems)


# -- unidentified callers ------------------------------------------------------------------------


def test_callers_that_look_alike_get_references_of_their_own_in_the_pdf_and_the_csv(
    traced: ReportResult, recon: list[dict[str, str]], pages: list[str]
) -> None:
    callers = [r for r in recon if r["classification"] == "unidentified"]
    # Four callers; three numbers masked to the same "+1-555-01••", names repeating.
    assert {r["phone_numbers"] for r in callers} == {"'+1-555-01••"}
    assert [r["caller_ref"] for r in callers] == ["C-001", "C-002", "C-003", "C-004"]
    assert all(not r["caller_ref"] for r in recon if r["classification"] != "unidentified")
    export = json.loads(_file(traced, "json").read_text(encoding="utf-8"))
    assert [r["caller_ref"] for r in export["rows"] if r["caller_ref"]] == [
        "C-001", "C-002", "C-003", "C-004",
    ]  # fmt: skip

    text = " ".join(pages)
    assert "0142" not in text and "0177" not in text  # told apart without unmasking
    for r in callers:
        name = r["display_name"].lstrip("'")
        # The roster row, and the list of unidentified participants, name the same caller.
        assert f"{r['row_ref']} {name} Caller {r['caller_ref']} Attendee Unidentified" in text
        assert re.search(
            rf"{r['row_ref']} .{{0,80}} {r['caller_ref']} {re.escape(name)} pstn", text
        )


def test_caller_references_are_the_same_when_the_report_is_rendered_again(
    traced: ReportResult, module_db: Database, tmp_path: Path
) -> None:
    """Derived from the stored records and their order alone, never from chance."""
    from reporting.report.api import snapshot
    from reporting.report.context import ReportParameters, build_context
    from reporting.report.verify import ledger

    with module_db.session() as session:
        entry = ledger.as_dict(ledger.find_by_report_id(session, traced.report_id))
    params = ReportParameters.from_json(entry["parameters"]["report"])
    with snapshot(module_db) as session:
        ctx = build_context(session, params, workdir=tmp_path)
    again = _csv(ctx.reconciliation_csv.path)
    first = _csv(next(f.path for f in traced.files if f.path.name.endswith(".csv")
                      and not f.path.name.endswith(".meetings.csv")))  # fmt: skip
    assert [(r["row_ref"], r["caller_ref"]) for r in again] == [
        (r["row_ref"], r["caller_ref"]) for r in first
    ]


# -- not testable --------------------------------------------------------------------------------


def test_attendances_the_reconciliation_cannot_test_are_listed_apart_with_their_reason(
    traced: ReportResult, recon: list[dict[str, str]], pages: list[str]
) -> None:
    untested = {(r["row_ref"], r["display_name"].lstrip("'"), r["status_reason"])
                for r in recon if r["status"] == "not_testable"}  # fmt: skip
    assert {(name, reason) for _, name, reason in untested} == {
        ("Call-in User_1", "no_email"),  # M-001 and M-002 have invitee lists; callers have no email
        ("+1-555-01••", "no_email"),
        ("Call-in User_1", "no_invitee_list"),  # M-003 has no invitee list
        ("Gina Guest", "no_invitee_list"),
    }
    assert len(untested) == 5
    assert all(not r["status_reason"] for r in recon if r["status"] != "not_testable")
    # The host of the meeting without a list is still the host; Carl still uninvited.
    assert {r["status"] for r in recon if r["email"] == HOST} == {"host_attended"}
    assert {r["status"] for r in recon if r["email"].startswith("carl")} == {"uninvited_attended"}
    meetings = _csv(_file(traced, "csv", ".meetings.csv"))
    assert [m["not_testable"] for m in meetings] == ["1", "2", "2"]

    totals = traced.control_totals
    assert (totals["not_testable"], totals["not_testable_no_invitee_list"],
            totals["not_testable_no_email"], totals["uninvited_attended"]) == (5, 2, 3, 2)  # fmt: skip
    assert "attended_no_invitee_list" not in totals

    text = " ".join(pages)
    assert ("5 attendances not testable: 2 at the 1 meeting without an invitee list, 3 of "
            "people without an email at meetings with one.") in text  # fmt: skip
    for ref, name, reason in untested:
        why = {"no_email": "no email to match", "no_invitee_list": "meeting has no invitee list"}
        assert re.search(rf"{ref} .{{0,60}} {re.escape(name)} .{{0,80}}{why[reason]}", text), ref
    uninvited = text.split("3.1 Attended without invitation", 2)[2].split("3.2 Attended, not")[0]
    assert "Call-in User" not in uninvited and "Gina Guest" not in uninvited


def test_a_ledger_entry_from_before_not_testable_still_ties_to_its_rebuilt_rows() -> None:
    """An earlier report recorded these attendances as attended_no_invitee_list and
    uninvited_attended: its totals, rebuilt now, are compared in the words it used."""
    from reporting.report.diff import _totals_differences

    rebuilt = {"uninvited_attended": 2, "not_testable": 5, "not_testable_no_invitee_list": 2,
               "not_testable_no_email": 3, "attendances": 71}  # fmt: skip
    recorded = {"uninvited_attended": 5, "attended_no_invitee_list": 2, "attendances": 71}
    assert _totals_differences(recorded, rebuilt) == []
    assert _totals_differences({**recorded, "uninvited_attended": 4}, rebuilt) == [
        "uninvited_attended: 4 in the report, 5 from the stored data now"
    ]
    assert _totals_differences({"uninvited_attended": 2, "not_testable": 5}, rebuilt) == []


# -- one word, one meaning -----------------------------------------------------------------------


def test_people_and_attendances_are_defined_on_the_method_page_and_counted_apart(
    traced: ReportResult, pages: list[str]
) -> None:
    text = " ".join(pages)
    assert "Attendance — one person's presence at one meeting" in text
    assert "Person — a distinct identity across the period" in text
    assert "a person at three meetings is one person and three attendances" in text
    # The organisations table: people (persons) and attendances side by side. The host came
    # to all three meetings and Carl to two: fewer people than attendances. Each caller is a
    # person of their own.
    assert "Internal Acme Corporation 3 62 64 2,640" in text
    assert "External partner.example email domain 2 1 2 85" in text
    assert "Unidentified — no orgId, no email — 3 4 4 120" in text
    totals = traced.control_totals
    assert totals["attendances"] == 64 + 2 + 1 + 4
    assert (totals["internal_people"], totals["external_people"]) == (62, 2)
    assert "62 internal and 2 external people (distinct persons" in text
    assert "the 4 unidentified attendances are as many people" in text
    # Per meeting, the count of people admitted is their attendances there.
    assert "60 invitees · 64 attendances · 64 sessions" in text
