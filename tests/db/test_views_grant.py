"""`meetaudit db views grant`: a real role reads the analysts' views and nothing else.

Roles belong to the whole server, so every test uses names of its own and removes them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from reporting.db.engine import Database
from reporting.db.roles import RoleNames
from tests.db.test_roles import as_role, libpq, meetaudit, roles  # noqa: F401 - a fixture
from tests.report.conftest import build_known_month

_counter = itertools.count()
MASKED_VIEWS = ("analyst_own_organisation", "analyst_meetings", "analyst_known_org_ids",
                "analyst_attendances", "analyst_join_sessions", "analyst_reconciliation",
                "analyst_organisations")  # fmt: skip
TABLES = ("meetings", "participants", "participant_devices", "invitees", "view_settings",
          "report_runs", "access_log", "harvest_runs", "attendee_reports")  # fmt: skip
WRITES = (
    "INSERT INTO meetings (meeting_id, raw) VALUES ('X', '{}')",
    "UPDATE view_settings SET org_domains = '{evil.example}'",
    "DELETE FROM analyst_meetings",
    "UPDATE analyst_meetings SET title = 'x'",
    "CREATE TABLE mallory (x int)",
    "CREATE VIEW analyst_mine AS SELECT 1",
)


@pytest.fixture
def analyst(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An ordinary login role with no rights of its own, and the known month stored."""
    with Database(database_url, data_dir=tmp_path) as db:
        build_known_month(db)
    name = f"ma_analyst_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(libpq(database_url), autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{name}" LOGIN')  # type: ignore[arg-type]
        # PostgreSQL 15 lets every role use the public schema: take it away, so only our
        # grant can give it.
        admin.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
    try:
        yield name
    finally:
        # Revoking takes back the schema too, whoever granted it; then the role can go.
        revoked = meetaudit(database_url, tmp_path, "db", "views", "revoke", name)
        assert revoked.exit_code == 0, revoked.output
        with psycopg.connect(libpq(database_url), autocommit=True) as admin:
            admin.execute(f'DROP OWNED BY "{name}"')  # type: ignore[arg-type]
            admin.execute(f'DROP ROLE "{name}"')  # type: ignore[arg-type]


def _grant(url: str, tmp_path: Path, role: str, *flags: str) -> str:
    result = meetaudit(url, tmp_path, "db", "views", "grant", role, *flags,
                       MEETAUDIT_ORG_DOMAINS="acme.example")  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def _refused(conn: psycopg.Connection, sql: str, *, unseen: bool = False) -> bool:
    """Whether PostgreSQL refuses ``sql`` for want of a privilege; with ``unseen``, a schema the
    role may not use (the relation is then "not found") counts as refused too."""
    refusals: tuple[type[Exception], ...] = (psycopg.errors.InsufficientPrivilege,)
    if unseen:
        refusals += (psycopg.errors.UndefinedTable,)
    try:
        conn.execute(sql)  # type: ignore[arg-type]
    except refusals:
        return True
    return False


def test_the_analyst_reads_the_views_and_nothing_else(
    database_url: str, analyst: str, tmp_path: Path
) -> None:
    with as_role(database_url, analyst) as conn:
        assert _refused(conn, "SELECT count(*) FROM analyst_meetings", unseen=True)  # not yet
    output = _grant(database_url, tmp_path, analyst)
    assert "last two digits hidden" in output and "Note:" not in output
    with as_role(database_url, analyst) as conn:
        for view in MASKED_VIEWS:
            assert conn.execute(f"SELECT count(*) FROM {view}").fetchone() != (0,), view  # type: ignore[arg-type]
        internal = conn.execute(
            "SELECT classification FROM analyst_reconciliation WHERE person_key = 'alice@acme.example'"
        ).fetchall()
        assert {r[0] for r in internal} == {"internal"}  # the grant stored the own domains
        phones = conn.execute(
            "SELECT phone_number FROM analyst_join_sessions WHERE phone_number IS NOT NULL"
        ).fetchall()
        assert phones == [("+1-555-01••",)]
        for table in TABLES:
            assert _refused(conn, f"SELECT 1 FROM {table} LIMIT 1"), table
        assert _refused(conn, "SELECT phone_number FROM analyst_join_sessions_unmasked")
        for sql in WRITES:
            assert _refused(conn, sql), sql


def test_unmasked_phone_numbers_only_when_granted_and_taken_back(
    database_url: str, analyst: str, tmp_path: Path
) -> None:
    full = "SELECT phone_number FROM analyst_join_sessions_unmasked WHERE phone_number IS NOT NULL"
    assert "in full, too: analyst_join_sessions_unmasked" in _grant(
        database_url, tmp_path, analyst, "--unmasked-phones"
    )
    with as_role(database_url, analyst) as conn:
        assert conn.execute(full).fetchall() == [("+1-555-0199",)]
        assert _refused(conn, "SELECT phone_number FROM participant_devices")
    _grant(database_url, tmp_path, analyst)  # again, without: the full numbers are taken away
    with as_role(database_url, analyst) as conn:
        assert _refused(conn, full)
        assert conn.execute("SELECT count(*) FROM analyst_meetings").fetchone() == (5,)
    revoked = meetaudit(database_url, tmp_path, "db", "views", "revoke", analyst)
    assert revoked.exit_code == 0, revoked.output
    assert "can no longer read: analyst_attendances" in revoked.output
    with as_role(database_url, analyst) as conn:
        for view in (*MASKED_VIEWS, "analyst_join_sessions_unmasked"):
            assert _refused(conn, f"SELECT 1 FROM {view}", unseen=True), view


def test_the_owner_grants_and_the_writer_may_not(
    database_url: str,
    roles: RoleNames,  # noqa: F811 - the fixture
    analyst: str,
    tmp_path: Path,
) -> None:
    """After `db roles`, the owner owns the views and may grant them; the writer may not."""
    refused = meetaudit(libpq(database_url, roles.writer), tmp_path, "db", "views", "grant",
                        analyst)  # fmt: skip
    assert refused.exit_code != 0
    assert f"this connection is the role '{roles.writer}'" in refused.output
    assert "Nothing was changed" in refused.output
    _grant(libpq(database_url, roles.owner), tmp_path, analyst)
    with as_role(database_url, analyst) as conn:
        assert conn.execute("SELECT count(*) FROM analyst_reconciliation").fetchone() != (0,)
    # The reader reads every table already: the grant says so instead of implying otherwise.
    assert f"Note: {roles.reader} can also read" in _grant(database_url, tmp_path, roles.reader)


def test_a_missing_or_administrator_role_is_refused_in_words(
    database_url: str, tmp_path: Path
) -> None:
    missing = meetaudit(database_url, tmp_path, "db", "views", "grant", "nobody_like_this")
    assert missing.exit_code != 0
    assert "there is no database role named 'nobody_like_this'" in missing.output
    admin = meetaudit(database_url, tmp_path, "db", "views", "grant", "postgres")
    assert admin.exit_code != 0
    assert "superuser" in admin.output and "Nothing was changed" in admin.output
