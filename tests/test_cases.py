"""Investigation cases and the access log: every look at personal data is itself recorded."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from reporting.cli import cli
from reporting.config import Settings
from reporting.db.engine import Database
from reporting.db.models import AccessLogEntry, InvestigationCase
from reporting.webex.simulator import SimulatedOrg, generate_org
from tests.factories import harvest_org, month_of
from tests.test_investigate import START, _busiest_email


@pytest.fixture
def org() -> SimulatedOrg:
    window = month_of(START)
    return generate_org(
        seed=5, start=window.start, end=window.end, meetings=6, participants_per_meeting=5
    )


@pytest.fixture
def harvested(settings: Settings, org: SimulatedOrg, db: Database) -> Settings:
    assert harvest_org(settings, org, month_of(START), db=db).complete
    return settings


def _run(settings: Settings, tmp_path: Path, *args: str, **env: str) -> Result:
    base = {
        "MEETAUDIT_CONFIG": None,
        "MEETAUDIT_DATABASE_URL": settings.database_url.get_secret_value()
        if settings.database_url
        else None,
        "MEETAUDIT_DATA_DIR": str(tmp_path / "cli-data"),
        "MEETAUDIT_ORG_DOMAINS": ",".join(settings.org_domains),
        "MEETAUDIT_OPERATOR": "investigator-7@acme",
        "MEETAUDIT_REQUIRE_CASE": None,
        "COLUMNS": "160",
    }
    return CliRunner().invoke(cli, list(args), env={**base, **env})


def _log(db: Database) -> list[AccessLogEntry]:
    with db.session() as session:
        return list(session.scalars(select(AccessLogEntry).order_by(AccessLogEntry.seq)))


def _superuser(db: Database, sql: str) -> None:
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def test_a_question_without_a_case_is_refused_and_nothing_is_shown(
    harvested: Settings, db: Database, org: SimulatedOrg, tmp_path: Path
) -> None:
    email = _busiest_email(org)
    result = _run(harvested, tmp_path, "investigate", "person", email)
    assert result.exit_code == 2, result.output
    assert "needs a case" in result.output and "--case" in result.output
    assert email not in result.stdout.replace("Error", "")  # no row of the answer was shown
    assert _log(db) == []


def test_questions_in_a_case_are_recorded_with_who_what_and_how_many(
    harvested: Settings, db: Database, org: SimulatedOrg, tmp_path: Path
) -> None:
    opened = _run(harvested, tmp_path, "case", "open", "INV-1", "--purpose", "HR complaint 42")
    assert opened.exit_code == 0, opened.output
    email = _busiest_email(org)
    person = _run(harvested, tmp_path, "investigate", "person", email, "--case", "INV-1",
                  "--month", "2026-10")  # fmt: skip
    assert person.exit_code == 0, person.output
    orgs = _run(harvested, tmp_path, "investigate", "orgs", "--case", "INV-1", "--format", "json")
    assert orgs.exit_code == 0, orgs.output
    roster_id = org.meetings[0]["id"]
    meeting = _run(harvested, tmp_path, "investigate", "meeting", roster_id, "--case", "INV-1")
    assert meeting.exit_code == 0, meeting.output

    log = _log(db)
    assert [e.question for e in log] == [
        "investigate person", "investigate orgs", "investigate meeting",
    ]  # fmt: skip
    assert all(e.case_ref == "INV-1" and e.operator == "investigator-7@acme" for e in log)
    assert log[0].parameters["who"] == email and log[0].parameters["month"] == "2026-10"
    assert log[0].output_format == "table" and log[1].output_format == "json"
    assert log[1].rows_returned == len(json.loads(orgs.stdout))
    assert log[2].parameters["meeting_id"] == roster_id and log[2].rows_returned > 0
    assert [e.seq for e in log] == [1, 2, 3]
    assert log[1].prev_entry_sha256 == log[0].entry_sha256

    shown = _run(harvested, tmp_path, "access-log", "--case", "INV-1")
    assert shown.exit_code == 0, shown.output
    assert "investigate person" in shown.stdout and "investigator-7@acme" in shown.stdout
    assert "OK: access log of 3 entries intact" in shown.stdout
    assert log[-1].entry_sha256 in shown.stdout

    listed = _run(harvested, tmp_path, "case", "list")
    assert "INV-1" in listed.stdout and "HR complaint 42" in listed.stdout


def test_unknown_and_closed_cases_are_refused(
    harvested: Settings, db: Database, org: SimulatedOrg, tmp_path: Path
) -> None:
    email = _busiest_email(org)
    unknown = _run(harvested, tmp_path, "investigate", "person", email, "--case", "NOPE")
    assert unknown.exit_code == 2 and "there is no case 'NOPE'" in unknown.output
    assert _run(harvested, tmp_path, "case", "open", "INV-2", "--purpose", "x").exit_code == 0
    again = _run(harvested, tmp_path, "case", "open", "INV-2", "--purpose", "y")
    assert again.exit_code == 2 and "already exists" in again.output
    closed = _run(harvested, tmp_path, "case", "close", "INV-2", "--note", "done")
    assert closed.exit_code == 0, closed.output
    after = _run(harvested, tmp_path, "investigate", "person", email, "--case", "INV-2")
    assert after.exit_code == 2 and "was closed" in after.output
    assert _log(db) == []
    with db.session() as session:
        case = session.get(InvestigationCase, "INV-2")
        assert case is not None and case.close_note == "done"


def test_without_a_required_case_every_question_is_still_recorded(
    harvested: Settings, db: Database, org: SimulatedOrg, tmp_path: Path
) -> None:
    result = _run(harvested, tmp_path, "investigate", "devices", _busiest_email(org),
                  MEETAUDIT_REQUIRE_CASE="false")  # fmt: skip
    assert result.exit_code == 0, result.output
    (entry,) = _log(db)
    assert entry.case_ref is None and entry.question == "investigate devices"


def test_the_database_refuses_to_change_the_access_log(harvested: Settings, db: Database) -> None:
    _run(harvested, Path("/tmp"), "investigate", "orgs", MEETAUDIT_REQUIRE_CASE="false")
    for sql in ("UPDATE access_log SET rows_returned = 0", "DELETE FROM access_log",
                "TRUNCATE access_log"):  # fmt: skip
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _superuser(db, sql)
    assert len(_log(db)) == 1


@pytest.mark.parametrize(
    ("attack", "finding"),
    [
        (
            "ALTER TABLE access_log DISABLE TRIGGER access_log_append_only;"
            "UPDATE access_log SET rows_returned = 0 WHERE seq = 1;"
            "ALTER TABLE access_log ENABLE TRIGGER access_log_append_only",
            "entry 1 was altered",
        ),
        (
            "ALTER TABLE access_log DISABLE TRIGGER access_log_append_only;"
            "DELETE FROM access_log WHERE seq = 1;"
            "ALTER TABLE access_log ENABLE TRIGGER access_log_append_only",
            "entry 1 is missing",
        ),
        ("ALTER TABLE access_log DISABLE TRIGGER access_log_append_only", "no longer refuses"),
        ("DROP TRIGGER access_log_append_only ON access_log", "no longer refuses"),
    ],
)
def test_tampering_with_the_access_log_is_found(
    harvested: Settings, db: Database, tmp_path: Path, attack: str, finding: str
) -> None:
    for _ in range(2):
        _run(harvested, tmp_path, "investigate", "orgs", MEETAUDIT_REQUIRE_CASE="false")
    _superuser(db, attack)
    result = _run(harvested, tmp_path, "access-log")
    assert result.exit_code == 4, result.output
    assert finding in result.output and "NOT intact" in result.output
