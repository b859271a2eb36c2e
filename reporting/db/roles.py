"""Separation of duties in PostgreSQL: an owner, a writer and a reader role.

* **owner** owns every meetaudit table, sequence, type and the ledger's trigger function; it runs
  ``meetaudit db upgrade`` and nothing else.
* **writer** is what ``harvest``, ``report``, ``monthly`` and ``verify`` connect as: it reads and
  writes the harvest tables, and may only read and *add* ledger entries — no UPDATE, DELETE or
  TRUNCATE on ``report_runs``; it owns nothing, so it cannot disable, drop or replace the
  append-only trigger either.
* **reader** may read every table (investigations, an auditor's own queries) and change nothing.

:func:`set_up_roles` creates the roles when missing and (re)applies ownership and privileges, so
it is safe to run again — and should be, after a ``db upgrade`` that adds tables. Passwords are
sent as SCRAM-SHA-256 verifiers computed here, so the password itself never reaches the server
(nor its statement log).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from sqlalchemy import Connection, text

from reporting.errors import ConfigError, DatabaseError

LEDGER_TABLE = "report_runs"
# Investigators record every look at personal data, so even the reader appends to the access log
# and opens and closes its cases; nobody but the owner can change or remove an entry.
ACCESS_LOG_TABLE = "access_log"
CASES_TABLE = "investigation_cases"
VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class RoleNames:
    """The three roles' names."""

    owner: str = "meetaudit_owner"
    writer: str = "meetaudit_writer"
    reader: str = "meetaudit_reader"

    def all(self) -> tuple[str, str, str]:
        """Owner, writer, reader."""
        return (self.owner, self.writer, self.reader)


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802, RFC 7677)."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    salt_b64, stored_b64, server_b64 = (
        base64.b64encode(b).decode() for b in (salt, stored_key, server_key)
    )
    return f"SCRAM-SHA-256${iterations}:{salt_b64}${stored_b64}:{server_b64}"


def _ident(conn: Connection, name: str) -> str:
    return str(conn.execute(text("SELECT quote_ident(:n)"), {"n": name}).scalar_one())


def _literal(conn: Connection, value: str) -> str:
    return str(conn.execute(text("SELECT quote_literal(:v)"), {"v": value}).scalar_one())


def set_up_roles(
    conn: Connection, names: RoleNames, passwords: dict[str, str] | None = None
) -> list[str]:
    """Create the roles if missing and apply ownership and privileges, in the caller's
    transaction. ``passwords``: role name → password to set. Returns what each role may do."""
    passwords = passwords or {}
    if len(set(names.all())) != 3:
        raise ConfigError("the owner, writer and reader roles need three different names")
    me, superuser, database, schema = conn.execute(
        text(
            "SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
            "current_database(), current_schema()"
        )
    ).one()
    if not superuser:
        raise DatabaseError(
            f"setting up roles needs the PostgreSQL administrator (a superuser); {me!r} is not "
            "one. Run `meetaudit db roles` with MEETAUDIT_DATABASE_URL naming the administrator "
            "(postgres, usually). Nothing was changed"
        )
    if me in names.all():
        raise ConfigError(
            f"you are connected as {me!r}, one of the roles to set up: connect as the PostgreSQL "
            "administrator instead"
        )
    if conn.execute(text("SELECT to_regclass(:t)"), {"t": LEDGER_TABLE}).scalar() is None:
        raise DatabaseError(
            "the meetaudit tables do not exist yet in this database: run `meetaudit db upgrade` "
            "first (as the administrator), then `meetaudit db roles`"
        )
    owner, writer, reader = (_ident(conn, n) for n in names.all())
    db, sch = _ident(conn, database), _ident(conn, schema)

    def run(sql: str) -> None:
        # Not text(): a verifier's colons would read as bind parameters.
        conn.exec_driver_sql(sql)

    for name, ident in zip(names.all(), (owner, writer, reader), strict=True):
        exists = conn.execute(
            text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}
        ).first()
        attrs = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
        run(f"{'ALTER' if exists else 'CREATE'} ROLE {ident} {attrs}")
        if name in passwords:
            run(f"ALTER ROLE {ident} PASSWORD {_literal(conn, scram_verifier(passwords[name]))}")
    # Neither the writer nor the reader may act as the owner (or as each other).
    for member in (writer, reader):
        for role in (owner, writer, reader):
            if member != role:
                run(f"REVOKE {role} FROM {member}")

    run(f"GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {owner}, {writer}, {reader}")
    run(f"GRANT USAGE, CREATE ON SCHEMA {sch} TO {owner}")
    # ...and may pass the use of the schema on: `meetaudit db views grant`, run as the owner.
    run(f"GRANT USAGE ON SCHEMA {sch} TO {owner} WITH GRANT OPTION")
    run(f"REVOKE CREATE ON SCHEMA {sch} FROM {writer}, {reader}")
    run(f"GRANT USAGE ON SCHEMA {sch} TO {writer}, {reader}")

    # The owner owns every meetaudit object (tables take their serial sequences with them).
    objects = conn.execute(
        text(
            "SELECT 'TABLE', c.oid::regclass::text FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') "
            "UNION ALL SELECT 'SEQUENCE', c.oid::regclass::text FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'S' "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid "
            "AND d.deptype IN ('a', 'i')) "
            "UNION ALL SELECT 'VIEW', c.oid::regclass::text FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('v', 'm') "
            "UNION ALL SELECT 'FUNCTION', p.oid::regprocedure::text FROM pg_proc p "
            "WHERE p.pronamespace = current_schema()::regnamespace AND NOT EXISTS "
            "(SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') "
            "UNION ALL SELECT 'TYPE', t.oid::regtype::text FROM pg_type t "
            "WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype IN ('e', 'd') "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')"
        )
    ).all()
    for kind, name in objects:
        run(f"ALTER {kind} {name} OWNER TO {owner}")

    run(f"REVOKE ALL ON ALL TABLES IN SCHEMA {sch} FROM {writer}, {reader}")
    run(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {sch} TO {writer}")
    # The ledger: read and append only. The schema version: read only.
    run(f"REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON {LEDGER_TABLE} FROM {writer}")
    run(f"REVOKE INSERT, UPDATE, DELETE ON {VERSION_TABLE} FROM {writer}")
    run(f"REVOKE ALL ON {LEDGER_TABLE} FROM PUBLIC")
    run(f"REVOKE UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES ON {ACCESS_LOG_TABLE} FROM {writer}")
    run(f"REVOKE ALL ON {ACCESS_LOG_TABLE} FROM PUBLIC")
    run(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {sch} TO {writer}")
    run(f"GRANT SELECT ON ALL TABLES IN SCHEMA {sch} TO {reader}")
    run(f"GRANT INSERT ON {ACCESS_LOG_TABLE} TO {reader}")
    run(f"GRANT INSERT, UPDATE ON {CASES_TABLE} TO {reader}")
    run(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {sch} TO {reader}")
    # Tables a later migration adds (run as the owner) get the same privileges.
    defaults = f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {sch} GRANT"
    run(f"{defaults} SELECT, INSERT, UPDATE, DELETE ON TABLES TO {writer}")
    run(f"{defaults} USAGE, SELECT ON SEQUENCES TO {writer}")
    run(f"{defaults} SELECT ON TABLES TO {reader}")

    def pw(name: str) -> str:
        return "password set" if name in passwords else "password unchanged"

    return [
        f"owner  {names.owner}: owns the schema's tables; runs `meetaudit db upgrade` "
        f"({pw(names.owner)})",
        f"writer {names.writer}: harvest, report, monthly, verify; adds ledger entries but cannot "
        f"change, delete or truncate them, nor touch the trigger ({pw(names.writer)})",
        f"reader {names.reader}: reads every table (investigate); changes nothing but its own "
        f"records: it opens and closes cases and appends to the access log, never changing an "
        f"entry ({pw(names.reader)})",
    ]
