"""Alembic, driven from meetaudit: upgrade, downgrade, check and current revision."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from reporting.errors import DatabaseError
from reporting.resources import migrations_dir


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config on the packaged scripts; ``env.py`` uses ``engine`` when given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision``."""
    _refuse_unknown(engine)
    _refuse_without_rights(engine)
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema down to ``revision`` (``base`` drops everything)."""
    _refuse_unknown(engine)
    _refuse_without_rights(engine)
    command.downgrade(alembic_config(engine), revision)


def known_revisions() -> set[str]:
    """Every schema revision this meetaudit has migrations for."""
    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def _refuse_unknown(engine: Engine) -> None:
    """A schema revision this meetaudit does not know was written by a newer one: touch nothing."""
    current = current_revision(engine)
    if current is None:
        return
    if current not in known_revisions():
        raise DatabaseError(
            f"this database was set up by a newer meetaudit (schema revision {current}; this "
            f"meetaudit knows up to {head_revision()}): install that newer version to use it. "
            "Nothing was changed"
        )


def _refuse_without_rights(engine: Engine) -> None:
    """Only the owner of meetaudit's tables (or the administrator) may change the schema: say so
    in words, naming the owner, instead of failing halfway with "permission denied"."""
    with engine.connect() as conn:
        owner, user, allowed = conn.execute(
            text(
                "SELECT t.tableowner, current_user, (SELECT rolsuper FROM pg_roles WHERE "
                "rolname = current_user) OR pg_has_role(current_user, t.tableowner, 'USAGE') "
                "FROM pg_tables t WHERE t.schemaname = current_schema() "
                "AND t.tablename = 'report_runs'"
            )
        ).first() or (None, None, True)
    if not allowed:
        raise DatabaseError(
            f"the database schema must be changed (it is at revision {current_revision(engine)}, "
            f"this meetaudit needs {head_revision()}), and only the owner of meetaudit's tables, "
            f"the role {owner!r}, may do that; this connection is the role {user!r}. Run "
            f"`meetaudit db upgrade` with MEETAUDIT_DATABASE_URL naming {owner}, then run this "
            "command again. Nothing was changed"
        )


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` when it has never been migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision the installed meetaudit knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def is_current(engine: Engine) -> bool:
    """Whether the database schema is at the newest revision."""
    return current_revision(engine) == head_revision()
