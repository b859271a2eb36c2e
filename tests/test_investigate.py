"""Investigators' questions, answered from a harvested simulated organisation."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from reporting.cli import cli
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.investigate import (
    Period,
    attendance_of,
    co_attendees,
    devices_of,
    find_meetings,
    meeting_ids_like,
    meeting_roster,
    outside_organisations,
    people_matching,
    write_csv,
)
from reporting.report.exports import csv_cell
from reporting.webex.simulator import SimulatedOrg, generate_org
from tests.factories import harvest_org, month_of, org_settings

START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


@pytest.fixture
def org() -> SimulatedOrg:
    window = month_of(START)
    return generate_org(
        seed=11, start=window.start, end=window.end, meetings=25, participants_per_meeting=8
    )


@pytest.fixture
def harvested(settings: Settings, org: SimulatedOrg, db: Database) -> Settings:
    summary = harvest_org(settings, org, month_of(START), db=db)
    assert summary.complete
    return org_settings(settings, org)


def _busiest_email(org: SimulatedOrg) -> str:
    counts: dict[str, int] = {}
    for meeting in org.meetings:
        for p in org.participants[meeting["id"]]:
            if p.get("email") and p.get("state") != "lobby":
                key = p["email"].strip().lower()
                counts[key] = counts.get(key, 0) + 1
    return max(counts, key=lambda k: (counts[k], k))


def test_attendance_of_a_person_matches_the_api_data(
    harvested: Settings, org: SimulatedOrg, db: Database
) -> None:
    email = _busiest_email(org)
    expected = {
        m["id"]
        for m in org.meetings
        for p in org.participants[m["id"]]
        if (p.get("email") or "").strip().lower() == email
    }
    with db.session() as session:
        rows = attendance_of(session, email.upper())  # emails match whatever their case
    assert {r.meeting_id for r in rows} == expected
    assert all(r.sessions >= 1 or r.state == "lobby" for r in rows)
    assert all(r.attended_minutes >= 0 for r in rows)


def test_attendance_respects_the_period(
    harvested: Settings, org: SimulatedOrg, db: Database
) -> None:
    email = _busiest_email(org)
    cut = START + dt.timedelta(days=15)
    with db.session() as session:
        every = attendance_of(session, email)
        early = attendance_of(session, email, Period(end=cut))
    assert early == [r for r in every if r.start_at is not None and r.start_at < cut]


def test_co_attendees_excludes_the_person_and_counts_shared_meetings(
    harvested: Settings, org: SimulatedOrg, db: Database
) -> None:
    email = _busiest_email(org)
    with db.session() as session:
        mine = {r.meeting_id for r in attendance_of(session, email)}
        others = co_attendees(session, email, harvested)
    assert others, "the busiest person met somebody"
    assert all((o.email or "").strip().lower() != email for o in others)
    top = others[0]
    shared = {
        m for m in mine
        if any((p.get("email") or "").strip().lower() == (top.email or "").strip().lower()
               and p.get("state") != "lobby" for p in org.participants[m])
    }  # fmt: skip
    assert top.meetings_together == len(shared)


def test_outside_organisations_never_lists_own_domains(
    harvested: Settings, org: SimulatedOrg, db: Database
) -> None:
    with db.session() as session:
        outside = outside_organisations(session, harvested)
    keys = {o.organisation for o in outside}
    assert not keys & set(org.domains)
    assert any(o.classification == "external" for o in outside)
    partner_domains_seen = {
        (p.get("email") or "").rpartition("@")[2].lower()
        for m in org.meetings for p in org.participants[m["id"]]
        if p.get("email") and not p.get("orgId") and p.get("state") != "lobby"
    }  # fmt: skip
    assert partner_domains_seen - set(org.domains) <= keys


def test_devices_mask_phone_numbers(harvested: Settings, db: Database, org: SimulatedOrg) -> None:
    callers = [
        p for m in org.meetings for p in org.participants[m["id"]]
        if any(d.get("phoneNumber") for d in p.get("devices", [])) and p.get("displayName")
    ]  # fmt: skip
    assert callers, "the simulated org has phone callers"
    with db.session() as session:
        rows = devices_of(session, callers[0]["displayName"], harvested)
    numbers = [r.phone_number for r in rows if r.phone_number]
    assert numbers and all("•" in n for n in numbers)


def test_meeting_roster_and_search(harvested: Settings, org: SimulatedOrg, db: Database) -> None:
    meeting = org.meetings[0]
    with db.session() as session:
        stored, lines, absent = meeting_roster(session, meeting["id"], harvested)
        found = find_meetings(session, title=meeting["title"][:6])
    assert stored is not None and stored.title == meeting["title"]
    assert len(lines) == len(org.participants[meeting["id"]])
    came = {(p.get("email") or "").strip().lower() for p in org.participants[meeting["id"]]}
    expected_absent = {i["email"].strip().lower() for i in org.invitees[meeting["id"]]} - came
    assert len(absent) == len(expected_absent)
    assert meeting["id"] in {m.meeting_id for m in found}


def test_like_wildcards_in_a_search_are_literal(harvested: Settings, db: Database) -> None:
    with db.session() as session:
        assert attendance_of(session, "%") == []
        # "a%e" would match nearly every name as a LIKE pattern; literally it matches none.
        assert attendance_of(session, "a%e") == []
        assert attendance_of(session, "a_e_") == []


def test_attended_minutes_agree_with_the_report(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import csv

    from reporting.report import generate_report

    result = generate_report(
        harvested, db, month_of(START), label="2026-10", output=tmp_path / "r", formats=("csv",)
    )
    with result.path.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["participant_ids"].count(" ") == 0]
    checked = 0
    with db.session() as session:
        for row in rows:
            if not row["email"] or row["admitted"] != "true":
                continue
            mine = [
                a
                for a in attendance_of(session, row["email"].lstrip("'"))
                if a.meeting_id == row["meeting_id"]
            ]
            if len(mine) != 1:
                continue
            assert abs(mine[0].attended_minutes - float(row["attended_minutes"])) <= 0.1, row
            checked += 1
    assert checked >= 20


# -- the command line, as an investigator meets it -------------------------------------------------

ZURICH = ZoneInfo("Europe/Zurich")


def _investigate(
    settings: Settings,
    tmp_path: Path,
    *args: str,
    columns: int = 140,
    zone: str = "Europe/Zurich",
    show_phone_numbers: bool = False,
) -> Result:
    """Run ``meetaudit investigate ARGS`` on this test's records, in a terminal COLUMNS wide."""
    env: dict[str, str | None] = {
        "MEETAUDIT_CONFIG": None,
        "MEETAUDIT_DATABASE_URL": settings.database_url.get_secret_value()
        if settings.database_url
        else None,
        "MEETAUDIT_DATA_DIR": str(tmp_path / "cli-data"),
        "MEETAUDIT_ORG_DOMAINS": ",".join(settings.org_domains),
        "MEETAUDIT_ORG_IDS": ",".join(settings.org_ids),
        "MEETAUDIT_TIMEZONE": zone,
        "MEETAUDIT_SHOW_PHONE_NUMBERS": "true" if show_phone_numbers else "false",
        # Cases and the access log are tested in tests/test_cases.py.
        "MEETAUDIT_REQUIRE_CASE": "false",
        "COLUMNS": str(columns),
    }
    return CliRunner().invoke(cli, ["investigate", *args], env=env)


def _matching(org: SimulatedOrg, fragment: str) -> dict[str, list[dict[str, Any]]]:
    """The API's participants a name fragment matches, by person key (as investigate matches)."""
    people: dict[str, list[dict[str, Any]]] = {}
    for m in org.meetings:
        for p in org.participants[m["id"]]:
            email = (p.get("email") or "").strip().lower()
            if fragment in email or fragment in (p.get("displayName") or "").lower():
                people.setdefault(email or f"participant:{p['id']}", []).append(p)
    return people


def _shared_name(org: SimulatedOrg) -> str:
    """A first name that several people with devices share (as "Laura" in the demo)."""
    for name in sorted({(p.get("displayName") or " ").split()[0].lower()
                        for m in org.meetings for p in org.participants[m["id"]]
                        if p.get("displayName")}):  # fmt: skip
        people = _matching(org, name)
        with_devices = [k for k, ps in people.items() if any(p.get("devices") for p in ps)]
        if len(with_devices) >= 3 and all("@" in k for k in people):
            return name
    raise AssertionError("the simulated org has no first name shared by several people")


def test_devices_of_several_people_say_whose_each_row_is(
    harvested: Settings, org: SimulatedOrg, db: Database
) -> None:
    name = _shared_name(org)
    expected = _matching(org, name)
    with db.session() as session:
        people = people_matching(session, name)
        rows = devices_of(session, name, harvested)
    assert [p.person_key for p in people] == sorted(
        expected, key=lambda k: (min(p["displayName"] for p in expected[k]).casefold(), k)
    )
    whose = {p.person_key: (p.display_name, p.email) for p in people}
    for row in rows:  # every row: whose device it is
        assert (row.display_name, row.email) == whose[row.person_key]
        assert row.email is not None and row.email.strip().lower() == row.person_key
    # grouped person by person, in the order the people are listed
    in_order = [key for key, _ in itertools.groupby(r.person_key for r in rows)]
    assert in_order == [p.person_key for p in people if p.person_key in in_order]
    for key, participants in expected.items():
        assert sum(r.sessions for r in rows if r.person_key == key) == sum(
            len(p.get("devices", [])) for p in participants
        )


@pytest.mark.parametrize(
    ("question", "title"), [("devices", "Devices used by"), ("person", "Meetings attended by")]
)
def test_a_name_matching_several_people_says_so_and_groups_by_person(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path, question: str, title: str
) -> None:
    name = _shared_name(org)
    with db.session() as session:
        people = people_matching(session, name)
        rows: list[Any] = (devices_of(session, name, harvested) if question == "devices"
                           else attendance_of(session, name))  # fmt: skip
    shown = [p for p in people if any(r.person_key == p.person_key for r in rows)]
    result = _investigate(harvested, tmp_path, question, name.title())
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"{len(people)} people match {name.title()!r}" in out
    assert all(p.label in out for p in people)
    # One section per person, titled with their name and email, holding only their rows.
    sections = re.split(rf"^{title} ", out, flags=re.MULTILINE)[1:]
    assert [s.splitlines()[0].strip() for s in sections] == [p.label for p in shown]
    for person, section in zip(shown, sections, strict=True):
        mine = [r for r in rows if r.person_key == person.person_key]
        if question == "person":
            theirs = {r.meeting_id for r in rows} - {r.meeting_id for r in mine}
            assert all(r.meeting_id in section for r in mine)
            assert not any(meeting_id in section for meeting_id in theirs)
        else:
            assert all(r.device_type in section for r in mine)

    # CSV / JSON stay data only: the note goes to stderr, and every row says whose it is.
    exported = _investigate(harvested, tmp_path, question, name, "--format", "csv")
    assert exported.exit_code == 0, exported.output
    assert f"{len(people)} people match {name!r}" in exported.stderr
    records = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(records) == len(rows)
    assert {r["person_key"] for r in records} == {p.person_key for p in people} & {
        r.person_key for r in rows
    }
    assert all(r["display_name"] and r["email"] for r in records)


def test_one_person_by_email_is_not_announced_as_several(
    harvested: Settings, org: SimulatedOrg, tmp_path: Path
) -> None:
    email = _busiest_email(org)
    result = _investigate(harvested, tmp_path, "devices", email)
    assert result.exit_code == 0, result.output
    assert "people match" not in result.output
    assert "Devices used by " in result.stdout and f"<{email}>" in result.stdout


def _meeting_ids(org: SimulatedOrg) -> list[str]:
    return [m["id"] for m in org.meetings]


@pytest.mark.parametrize("columns", [140, 100, 72])
def test_ids_and_emails_are_never_cut(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path, columns: int
) -> None:
    ids = _meeting_ids(org)
    assert min(len(i) for i in ids) > 50  # Webex instance ids are long
    listing = _investigate(harvested, tmp_path, "meetings", columns=columns)
    assert listing.exit_code == 0, listing.output
    assert "…" not in listing.stdout
    assert set(ids) <= set(re.findall(r"\S+", listing.stdout))  # each id whole, as one word
    hosts = {m["hostEmail"] for m in org.meetings}
    assert hosts <= set(re.findall(r"\S+", listing.stdout))

    email = _busiest_email(org)
    with db.session() as session:
        mine = attendance_of(session, email)
    person = _investigate(harvested, tmp_path, "person", email, columns=columns)
    assert person.exit_code == 0, person.output
    words = set(re.findall(r"\S+", person.stdout))
    assert "…" not in person.stdout
    assert {a.meeting_id for a in mine} <= words
    assert {a.host_email for a in mine if a.host_email} <= words

    meeting = org.meetings[0]
    roster = _investigate(harvested, tmp_path, "meeting", meeting["id"], columns=columns)
    assert roster.exit_code == 0, roster.output
    words = set(re.findall(r"\S+", roster.stdout))
    assert "…" not in roster.stdout
    assert meeting["id"] in words
    assert {p["email"] for p in org.participants[meeting["id"]] if p.get("email")} <= words


def test_an_id_copied_from_one_command_works_in_the_next(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path
) -> None:
    listing = _investigate(harvested, tmp_path, "meetings")
    copied = next(w for w in re.findall(r"\S+", listing.stdout) if "_I_" in w)
    roster = _investigate(harvested, tmp_path, "meeting", copied)
    assert roster.exit_code == 0, roster.output
    assert f"Meeting {copied}" in roster.stdout

    # A unique beginning of an id is enough; one several ids begin with is refused, naming them.
    ids = _meeting_ids(org)
    unique = next(
        i[:n] for i in ids for n in range(6, len(i)) if sum(j.startswith(i[:n]) for j in ids) == 1
    )
    with db.session() as session:
        assert meeting_ids_like(session, unique) == [next(i for i in ids if i.startswith(unique))]
    short = _investigate(harvested, tmp_path, "meeting", unique)
    assert short.exit_code == 0, short.output
    assert f"Meeting {next(i for i in ids if i.startswith(unique))}" in short.stdout

    series = next(
        i.split("_I_")[0] for i in ids if sum(j.startswith(i.split("_I_")[0]) for j in ids) > 1
    )
    several = [i for i in ids if i.startswith(series)]
    ambiguous = _investigate(harvested, tmp_path, "meeting", series)
    assert ambiguous.exit_code == 1
    assert (
        "several stored meetings" in ambiguous.output and "give more of the id" in ambiguous.output
    )
    assert all(i in ambiguous.output for i in several)

    for unknown in ("zzz-no-such-meeting", "%", "_"):  # LIKE wildcards are literal
        missing = _investigate(harvested, tmp_path, "meeting", unknown)
        assert missing.exit_code == 1, missing.output
        assert "investigate meetings" in missing.output
        assert "Traceback" not in missing.output


def test_times_are_shown_in_the_configured_zone(
    harvested: Settings, db: Database, tmp_path: Path
) -> None:
    with db.session() as session:
        meetings = find_meetings(session)
    result = _investigate(harvested, tmp_path, "meetings")
    assert result.exit_code == 0, result.output
    assert "Times in Europe/Zurich" in result.stdout
    lines = result.stdout.splitlines()
    for m in meetings:
        assert m.start_at is not None and m.end_at is not None
        row = next(line for line in lines if m.meeting_id in line)
        local = m.start_at.astimezone(ZURICH).strftime("%Y-%m-%d %H:%M")
        utc = m.start_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M")
        assert local in row and utc not in row
        assert m.end_at.astimezone(ZURICH).strftime("%Y-%m-%d %H:%M") in row

    first = meetings[-1]
    roster = _investigate(harvested, tmp_path, "meeting", first.meeting_id)
    assert roster.exit_code == 0, roster.output
    assert first.start_at is not None
    assert f"{first.start_at.astimezone(ZURICH):%Y-%m-%d %H:%M} to " in roster.stdout
    assert "(Europe/Zurich)" in roster.stdout

    in_utc = _investigate(harvested, tmp_path, "meetings", zone="UTC")
    assert "Times in UTC" in in_utc.stdout
    assert f"{first.start_at.astimezone(dt.UTC):%Y-%m-%d %H:%M}" in in_utc.stdout


def test_csv_and_json_use_the_report_exports_conventions(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path
) -> None:
    email = _busiest_email(org)
    with db.session() as session:
        rows = attendance_of(session, email)
    exported = _investigate(harvested, tmp_path, "person", email, "--format", "csv")
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.startswith("meeting_id,")
    written = io.StringIO(newline="")
    write_csv(rows, written, ZURICH)
    assert written.getvalue().endswith("\r\n")  # RFC 4180 line ends, as the report's CSV
    assert written.getvalue().replace("\r\n", "\n") == exported.stdout
    records = list(csv.DictReader(io.StringIO(exported.stdout, newline="")))
    assert [r["meeting_id"] for r in records] == [a.meeting_id for a in rows]
    for record, row in zip(records, rows, strict=True):
        assert row.start_at is not None
        start = dt.datetime.fromisoformat(record["start_at"])  # ISO 8601 with its offset
        assert (
            start == row.start_at
            and start.utcoffset() == row.start_at.astimezone(ZURICH).utcoffset()
        )
        assert record["start_at"] == row.start_at.astimezone(ZURICH).isoformat()
        assert record["invited"] == csv_cell(row.invited) and record["invited"] in {"true", "false"}
        assert record["devices"] == ";".join(row.devices)  # lists ';'-separated
        assert record["person_key"] == email

    as_json = _investigate(harvested, tmp_path, "person", email, "--format", "json")
    assert as_json.exit_code == 0, as_json.output
    objects = json.loads(as_json.stdout)
    assert [o["meeting_id"] for o in objects] == [a.meeting_id for a in rows]
    for obj, row in zip(objects, rows, strict=True):
        assert row.start_at is not None
        assert obj["start_at"] == row.start_at.astimezone(ZURICH).isoformat()
        assert isinstance(obj["invited"], bool) and obj["invited"] == row.invited
        assert obj["devices"] == row.devices

    meetings = _investigate(harvested, tmp_path, "meetings", "--format", "csv")
    listed = list(csv.DictReader(io.StringIO(meetings.stdout, newline="")))
    assert listed and {r["complete"] for r in listed} <= {"true", "false"}
    assert all(dt.datetime.fromisoformat(r["end_at"]).tzinfo is not None for r in listed)
    # Phone numbers begin with "+": defused for spreadsheets, as in the report's CSV.
    devices = _investigate(harvested, tmp_path, "devices", "", "--format", "csv")
    phones = [r["phone_number"] for r in csv.DictReader(io.StringIO(devices.stdout, newline=""))
              if r["phone_number"]]  # fmt: skip
    assert phones and all(p.startswith("'+") for p in phones)


def test_names_with_brackets_are_shown_as_given(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path
) -> None:
    from sqlalchemy import update

    from reporting.db.models import Participant

    email = _busiest_email(org)
    odd = "[/] Mallory [bold]Q[/bold]"  # Rich markup would fail on, or swallow, these brackets
    with db.session() as session:
        session.execute(
            update(Participant).where(Participant.email_norm == email).values(display_name=odd)
        )
        session.commit()
    for question in ("person", "devices"):
        result = _investigate(harvested, tmp_path, question, "mallory")
        assert result.exit_code == 0, result.output
        assert f"{odd} <" in result.stdout


@pytest.mark.parametrize("who", ["", " ", "a"])
def test_an_empty_or_one_letter_person_is_a_usage_error(who: str) -> None:
    from click.testing import CliRunner

    from reporting.cli import cli

    result = CliRunner().invoke(cli, ["investigate", "person", who])
    assert result.exit_code == 2 and "say whom to look for" in result.output


# -- the auditor's findings: the report's rules, and what the investigator is told -----------------


def _admitted_in(org: SimulatedOrg, meeting_id: str) -> list[dict[str, Any]]:
    return [p for p in org.participants[meeting_id] if p.get("state") != "lobby"]


def _key(p: dict[str, Any]) -> str:
    """The report's person key of an API participant."""
    return (p.get("email") or "").strip().lower() or f"participant:{p['id']}"


def _caller_named_by_number(org: SimulatedOrg) -> tuple[str, dict[str, Any]]:
    """An admitted phone caller whose display name is their number, and the meeting's id."""
    for m in org.meetings:
        for p in _admitted_in(org, m["id"]):
            numbers = [d.get("phoneNumber") for d in p.get("devices", [])]
            if not p.get("email") and p.get("displayName") in numbers:
                return m["id"], p
    raise AssertionError("the simulated org has no caller named by their number")


def _lobby_only(db: Database, email: str, meeting_id: str) -> None:
    """Make ``email`` a person who waited in the lobby of ``meeting_id`` and was never admitted."""
    from sqlalchemy import update

    from reporting.db.models import Participant

    with db.session() as session:
        session.execute(
            update(Participant)
            .where(Participant.email_norm == email, Participant.meeting_id == meeting_id)
            .values(state="lobby")
        )
        session.commit()


def test_a_caller_named_by_their_number_is_masked_as_the_report_masks_it(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path
) -> None:
    from reporting.report import generate_report, mask_phone

    meeting_id, caller = _caller_named_by_number(org)
    number = caller["displayName"]
    masked = mask_phone(number)
    assert masked is not None and masked != number and "•" in masked
    host_email = next(m["hostEmail"] for m in org.meetings if m["id"] == meeting_id)
    key = _key(caller)
    asked = [
        ("meeting", meeting_id), ("person", key), ("devices", key), ("with", host_email),
        ("person", number[-4:]), ("orgs",),
    ]  # fmt: skip
    for args in asked:
        for fmt in ("table", "csv", "json"):
            result = _investigate(harvested, tmp_path, *args, "--format", fmt, columns=250)
            assert result.exit_code == 0, (args, result.output)
            assert number not in result.output, (args, fmt)
            assert masked in result.output, (args, fmt)
    shown = _investigate(harvested, tmp_path, "meeting", meeting_id, show_phone_numbers=True)
    assert number in shown.stdout  # MEETAUDIT_SHOW_PHONE_NUMBERS shows it, as in the report

    # The same name as the report's row for the same person.
    report = generate_report(
        harvested, db, month_of(START), label="2026-10", output=tmp_path / "r", formats=("csv",)
    )
    with report.path.open(encoding="utf-8", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["person_key"] == key)
    with db.session() as session:
        _, lines, _ = meeting_roster(session, meeting_id, harvested)
    assert masked in {line.display_name for line in lines}
    assert row["display_name"].lstrip("'") == masked


def test_met_with_means_both_were_admitted_and_callers_count(
    harvested: Settings, org: SimulatedOrg, db: Database
) -> None:
    email = _busiest_email(org)
    mine = [m["id"] for m in org.meetings
            if any(_key(p) == email for p in _admitted_in(org, m["id"]))]  # fmt: skip
    waited = mine[0]
    _lobby_only(db, email, waited)  # never admitted there: nobody there was "met"
    expected: dict[str, set[str]] = {}
    for meeting_id in mine[1:]:
        for p in _admitted_in(org, meeting_id):
            if _key(p) != email:
                expected.setdefault(_key(p), set()).add(meeting_id)
    with db.session() as session:
        others = co_attendees(session, email, harvested)
    assert sum(o.meetings_together for o in others) == sum(len(v) for v in expected.values())
    assert {o.person_key: o.meetings_together for o in others} == {
        k: len(v) for k, v in expected.items()
    }
    callers = [o for o in others if o.classification == "unidentified"]
    assert callers and all(o.person_key.startswith("participant:") for o in callers)
    assert [o.meetings_together for o in others] == sorted(
        (o.meetings_together for o in others), reverse=True
    )


def test_meetings_waited_in_the_lobby_of_are_not_meetings_attended(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path
) -> None:
    email = _busiest_email(org)
    with db.session() as session:
        before = attendance_of(session, email)
    waited = before[0].meeting_id
    _lobby_only(db, email, waited)
    with db.session() as session:
        rows = attendance_of(session, email)
    assert [(r.meeting_id, r.admitted) for r in rows] == [
        (r.meeting_id, r.meeting_id != waited) for r in before
    ]
    assert all(r.attended_minutes == 0 for r in rows if not r.admitted)

    out = _investigate(harvested, tmp_path, "person", email).stdout
    attended, _, lobby = out.partition("Lobby only, never admitted: ")
    assert attended.count("Meetings attended by ") == 1 and lobby.startswith(
        next(r.display_name for r in rows if r.display_name)
    )
    assert waited not in attended and waited in lobby
    assert all(r.meeting_id in attended for r in rows if r.admitted)
    exported = _investigate(harvested, tmp_path, "person", email, "--format", "csv").stdout
    records = list(csv.DictReader(io.StringIO(exported, newline="")))
    assert {r["meeting_id"]: r["admitted"] for r in records} == {
        r.meeting_id: "true" if r.admitted else "false" for r in rows
    }

    # Admitted to nothing at all: the answer says so before the lobby-only meetings.
    for row in rows:
        _lobby_only(db, email, row.meeting_id)
    none = _investigate(harvested, tmp_path, "person", email).stdout
    assert re.search(r"^Meetings attended by .*\n\s+none$", none, flags=re.MULTILINE)
    assert all(r.meeting_id in none.partition("Lobby only")[2] for r in rows)


def test_every_answer_names_the_period_searched_and_whether_it_was_harvested(
    harvested: Settings, tmp_path: Path
) -> None:
    stored = _investigate(
        harvested, tmp_path, "person", "nobody-by-this-name", "--month", "2026-10"
    )
    assert stored.exit_code == 0, stored.output
    assert "Period searched: 2026-10-01 00:00 to 2026-11-01 00:00 (Europe/Zurich" in stored.stdout
    assert "nothing found" in stored.stdout
    assert "The period holds 25 harvested meetings; none matches." in stored.stdout
    # The harvest listed October in UTC: the first two hours of October in Zurich it never did.
    assert "Not harvested: 2026-10-01 00:00 to 2026-10-01 02:00 (Europe/Zurich)" in stored.stdout

    never = _investigate(harvested, tmp_path, "person", "nobody-by-this-name", "--month", "2027-03")
    assert "Period searched: 2027-03-01 00:00 to 2027-04-01 00:00" in never.stdout
    assert "no harvested meetings at all: it has not been harvested" in never.stdout
    assert "Not harvested: 2027-03-01 00:00 to 2027-04-01 00:00" in never.stdout

    found = _investigate(harvested, tmp_path, "meetings", "--from", "2026-10-05")
    assert "Period searched: from 2026-10-05 00:00 on (Europe/Zurich)" in found.stdout
    everything = _investigate(harvested, tmp_path, "orgs", "--format", "json")
    assert "Period searched: all stored meetings" in everything.stderr
    assert json.loads(everything.stdout)  # stdout stays data only


def test_a_fragment_with_an_at_sign_matches_part_of_an_email(
    harvested: Settings, org: SimulatedOrg, db: Database
) -> None:
    from sqlalchemy import update

    from reporting.db.models import Participant

    email = _busiest_email(org)
    local, _, domain = email.partition("@")
    with db.session() as session:
        rows = attendance_of(session, email)
        fragment = f"{local[1:]}@{domain.split('.')[0]}".upper()  # "ANDERSEN@GLOBEX"
        assert [r.meeting_id for r in attendance_of(session, fragment)] == [
            r.meeting_id for r in rows
        ]
        same_domain = {_key(p) for m in org.meetings for p in org.participants[m["id"]]
                       if _key(p).endswith("@" + domain)}  # fmt: skip
        assert {p.person_key for p in people_matching(session, "@" + domain)} == same_domain

    # A whole address stored as such still means that person only, not every longer one.
    other = next(k for k in same_domain if k != email)
    with db.session() as session:
        session.execute(
            update(Participant).where(Participant.email_norm == other)
            .values(email="x" + email, email_norm="x" + email)
        )  # fmt: skip
        session.commit()
    with db.session() as session:
        assert {p.person_key for p in people_matching(session, email)} == {email}
        assert {p.person_key for p in people_matching(session, email[1:])} == {email, "x" + email}


def test_a_participant_key_the_answers_print_can_be_asked_about(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path
) -> None:
    meeting_id, caller = _caller_named_by_number(org)
    key = _key(caller)
    ambiguous = _investigate(harvested, tmp_path, "person", "Call-in User")
    assert "people match" in ambiguous.stdout and "(participant:" in ambiguous.stdout
    with db.session() as session:
        assert [p.person_key for p in people_matching(session, key)] == [key]
        assert [a.meeting_id for a in attendance_of(session, key)] == [meeting_id]
        typed = "Participant:" + key.removeprefix("participant:")  # the prefix in any case
        assert [d.person_key for d in devices_of(session, typed, harvested)] == [key]
    result = _investigate(harvested, tmp_path, "person", key)
    assert result.exit_code == 0, result.output
    assert meeting_id in result.stdout and "people match" not in result.stdout


def test_orgs_count_people_per_person_and_organisation_as_the_report_does(
    harvested: Settings, db: Database, tmp_path: Path
) -> None:
    from reporting.report import generate_report

    report = generate_report(
        harvested, db, month_of(START), label="2026-10", output=tmp_path / "r", formats=("csv",)
    )
    with report.path.open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.DictReader(handle)
                if r["admitted"] == "true" and r["classification"] != "internal"]  # fmt: skip
    people: dict[tuple[str, str | None], set[str]] = {}
    meetings: dict[tuple[str, str | None], set[str]] = {}
    for r in rows:
        org = (r["classification"], r["org_key"].lstrip("'") or None)
        people.setdefault(org, set()).add(r["person_key"])
        meetings.setdefault(org, set()).add(r["meeting_id"])
    window = month_of(START)
    with db.session() as session:
        outside = outside_organisations(session, harvested, Period(window.start, window.end))
    assert {(o.classification, o.organisation): (o.people, o.meetings) for o in outside} == {
        org: (len(people[org]), len(meetings[org])) for org in people
    }
    callers = [r for r in rows if r["classification"] == "unidentified"]
    # "Call-in User_1" in many meetings: many people, one name.
    assert len({r["display_name"] for r in callers}) < len(callers)


def test_the_terminal_shows_hostile_characters_and_cuts_overlong_names(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path
) -> None:
    from sqlalchemy import update

    from reporting.db.models import Meeting, Participant

    meeting = org.meetings[0]
    sly, long_name = "Invoice \u202efdp.exe\u200b", "Ω" * 2000
    people = [p for p in org.participants[meeting["id"]] if p.get("email")]
    with db.session() as session:
        session.execute(update(Meeting).where(Meeting.meeting_id == meeting["id"])
                        .values(title=sly))  # fmt: skip
        for p, name in zip(people, (sly, long_name), strict=False):
            session.execute(update(Participant).where(Participant.participant_id == p["id"])
                            .values(display_name=name))  # fmt: skip
        session.commit()
    for args in (("meeting", meeting["id"]), ("person", _key(people[1])), ("meetings",)):
        out = _investigate(harvested, tmp_path, *args).stdout
        assert "\u202e" not in out and "\u200b" not in out, args
        assert "Invoice [U+202E]fdp.exe[U+200B]" in out, args
        assert "Ω" * 161 not in out, args
        assert len(out.splitlines()) < 300, args
    title = _investigate(harvested, tmp_path, "person", _key(people[1])).stdout.split("Times")[0]
    folded = re.sub(r"\s+", "", title)  # the title is wrapped at the terminal's width
    assert "Ω" * 160 + "…[2,000characters;--formatjsonshowsall]<" in folded
    # CSV and JSON keep the values as stored, as the report's exports do.
    as_json = json.loads(_investigate(harvested, tmp_path, "meeting", meeting["id"],
                                      "--format", "json").stdout)  # fmt: skip
    assert {sly, long_name} <= {line["display_name"] for line in as_json}


def test_a_period_that_ends_before_it_starts_is_named_as_the_period_searched(
    harvested: Settings, tmp_path: Path
) -> None:
    result = _investigate(harvested, tmp_path, "person", "anyone",
                          "--from", "2026-10-20", "--to", "2026-10-10")  # fmt: skip
    assert result.exit_code == 2
    assert "the period searched ends before it starts" in result.output
    assert "harvest window" not in result.output


def test_meetings_by_a_fragment_of_the_host_and_a_literal_title(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path
) -> None:
    host = org.meetings[0]["hostEmail"]
    hosted = {m["id"] for m in org.meetings if m["hostEmail"].strip().lower() == host.lower()}
    local = host.partition("@")[0]
    with db.session() as session:
        assert {m.meeting_id for m in find_meetings(session, host=host.upper())} == hosted
        by_fragment = {m.meeting_id for m in find_meetings(session, host=local[1:])}
        name = org.meetings[0]["hostDisplayName"]
        by_name = {m.meeting_id for m in find_meetings(session, host=name.split()[-1].lower())}
        assert find_meetings(session, title="%") == find_meetings(session, title="_") == []
    assert hosted <= by_fragment and hosted <= by_name
    assert all(
        local[1:] in m["hostEmail"].lower() or local[1:] in m["hostDisplayName"].lower()
        for m in org.meetings if m["id"] in by_fragment
    )  # fmt: skip
    listing = _investigate(harvested, tmp_path, "meetings", "--host", local[1:])
    assert listing.exit_code == 0 and all(i in listing.stdout for i in hosted)
    helped = _investigate(harvested, tmp_path, "meetings", "--help")
    assert "Onboarding" in helped.output


# -- more questions: a phone number, a device, a name however typed, a person's timeline -----------


def test_a_phone_number_finds_its_caller_and_stays_masked(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path
) -> None:
    from reporting.investigate import phone_calls
    from reporting.report import mask_phone

    meeting_id, caller = _caller_named_by_number(org)
    number = caller["displayName"]
    digits = "".join(ch for ch in number if ch.isdigit())
    with db.session() as session:
        whole = phone_calls(session, number, harvested)
        tail = phone_calls(session, digits[-4:], harvested)
        other_format = phone_calls(session, " ".join(digits), harvested)
    assert meeting_id in {c.meeting_id for c in whole}
    assert {c.person_key for c in whole} >= {_key(caller)}
    assert [c.meeting_id for c in whole] == [c.meeting_id for c in other_format]
    assert {(c.meeting_id, c.person_key) for c in whole} <= {
        (c.meeting_id, c.person_key) for c in tail
    }
    assert all(c.phone_number and c.phone_number.endswith("••") for c in tail)
    masked = mask_phone(number)
    assert masked is not None
    for fmt in ("table", "csv", "json"):
        result = _investigate(harvested, tmp_path, "phone", digits[-4:], "--format", fmt,
                              columns=250)  # fmt: skip
        assert result.exit_code == 0, result.output
        assert number not in result.output and masked in result.output, fmt
        assert meeting_id in result.stdout
    shown = _investigate(harvested, tmp_path, "phone", digits[-4:], show_phone_numbers=True,
                         columns=250)  # fmt: skip
    assert number in shown.stdout
    refused = _investigate(harvested, tmp_path, "phone", "12")
    assert refused.exit_code == 2 and "last 3 digits" in refused.output


def test_a_device_by_correlation_id_and_by_client_type(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path
) -> None:
    from reporting.investigate import device_sessions

    meeting = org.meetings[0]
    person = next(p for p in org.participants[meeting["id"]] if p.get("devices") and p.get("email"))
    device = person["devices"][0]
    with db.session() as session:
        one = device_sessions(session, device["correlationId"], harvested)
        kind = device_sessions(session, device["deviceType"].upper(), harvested)
    assert [(d.person_key, d.correlation_id) for d in one] == [
        (_key(person), device["correlationId"])
    ]
    assert meeting["id"] in one[0].meeting_ids
    expected = sum(1 for m in org.meetings for p in org.participants[m["id"]]
                   for d in p.get("devices", []) if d.get("deviceType") == device["deviceType"])  # fmt: skip
    assert sum(d.sessions for d in kind) == expected
    assert _key(person) in {d.person_key for d in kind}
    result = _investigate(
        harvested, tmp_path, "device", device["correlationId"], "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["person_key"] == _key(person)


def test_names_are_found_whatever_the_accents_case_and_small_typos(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path
) -> None:
    from sqlalchemy import update

    from reporting.db.models import Participant
    from reporting.investigate import resolve

    email = _busiest_email(org)
    with db.session() as session:
        session.execute(update(Participant).where(Participant.email_norm == email)
                        .values(display_name="José Ångström"))  # fmt: skip
        session.commit()
    with db.session() as session:
        for typed in ("Jose Angstrom", "JOSÉ ÅNGSTRÖM", "angstr", "josé"):
            found = resolve(session, typed)
            assert email in found.keys and not found.close, typed
        typo = resolve(session, "Jose Angstrem")
        assert typo.close and email in typo.keys
        assert [p.person_key for p in people_matching(session, "Jose Angstrem")][:1] == [email]
        assert resolve(session, "Qwxyz Zzkv").keys == ()
    result = _investigate(harvested, tmp_path, "person", "Jose Angstrem")
    assert result.exit_code == 0, result.output
    assert "No name or address contains 'Jose Angstrem'" in result.stdout
    assert f"<{email}>" in result.stdout


def test_a_timeline_lists_meetings_lobby_waits_and_invitations_in_order(
    harvested: Settings, org: SimulatedOrg, db: Database, tmp_path: Path
) -> None:
    from reporting.investigate import ATTENDED, INVITED_ABSENT, LOBBY_WAIT, timeline

    email = _busiest_email(org)
    mine = [m["id"] for m in org.meetings
            if any(_key(p) == email for p in _admitted_in(org, m["id"]))]  # fmt: skip
    _lobby_only(db, email, mine[0])
    joined = {
        m["id"] for m in org.meetings if any(_key(p) == email for p in org.participants[m["id"]])
    }
    invited = {m["id"] for m in org.meetings
               if any((i.get("email") or "").strip().lower() == email for i in org.invitees[m["id"]])}  # fmt: skip
    with db.session() as session:
        events = timeline(session, email, harvested)
        outside = {o.organisation for o in outside_organisations(session, harvested)
                   if o.classification == "external"}  # fmt: skip
    by_kind: dict[str, set[str]] = {}
    for e in events:
        by_kind.setdefault(e.event, set()).add(e.meeting_id)
    assert by_kind.get(LOBBY_WAIT) == {mine[0]}
    assert by_kind.get(ATTENDED, set()) == set(mine[1:])
    assert by_kind.get(INVITED_ABSENT, set()) == invited - joined
    starts = [e.at for e in events]
    assert starts == sorted(starts)  # type: ignore[type-var]
    met = {org_key for e in events for org_key in e.organisations_met}
    assert met and met <= outside
    assert all(not e.organisations_met for e in events if e.event != ATTENDED)
    result = _investigate(harvested, tmp_path, "timeline", email, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert len(list(csv.DictReader(io.StringIO(result.stdout)))) == len(events)


def test_importing_the_command_line_loads_no_pdf_stack_harvester_or_alembic() -> None:
    heavy = ("weasyprint", "pikepdf", "reporting.harvest", "alembic", "sqlalchemy", "pydantic",
             "pyhanko", "httpx")  # fmt: skip
    assert _loaded_by_importing("reporting.cli", heavy) == "[]"


def test_folded_lines_keep_every_character_within_the_width() -> None:
    """The narrow layout folds values at spaces, and cuts a word only when it is longer than the
    line (an id or email), never dropping a character; wide (CJK) characters count two cells."""
    from rich.cells import cell_len

    from reporting.investigate import _fold_line

    for line, width in (("Quarterly review – Globex and Initech partners", 16),
                        ("0123456789abcdef0123456789abcdef_I_200005873", 10),
                        ("会議 日本語の名前 とても長い名前です", 8), ("", 5), ("short", 40)):  # fmt: skip
        pieces = _fold_line(line, width)
        assert all(cell_len(p) <= width for p in pieces), pieces
        assert "".join(pieces).replace(" ", "") == line.replace(" ", "")


def test_answering_a_question_loads_no_pdf_stack_templates_harvester_or_alembic() -> None:
    """``reporting.investigate`` (what every investigate command imports) leaves the report's
    PDF and template stack, the harvester and Alembic unloaded: a question starts fast."""

    heavy = ("weasyprint", "pikepdf", "jinja2", "urllib.request", "reporting.harvest", "alembic",
             "pyhanko", "httpx")  # fmt: skip
    assert _loaded_by_importing("reporting.investigate", heavy) == "[]"


def _loaded_by_importing(module: str, heavy: tuple[str, ...]) -> str:
    """Which of ``heavy`` a fresh interpreter has loaded after importing ``module``."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c",
         f"import sys, {module}; print([m for m in {heavy!r} if m in sys.modules])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
