"""Alembic, driven from meetaudit: upgrade, downgrade, check and current revision.

Alembic is imported only to change the schema or list its revisions: :func:`is_current`, which
every command asks before it opens the records, reads the revision files and the database's
``alembic_version`` itself, so answering a question does not load Alembic.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text

from reporting.errors import DatabaseError
from reporting.resources import migrations_dir

if TYPE_CHECKING:
    from alembic.config import Config


def alembic_config(engine: Engine | None = None) -> Config:
    """An Alembic config on the packaged scripts; ``env.py`` uses ``engine`` when given."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision``."""
    from alembic import command

    _refuse_unknown(engine)
    _refuse_without_rights(engine)
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema down to ``revision`` (``base`` drops everything)."""
    from alembic import command

    _refuse_unknown(engine)
    _refuse_without_rights(engine)
    command.downgrade(alembic_config(engine), revision)


def known_revisions() -> set[str]:
    """Every schema revision this meetaudit has migrations for."""
    from alembic.script import ScriptDirectory

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
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision the installed meetaudit knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


_REVISION = re.compile(r"^revision(?:: str)? = [\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN = re.compile(r"^down_revision(?:: [^=]+)? = [\"']([^\"']+)[\"']", re.MULTILINE)


def _head_from_files() -> str | None:
    """The one revision no other revises, read from the files; ``None`` if that is not clear."""
    revisions, revised = set(), set()
    for path in (migrations_dir() / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        if found := _REVISION.search(source):
            revisions.add(found[1])
        if down := _DOWN.search(source):
            revised.add(down[1])
    heads = revisions - revised
    return next(iter(heads)) if len(heads) == 1 else None


def is_current(engine: Engine) -> bool:
    """Whether the database schema is at the newest revision (without loading Alembic)."""
    head = _head_from_files()
    if head is None:
        return current_revision(engine) == head_revision()
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar()
        versions = (
            conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
            if exists
            else []
        )
    return list(versions) == [head]
