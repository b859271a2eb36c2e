"""Separation of duties: `meetaudit db roles`, then day-to-day work as the writer.

The writer harvests and reports, and cannot alter the ledger or switch off its trigger; the reader
reads; an upgrade needs the owner, and asking the writer for one names the owner. Roles belong to
the whole server, so every test uses names of its own and removes them afterwards.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url

from reporting.cli import cli
from reporting.db.roles import RoleNames, scram_verifier
from reporting.webex.simulator import Simulator, generate_org, serve
from tests.factories import TOKEN

_counter = itertools.count()
START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def libpq(url: str, user: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if user is not None:
        parsed = parsed.set(username=user, password=None)
    return parsed.render_as_string(hide_password=False)


def meetaudit(url: str, tmp_path: Path, *args: str, **extra: str | None) -> Result:
    env: dict[str, str | None] = {
        "MEETAUDIT_CONFIG": None,
        "MEETAUDIT_DATABASE_URL": url,
        "MEETAUDIT_DATA_DIR": str(tmp_path / "data"),
        "MEETAUDIT_OUTPUT_DIR": str(tmp_path / "reports"),
        "MEETAUDIT_TSA_URL": None,
        "MEETAUDIT_LEDGER_WITNESS": None,
        **extra,
    }
    return CliRunner().invoke(cli, ["--log-format", "plain", *args], env=env)


@pytest.fixture
def roles(database_url: str, tmp_path: Path) -> Iterator[RoleNames]:
    """Three roles set up with `meetaudit db roles` on this test's database."""
    n = f"{os.getpid()}_{next(_counter)}"
    names = RoleNames(f"ma_owner_{n}", f"ma_writer_{n}", f"ma_reader_{n}")
    try:
        result = meetaudit(database_url, tmp_path, "db", "roles", "--owner", names.owner,
                           "--writer", names.writer, "--reader", names.reader)  # fmt: skip
        assert result.exit_code == 0, result.output
        yield names
    finally:
        with psycopg.connect(libpq(database_url), autocommit=True) as conn:
            for role in names.all():
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone():
                    conn.execute(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')  # type: ignore[arg-type]
                    conn.execute(f'DROP OWNED BY "{role}"')  # type: ignore[arg-type]
            for role in names.all():
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')  # type: ignore[arg-type]


def as_role(database_url: str, role: str) -> psycopg.Connection:
    return psycopg.connect(libpq(database_url, role), autocommit=True)


def test_the_writer_harvests_and_reports_and_verifies(
    database_url: str, roles: RoleNames, tmp_path: Path
) -> None:
    writer_url = libpq(database_url, roles.writer)
    org = generate_org(seed=3, start=START, end=END, meetings=4, participants_per_meeting=3)
    with serve(Simulator(org, token=TOKEN)) as api:
        harvest = meetaudit(writer_url, tmp_path, "harvest", "--from", "2026-10-01", "--to",
                            "2026-11-01", MEETAUDIT_WEBEX_BASE_URL=api,
                            MEETAUDIT_WEBEX_TOKEN=TOKEN)  # fmt: skip
    assert harvest.exit_code == 0, harvest.output
    report = meetaudit(writer_url, tmp_path, "report", "--month", "2026-10", "--format", "json")
    assert report.exit_code == 0, report.output
    verify = meetaudit(writer_url, tmp_path, "verify", "--ledger")
    assert verify.exit_code == 0, verify.output
    assert "OK: report ledger of 1 entry" in verify.output
    assert "append-only trigger: in place" in verify.output


def test_the_writer_cannot_change_the_ledger_or_its_trigger(
    database_url: str, roles: RoleNames, tmp_path: Path
) -> None:
    assert (
        meetaudit(
            libpq(database_url, roles.writer),
            tmp_path,
            "report",
            "--month",
            "2026-10",
            "--format",
            "json",
        ).exit_code
        == 3
    )  # fmt: skip  (not harvested: INCOMPLETE)
    attacks = [
        "UPDATE report_runs SET generated_by = 'mallory'",
        "DELETE FROM report_runs",
        "TRUNCATE report_runs",
        "ALTER TABLE report_runs DISABLE TRIGGER report_runs_append_only",
        "DROP TRIGGER report_runs_append_only ON report_runs",
        "CREATE OR REPLACE FUNCTION report_runs_append_only() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NULL; END; $$",
        "ALTER TABLE report_runs OWNER TO CURRENT_USER",
        "SET session_replication_role = replica",
        "CREATE TABLE mallory (x int)",
    ]
    with as_role(database_url, roles.writer) as conn:
        for sql in attacks:
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
                conn.execute(sql)  # type: ignore[arg-type]
            # Refused by the privileges, not only by the trigger.
            assert "append-only" not in str(refused.value), sql
        assert conn.execute("SELECT count(*) FROM report_runs").fetchone() == (1,)
    with psycopg.connect(libpq(database_url), autocommit=True) as admin:
        owner = admin.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = 'report_runs'"
        ).fetchone()
        assert owner == (roles.owner,)


def test_the_reader_reads_and_cannot_write(
    database_url: str, roles: RoleNames, tmp_path: Path
) -> None:
    with as_role(database_url, roles.reader) as conn:
        assert conn.execute("SELECT count(*) FROM meetings").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM report_runs").fetchone() == (0,)
        for sql in ("INSERT INTO harvest_runs DEFAULT VALUES", "DELETE FROM meetings"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)  # type: ignore[arg-type]
    # An investigator with the reader role opens a case and asks; the look is recorded, and the
    # reader can change neither the records nor the access log.
    reader_url = libpq(database_url, roles.reader)
    opened = meetaudit(reader_url, tmp_path, "case", "open", "INV-7", "--purpose", "roles test")
    assert opened.exit_code == 0, opened.output
    investigate = meetaudit(reader_url, tmp_path, "investigate", "orgs", "--month", "2026-10",
                            "--case", "INV-7")  # fmt: skip
    assert investigate.exit_code == 0, investigate.output
    with as_role(database_url, roles.reader) as conn:
        assert conn.execute("SELECT count(*) FROM access_log").fetchone() == (1,)
        for sql in ("DELETE FROM access_log", "UPDATE access_log SET case_ref = 'X'",
                    "TRUNCATE access_log"):  # fmt: skip
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)  # type: ignore[arg-type]


def test_an_upgrade_asked_of_the_writer_names_the_owner(
    database_url: str, roles: RoleNames, tmp_path: Path
) -> None:
    with psycopg.connect(libpq(database_url), autocommit=True) as admin:
        admin.execute("UPDATE alembic_version SET version_num = '0001'")
    result = meetaudit(libpq(database_url, roles.writer), tmp_path, "verify", "--ledger")
    assert result.exit_code == 1, result.output
    assert f"only the owner of meetaudit's tables, the role '{roles.owner}'" in result.output
    assert f"this connection is the role '{roles.writer}'" in result.output
    assert "Nothing was changed" in result.output


def test_roles_can_be_set_up_again_with_passwords_that_are_never_shown(
    database_url: str, roles: RoleNames, tmp_path: Path
) -> None:
    secret = tmp_path / "writer.pw"
    secret.write_text("correct horse battery staple\n")
    result = meetaudit(database_url, tmp_path, "db", "roles", "--owner", roles.owner, "--writer",
                       roles.writer, "--reader", roles.reader, "--password-file",
                       f"{roles.writer}={secret}")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "correct horse" not in result.output
    assert f"writer {roles.writer}:" in result.output and "(password set)" in result.output
    assert f"MEETAUDIT_DATABASE_URL=postgresql://{roles.writer}@" in result.output.replace(
        f"{roles.writer}:***@", f"{roles.writer}@"
    )
    with psycopg.connect(libpq(database_url), autocommit=True) as admin:
        (stored,) = admin.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [roles.writer]
        ).fetchone()  # type: ignore[misc]
    iterations, salt = stored.split("$")[1].split(":")
    assert stored == scram_verifier(
        "correct horse battery staple", salt=base64.b64decode(salt), iterations=int(iterations)
    )


def test_the_scram_verifier_is_the_one_postgresql_computes(database_url: str) -> None:
    role = f"ma_scram_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(libpq(database_url), autocommit=True) as admin:
        try:
            admin.execute("SET password_encryption = 'scram-sha-256'")
            admin.execute(f"CREATE ROLE \"{role}\" PASSWORD 'pässword'")  # type: ignore[arg-type]
            (stored,) = admin.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role]
            ).fetchone()  # type: ignore[misc]
        finally:
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')  # type: ignore[arg-type]
    iterations, salt = stored.split("$")[1].split(":")
    mine = scram_verifier("pässword", salt=base64.b64decode(salt), iterations=int(iterations))
    assert mine == stored
    assert hashlib.sha256(mine.encode()).digest() != hashlib.sha256(b"").digest()
