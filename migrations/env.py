"""Alembic environment: the URL and the target metadata come from meetaudit itself."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from reporting.db.models import SEARCH_INDEXES, Base

config = context.config
target_metadata = Base.metadata


def _include(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Leave the migrations' expression indexes (``SEARCH_INDEXES``) out of the comparison."""
    return not (type_ == "index" and name in SEARCH_INDEXES)


def _run(engine: Engine) -> None:
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            include_object=_include,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


def run_migrations_online() -> None:
    """Migrate the engine meetaudit handed over, or the one its settings name."""
    engine = config.attributes.get("engine")
    if engine is not None:
        _run(engine)
        return
    # Plain `alembic upgrade head`: the same settings meetaudit uses, embedded server included.
    from reporting.config import load_settings
    from reporting.db.engine import Database

    with Database.from_settings(load_settings(), pool_size=1) as db:
        _run(db.engine)


if context.is_offline_mode():
    raise SystemExit("meetaudit migrations run online only: use `alembic upgrade head`")
run_migrations_online()
