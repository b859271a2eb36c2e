"""Alembic, driven from meetaudit: upgrade, downgrade, check and current revision."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

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
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema down to ``revision`` (``base`` drops everything)."""
    _refuse_unknown(engine)
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
