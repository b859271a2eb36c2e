"""One library, two faces: the CLI and the console give the same messages and the same verdicts,
because both call the same library function."""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from reporting.cli import cli
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import AccessLogEntry, Job
from reporting.harvest import HARVEST_LOCK_KEY
from reporting.jobs import work_once
from reporting.periods import previous_month
from reporting.report.run import HARVEST_RUNNING
from reporting.web import accounts
from tests.conftest import _libpq
from tests.report.conftest import build_known_month
from tests.web.conftest import csrf_of


def _cli_env(s: Settings, database_url: str) -> dict[str, str | None]:
    """The environment under which the CLI works on the console's records, as the console."""
    return {
        "MEETAUDIT_CONFIG": None, "MEETAUDIT_SIGNING_KEY_FILE": None,
        "MEETAUDIT_DATABASE_URL": database_url, "MEETAUDIT_DATA_DIR": str(s.data_dir),
        "MEETAUDIT_OUTPUT_DIR": str(s.output_dir), "MEETAUDIT_ORG_NAME": s.org_name,
        "MEETAUDIT_ORG_DOMAINS": ",".join(s.org_domains), "MEETAUDIT_TIMEZONE": s.timezone,
        "MEETAUDIT_REQUIRE_CASE": "true", "COLUMNS": "200",
    }  # fmt: skip


def _token(db: Database, name: str) -> dict[str, str]:
    with db.session() as session:
        return {"Authorization": f"Bearer {accounts.new_api_token(session, name, 'test')}"}


@pytest.mark.parametrize("month", ["October", "2026-13", "0001-01", "26-1"])
def test_a_mistyped_month_gets_the_same_message_from_the_cli_and_the_console(
    app: object,
    clients: dict[str | None, TestClient],
    db: Database,
    web_settings: Settings,
    database_url: str,
    month: str,
) -> None:
    api = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    refused = api.get("/api/v1/gaps", params={"month": month}, headers=_token(db, "auditor-user"))
    assert refused.status_code == 400
    message = refused.json()["error"]
    assert "is not a month; write it as YYYY-MM" in message

    env = {"MEETAUDIT_DATABASE_URL": database_url, "MEETAUDIT_TIMEZONE": web_settings.timezone}
    for command in (["gaps"], ["report"], ["investigate", "orgs"]):
        said = CliRunner().invoke(cli, [*command, "--month", month], env=env)
        assert said.exit_code == 2, said.output  # a usage mistake
        assert f"Error: {message}" in said.output, command

    officer = _token(db, "officer-user")
    asked = api.post("/api/v1/reports/generate", headers=officer, json={"month": month})
    assert (asked.status_code, asked.json()) == (400, {"error": message})
    page = clients["auditor"].get("/gaps", params={"month": month})
    assert page.status_code == 400 and message in html.unescape(page.text)


def test_an_empty_month_is_last_month_for_both_faces(
    app: object, db: Database, web_settings: Settings
) -> None:
    last = previous_month(dt.datetime.now(dt.UTC), web_settings.zone)
    api = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    gaps = api.get("/api/v1/gaps", params={"month": ""}, headers=_token(db, "auditor-user"))
    assert gaps.status_code == 200 and gaps.json()["month"] == last
    asked = api.post("/api/v1/reports/generate", headers=_token(db, "officer-user"), json={})
    assert asked.status_code == 200, asked.text
    state = api.get(asked.json()["url"], headers=_token(db, "officer-user")).json()
    assert state["parameters"]["month"] == last


def test_a_console_report_gets_the_cli_s_warning_and_verdict(
    clients: dict[str | None, TestClient],
    db: Database,
    web_settings: Settings,
    database_url: str,
) -> None:
    """Stored records altered after the harvest, while a harvest runs: `meetaudit report` warns
    and exits 4 after writing; the console's report job says the same on its page."""
    build_known_month(db)
    with db.session() as session:
        session.execute(text(
            "UPDATE participants SET raw = jsonb_set(raw, '{displayName}', '\"Mallory\"') "
            "WHERE participant_id = 'p-gina'"))  # fmt: skip
    env = _cli_env(web_settings, database_url)
    # A harvest holds its lock while both faces write the report of the month.
    with psycopg.connect(_libpq(database_url), autocommit=True) as harvest:
        harvest.execute("SELECT pg_advisory_lock(%s)", (HARVEST_LOCK_KEY,))
        said = CliRunner().invoke(cli, ["--log-format", "plain", "report", "--month", "2026-10",
                                        "--format", "csv"], env=env)  # fmt: skip
        officer = clients["officer"]
        asked = officer.post("/reports/generate", data={
            "csrf_token": csrf_of(officer.get("/reports").text, "/reports/generate"),
            "month": "2026-10", "format_csv": "1"}, follow_redirects=False)  # fmt: skip
        assert asked.status_code == 303
        assert work_once(web_settings, db, "w") is not None
    assert said.exit_code == 4, said.output
    assert f"Warning: {HARVEST_RUNNING}" in said.stderr
    cli_verdict = said.output.split("Error: ", 1)[1].strip()
    assert "no longer match what was harvested" in cli_verdict

    page = html.unescape(officer.get(asked.headers["location"]).text)
    assert f"Warning: {HARVEST_RUNNING}" in page
    with db.session() as session:
        job = session.query(Job).one()
        web_verdict = job.result["verdict"]
        ids = (job.result["report_id"], said.output.split("Report ", 1)[1].split()[0])
    assert web_verdict in page and "STORED DATA ALTERED" in page  # the summary, as printed
    assert web_verdict.replace(*ids) == cli_verdict  # the same words, another report's id


@pytest.mark.parametrize(
    ("question", "who", "month"),
    [
        ("person", "@acme.example", "2026-10"),  # several people: each named, how to ask one
        ("person", "Alise Angstrom", "2026-10"),  # nobody contains it: names close to it
        ("orgs", "", "2026-09"),  # a month no harvest listed: said so
        ("with", "nobody-here@nowhere.example", "2026-10"),  # nothing found: is the month there?
        ("meeting", "M1", ""),  # the meeting's title and host; invitees who did not attend
    ],
)
def test_an_answer_carries_the_same_notes_from_the_cli_the_api_and_the_page(
    app: object,
    clients: dict[str | None, TestClient],
    db: Database,
    web_settings: Settings,
    database_url: str,
    question: str,
    who: str,
    month: str,
) -> None:
    from reporting.cases import open_case
    from reporting.investigate import QUESTIONS

    build_known_month(db)
    with db.session() as session:
        open_case(session, "INV-1", "faces", operator="lead")
    asked = {"question": question, "who": who, "month": month, "case": "INV-1"}
    api = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    answer = api.get("/api/v1/investigate", params=asked, headers=_token(db, "investigator-user"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["notes"], "each of these answers has something to say beside its rows"

    subject = QUESTIONS[question].subject
    args = [who] if subject in ("who", "meeting_id") else []
    fmt = ["--format", "table"] if question == "meeting" else ["--format", "json"]
    period = ["--month", month] if month else []
    said = CliRunner().invoke(
        cli,
        ["investigate", question, *args, *period, "--case", "INV-1", *fmt],
        env=_cli_env(web_settings, database_url),
    )
    assert said.exit_code == 0, said.output
    for note in body["notes"]:
        assert note in said.output, note
    if body["period"]:
        assert f"Period searched: {body['period']}" in said.output
    if question != "meeting":
        assert len(json.loads(said.stdout)) == len(body["rows"])

    page = clients["investigator"].get("/investigate", params=asked)
    assert page.status_code == 200
    shown = html.unescape(page.text)
    for note in body["notes"]:
        assert note in shown, note
    for person in body["people"]:
        assert person["email"] in shown


@pytest.mark.parametrize(
    ("question", "typed", "words"),
    [
        ("person", "a", "say whom to look for"),
        ("timeline", " ", "say whom to look for"),
        ("phone", "12", "give the phone number, or at least its last 3 digits"),
    ],
)
def test_a_question_asked_wrongly_gets_the_same_message_from_both_faces(
    app: object, db: Database, question: str, typed: str, words: str
) -> None:
    api = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    refused = api.get("/api/v1/investigate", params={"question": question, "who": typed},
                      headers=_token(db, "investigator-user"))  # fmt: skip
    assert refused.status_code == 400 and words in refused.json()["error"]
    said = CliRunner().invoke(cli, ["investigate", question, typed])
    assert said.exit_code == 2  # a usage mistake, told before anything is opened
    assert f"Error: {refused.json()['error']}" in said.output


def test_the_console_asks_every_question_the_cli_answers() -> None:
    from reporting.cli import investigate_group
    from reporting.web.views import QUESTIONS

    assert set(QUESTIONS) == set(investigate_group.commands)


def test_an_investigator_compiles_a_case_dossier_from_the_case_page(
    clients: dict[str | None, TestClient],
    app: object,
    db: Database,
    web_settings: Settings,
    tmp_path: Path,
) -> None:
    """`meetaudit case dossier REF` from the console: a background job, the same dossier (in the
    ledger, verified as the CLI verifies it), the look and the download in the access log under
    the case, by the investigator who asked."""
    from reporting.cases import open_case
    from reporting.report import ledger, verify_file

    build_known_month(db)
    with db.session() as session:
        open_case(session, "INV-7", "dossier from the console", operator="lead")
    investigator = clients["investigator"]
    asked = investigator.get("/investigate", params={"question": "orgs", "month": "2026-10",
                                                     "case": "INV-7"})  # fmt: skip
    assert asked.status_code == 200
    cases = investigator.get("/cases")
    assert 'action="/cases/dossier"' in cases.text
    queued = investigator.post("/cases/dossier", follow_redirects=False, data={
        "csrf_token": csrf_of(cases.text, "/cases/dossier"), "ref": "INV-7"})  # fmt: skip
    assert queued.status_code == 303
    job_url = queued.headers["location"]
    assert "Waiting for a console instance" in investigator.get(job_url).text
    # The report pages show reports only: an officer sees neither the job nor its page.
    job_id = int(job_url.rsplit("/", 1)[1])
    assert clients["officer"].get(f"/jobs/{job_id}").status_code == 404
    assert clients["officer"].get(job_url).status_code == 403

    assert work_once(web_settings, db, "w") == job_id
    done = investigator.get(job_url)
    assert "Done: dossier DOS-INV-7-" in done.text and f"{job_url}/file" in done.text
    pdf = investigator.get(f"{job_url}/file")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        entry = ledger.find_by_report_id(session, job.result["dossier_id"])
        assert entry is not None and entry.kind == "dossier"
        assert entry.generated_by == "investigator-user"  # who asked, as the CLI's operator
        assert pdf.headers["x-content-sha256"] == entry.file_sha256
    saved = tmp_path / "dossier.pdf"
    saved.write_bytes(pdf.content)
    assert verify_file(db, saved).ok  # `meetaudit verify` accepts it
    with db.session() as session:
        log = [(e.question, e.operator, e.case_ref, e.parameters.get("role"))
               for e in session.scalars(select(AccessLogEntry).order_by(AccessLogEntry.seq))]  # fmt: skip
    assert log == [
        ("console investigate orgs", "investigator-user", "INV-7", "investigator"),
        ("console dossier", "investigator-user", "INV-7", "investigator"),
        ("console download", "investigator-user", "INV-7", "investigator"),
    ]
    assert "1 question(s) asked again" in html.unescape(done.text)
    # Its answers about people are not one of the ledger's reports: not served as one, to anyone.
    for role in ("auditor", "officer"):  # the roles that download reports
        as_report = clients[role].get(f"/reports/{entry.report_id}/file")
        assert as_report.status_code == 403 and "case dossier" in as_report.text

    unknown = investigator.post("/cases/dossier", data={
        "csrf_token": csrf_of(cases.text, "/cases/dossier"), "ref": "NOPE"})  # fmt: skip
    assert unknown.status_code == 400 and "there is no case" in html.unescape(unknown.text)
    api = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    by_api = api.post("/api/v1/cases/INV-7/dossier", headers=_token(db, "investigator-user"))
    assert by_api.status_code == 200, by_api.text
    state = api.get(by_api.json()["url"], headers=_token(db, "investigator-user")).json()
    assert state["kind"] == "dossier" and state["status"] == "queued" and state["file"] is None
    refused = api.post("/api/v1/cases/INV-7/dossier", headers=_token(db, "auditor-user"))
    assert refused.status_code == 403


def test_a_period_by_from_and_to_gives_the_cli_s_rows_and_its_mistakes_its_messages(
    app: object, db: Database, web_settings: Settings, database_url: str
) -> None:
    """The console's From/To fields are the CLI's --from/--to: the same period searched, the
    same rows, and a day that is not one, or a month with them, refused in the same words."""
    from reporting.cases import open_case

    build_known_month(db)
    with db.session() as session:
        open_case(session, "INV-2", "periods", operator="lead")
    api = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
    token = _token(db, "investigator-user")
    asked = {"question": "orgs", "from": "2026-10-01", "to": "2026-10-16", "case": "INV-2"}
    answer = api.get("/api/v1/investigate", params=asked, headers=token)
    assert answer.status_code == 200, answer.text
    said = CliRunner().invoke(
        cli, ["investigate", "orgs", "--from", "2026-10-01", "--to", "2026-10-16", "--case",
              "INV-2", "--format", "json"], env=_cli_env(web_settings, database_url),
    )  # fmt: skip
    assert said.exit_code == 0, said.output
    assert json.loads(said.stdout) == answer.json()["rows"]
    assert f"Period searched: {answer.json()['period']}" in said.output
    assert "2026-10-16" in answer.json()["period"]

    both = api.get("/api/v1/investigate", params={**asked, "month": "2026-10"}, headers=token)
    assert both.status_code == 400
    said_both = CliRunner().invoke(
        cli, ["investigate", "orgs", "--month", "2026-10", "--from", "2026-10-01", "--to",
              "2026-10-16", "--case", "INV-2"], env=_cli_env(web_settings, database_url),
    )  # fmt: skip
    assert said_both.exit_code == 2 and both.json()["error"] in said_both.output
    wrong = api.get("/api/v1/investigate", params={**asked, "from": "01/10/2026"}, headers=token)
    assert wrong.status_code == 400 and "is not a date" in wrong.json()["error"]
