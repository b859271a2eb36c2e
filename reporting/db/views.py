"""The analysts' SQL views (migration 0114): their settings, and who may read them.

The views are every view of meetaudit's schema whose name begins ``analyst_``; those ending
``_unmasked`` show phone numbers in full. :func:`grant_views` gives a role exactly this: USAGE on
the schema (to find the views by name) and SELECT on the views, the unmasked ones only when asked.
Nothing on the tables: a view reads its tables with its owner's rights, so a role granted only
the views reads the records only as the views show them. Granting again sets the role to what
was asked (granting without unmasked phones takes them away), so it is safe to repeat, and
should be repeated after a ``db upgrade`` that adds views.

The views classify people by the organisation's own name, domains and orgIds. Those are
meetaudit's settings, which a view cannot read, so :func:`store_view_settings` copies them into
``view_settings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from reporting.errors import ConfigError, DatabaseError

VIEW_PREFIX = "analyst_"
UNMASKED_SUFFIX = "_unmasked"


@dataclass(frozen=True)
class Granted:
    """What a role may read after :func:`grant_views`."""

    role: str
    views: list[str]
    unmasked: list[str]
    # Tables the role can read through other grants (its membership of the reader role, say).
    also_reads: list[str] = field(default_factory=list)


def analyst_views(conn: Connection) -> list[str]:
    """The analysts' views in meetaudit's schema, by name."""
    return list(
        conn.execute(
            text(
                "SELECT c.relname FROM pg_class c WHERE c.relkind = 'v' "
                "AND c.relnamespace = current_schema()::regnamespace "
                "AND starts_with(c.relname, :prefix) ORDER BY c.relname"
            ),
            {"prefix": VIEW_PREFIX},
        ).scalars()
    )


def store_view_settings(
    conn: Connection,
    org_name: str,
    org_domains: Sequence[str],
    org_ids: Sequence[str],
    timezone: str,
    min_attendance_minutes: float,
) -> None:
    """Copy the organisation's settings to ``view_settings``, normalised as the report does."""
    domains = sorted({d.strip().lower().lstrip("@") for d in org_domains if d.strip()})
    ids = sorted({o.strip().lower() for o in org_ids if o.strip()})
    conn.execute(
        text(
            "INSERT INTO view_settings (id, org_name, org_domains, org_ids, timezone, "
            "min_attendance_minutes, stored_at, stored_by) VALUES (true, :name, :domains, :ids, "
            ":tz, :minutes, now(), current_user) ON CONFLICT (id) DO UPDATE SET "
            "org_name = EXCLUDED.org_name, org_domains = EXCLUDED.org_domains, "
            "org_ids = EXCLUDED.org_ids, timezone = EXCLUDED.timezone, "
            "min_attendance_minutes = EXCLUDED.min_attendance_minutes, "
            "stored_at = EXCLUDED.stored_at, stored_by = EXCLUDED.stored_by"
        ),
        {"name": org_name, "domains": domains, "ids": ids, "tz": timezone,
         "minutes": min_attendance_minutes},
    )  # fmt: skip


def _ident(conn: Connection, name: str) -> str:
    return str(conn.execute(text("SELECT quote_ident(:n)"), {"n": name}).scalar_one())


def _check_grantable(conn: Connection, role: str, views: list[str]) -> None:
    """Refuse, in words, what would fail halfway or grant nothing useful."""
    if not views:
        raise DatabaseError(
            "this database has no analysts' views yet: run `meetaudit db upgrade` first"
        )
    found = conn.execute(
        text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": role}
    ).first()
    if found is None:
        raise ConfigError(
            f"there is no database role named {role!r}. Ask the database administrator to "
            f"create it (for example: CREATE ROLE {role} LOGIN PASSWORD '...'), then run this "
            "command again. Nothing was changed"
        )
    if found.rolsuper:
        raise ConfigError(
            f"the role {role!r} is a PostgreSQL administrator (superuser) and can read "
            "everything whatever is granted: give analysts an ordinary role. Nothing was changed"
        )
    me, allowed = conn.execute(
        text(
            "SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) "
            "OR pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c "
            "WHERE c.oid = CAST(:v AS regclass)"
        ),
        {"v": views[0]},
    ).one()
    if not allowed:
        raise DatabaseError(
            f"only the owner of meetaudit's tables or the PostgreSQL administrator may grant "
            f"access to the views; this connection is the role {me!r}. Run the command with "
            "MEETAUDIT_DATABASE_URL naming one of them. Nothing was changed"
        )


def _tables_readable(conn: Connection, role: str) -> list[str]:
    """meetaudit's tables ``role`` can read by any grant (not only ours)."""
    return list(
        conn.execute(
            text(
                "SELECT c.relname FROM pg_class c WHERE c.relkind IN ('r', 'p') "
                "AND c.relnamespace = current_schema()::regnamespace "
                "AND has_table_privilege(:r, c.oid, 'SELECT') ORDER BY c.relname"
            ),
            {"r": role},
        ).scalars()
    )


def grant_views(conn: Connection, role: str, *, unmasked_phones: bool = False) -> Granted:
    """Let ``role`` read the analysts' views and nothing else, in the caller's transaction."""
    views = analyst_views(conn)
    _check_grantable(conn, role, views)
    who = _ident(conn, role)
    schema = str(conn.execute(text("SELECT quote_ident(current_schema())")).scalar_one())
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {schema} TO {who}")
    if not conn.execute(
        text("SELECT has_schema_privilege(:r, current_schema(), 'USAGE')"), {"r": role}
    ).scalar():
        raise DatabaseError(
            f"this connection may not let {role!r} use the schema {schema} the views are in. "
            "Run the command as the PostgreSQL administrator, or run `meetaudit db roles` "
            "again first (it lets the owner pass that on). Nothing was changed"
        )
    masked = [v for v in views if not v.endswith(UNMASKED_SUFFIX)]
    unmasked = [v for v in views if v.endswith(UNMASKED_SUFFIX)]
    for view in masked:
        conn.exec_driver_sql(f"GRANT SELECT ON {_ident(conn, view)} TO {who}")
    for view in unmasked:
        verb = "GRANT SELECT ON" if unmasked_phones else "REVOKE ALL ON"
        conn.exec_driver_sql(
            f"{verb} {_ident(conn, view)} {'TO' if unmasked_phones else 'FROM'} {who}"
        )
    return Granted(role, masked, unmasked if unmasked_phones else [], _tables_readable(conn, role))


def revoke_views(conn: Connection, role: str) -> list[str]:
    """Take the analysts' views away from ``role``; returns the views it could read before.

    USAGE on the schema is taken away too unless the role reads tables there by other grants
    (the reader role, say), which still need it.
    """
    views = analyst_views(conn)
    _check_grantable(conn, role, views)
    who = _ident(conn, role)
    before = [
        v
        for v in views
        if conn.execute(
            text("SELECT has_table_privilege(:r, CAST(:v AS regclass), 'SELECT')"),
            {"r": role, "v": v},
        ).scalar()
    ]
    for view in views:
        conn.exec_driver_sql(f"REVOKE ALL ON {_ident(conn, view)} FROM {who}")
    if not _tables_readable(conn, role):
        _revoke_schema_usage(conn, role)
    return before


def _revoke_schema_usage(conn: Connection, role: str) -> None:
    """Take back USAGE on the schema from ``role``, whoever granted it (the administrator or the
    owner): a REVOKE removes only the grants of the role it is issued as."""
    schema = str(conn.execute(text("SELECT quote_ident(current_schema())")).scalar_one())
    grantors = conn.execute(
        text(
            "SELECT DISTINCT quote_ident(g.rolname) FROM pg_namespace n, "
            "aclexplode(n.nspacl) a JOIN pg_roles g ON g.oid = a.grantor "
            "JOIN pg_roles r ON r.oid = a.grantee "
            "WHERE n.oid = current_schema()::regnamespace AND r.rolname = :r "
            "AND pg_has_role(current_user, g.oid, 'MEMBER')"
        ),
        {"r": role},
    ).scalars()
    who = _ident(conn, role)
    for grantor in list(grantors):
        # PostgreSQL takes back only the current role's own grants: act as each grantor.
        conn.exec_driver_sql(f"SET LOCAL ROLE {grantor}")
        conn.exec_driver_sql(f"REVOKE USAGE ON SCHEMA {schema} FROM {who}")
        conn.exec_driver_sql("RESET ROLE")
